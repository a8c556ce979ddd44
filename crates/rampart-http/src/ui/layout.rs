//! The frame every page shares: document head (stylesheet and script from `'self'` under hashed
//! names), header with the product title and the navigation, main column, footer.
//!
//! Templates are maud: every `(value)` is HTML-escaped, so text a client chose (a display name,
//! a user agent, a query parameter) renders as text. Nothing here uses `PreEscaped`, and nothing
//! may use it with anything a client can influence. There is no inline script, style or event
//! handler anywhere: the page CSP (`script-src 'self'; style-src 'self'`) would block them, and
//! a test fails on any CSP violation.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use maud::{DOCTYPE, Markup, html};

use super::assets;
use super::session::SignedIn;
use crate::AppState;

/// How wide the main column is: a card for sign-in forms, a page for the account, the full width
/// for tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    Narrow,
    Medium,
    Wide,
}

/// One page's frame. `current` is the path of the navigation entry to mark as the current page.
pub struct Page<'a> {
    pub title: &'a str,
    pub width: Width,
    pub viewer: Option<&'a SignedIn>,
    pub current: Option<&'a str>,
}

impl<'a> Page<'a> {
    /// A page for anonymous visitors (sign in, register, ...).
    pub fn anonymous(title: &'a str) -> Self {
        Self { title, width: Width::Narrow, viewer: None, current: None }
    }

    /// A page for a signed-in visitor: the navigation shows their pages and the sign-out button.
    pub fn signed_in(title: &'a str, viewer: &'a SignedIn, current: &'a str) -> Self {
        Self { title, width: Width::Medium, viewer: Some(viewer), current: Some(current) }
    }

    pub fn width(mut self, width: Width) -> Self {
        self.width = width;
        self
    }

    /// The whole document around `content`.
    pub fn render(&self, state: &AppState, content: Markup) -> Markup {
        let product = state.settings.ui.title.as_str();
        let main_class = match self.width {
            Width::Narrow => "narrow",
            Width::Medium => "medium",
            Width::Wide => "wide",
        };
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    meta name="color-scheme" content="light dark";
                    title { (self.title) " · " (product) }
                    link rel="stylesheet" href=(assets::stylesheet_href());
                    script type="module" src=(assets::script_src()) {}
                }
                body {
                    a class="skip-link" href="#main" { "Skip to content" }
                    header class="site-header" {
                        div class="inner" {
                            a class="brand" href="/ui/" { (product) }
                            (self.nav())
                        }
                    }
                    main id="main" class=(main_class) tabindex="-1" { (content) }
                    footer class="site-footer" { "Secured by Rampart" }
                }
            }
        }
    }

    /// The page as a response: HTML with this status. The security headers (the page CSP among
    /// them) and `Cache-Control: no-store` are added by the `security_headers` layer, for every
    /// response under `/ui`.
    pub fn respond(&self, state: &AppState, status: StatusCode, content: Markup) -> Response {
        html_response(status, self.render(state, content))
    }

    fn nav(&self) -> Markup {
        let current = |path: &str| (self.current == Some(path)).then_some("page");
        html! {
            nav class="site-nav" aria-label="Main" {
                ul {
                    @if let Some(viewer) = self.viewer {
                        li { a href="/ui/account" aria-current=[current("/ui/account")] { "Account" } }
                        @if viewer.user.has_role("admin") {
                            li { a href="/ui/admin" aria-current=[current("/ui/admin")] { "Admin" } }
                        }
                        li {
                            form method="post" action="/ui/logout" {
                                (super::forms::csrf_input(viewer.csrf_token()))
                                button type="submit" class="link-button" { "Sign out" }
                            }
                        }
                    } @else {
                        li { a href="/ui/login" aria-current=[current("/ui/login")] { "Sign in" } }
                        li { a href="/ui/register" aria-current=[current("/ui/register")] { "Create account" } }
                    }
                }
            }
        }
    }
}

/// `text/html; charset=utf-8` with `status`.
pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"))], markup.into_string())
        .into_response()
}

/// The page for an error that has no form to show it in (a 404, a refused form, a 5xx): the
/// status, a sentence, and for a 5xx the request id to quote.
pub fn error_page(state: &AppState, status: StatusCode, detail: &str, request_id: Option<&str>) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let content = html! {
        div class="card" {
            h1 { (title) }
            p class="lead" { (detail) }
            @if let Some(id) = request_id {
                p class="muted" { "Request id: " code { (id) } }
            }
            p { a class="button secondary" href="/ui/" { "Back to the start" } }
        }
    };
    Page::anonymous(title).respond(state, status, content)
}

//! Two-step verification on the account page, through `flows::totp` (as `/auth/mfa/totp/*`):
//! set up (a pending secret, shown as a QR code we render ourselves and as text), enable with
//! the password and a code, disable with the password and a code.
//!
//! Enabling answers 200 with the recovery codes rather than a 303: they are shown this once and
//! stored only hashed, so there is nothing a redirected page could show them from. Reloading that
//! page posts again, which is refused (already enabled) and shows nothing secret.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::StatusCode;
use maud::{Markup, html};
use rampart_store::UserRow;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::account::Empty;
use super::forms::{Failure, FormErrors, Input, SignedInForm, csrf_input};
use super::layout::Page;
use super::session::SignedIn;
use crate::extract::RequestContext;
use crate::flows::AuthError;
use crate::flows::totp::{self, Pending};
use crate::{ApiError, AppState};

/// The account page's section.
pub fn section(user: &UserRow, csrf: &str) -> Markup {
    html! {
        section class="card" aria-labelledby="mfa-title" {
            h2 id="mfa-title" { "Two-step verification" }
            @if user.mfa_enabled {
                p { "On. Signing in asks for a code from your authenticator app, or a recovery code." }
                a class="button secondary" href="/ui/account/mfa" { "Turn off" }
            } @else {
                p { "Off. Add a code from an authenticator app to every sign-in, so a stolen password is not enough." }
                form method="post" action="/ui/account/mfa/setup" {
                    (csrf_input(csrf))
                    button type="submit" { "Set up two-step verification" }
                }
            }
        }
    }
}

/// `POST /ui/account/mfa/setup`: a new pending secret, then the page that shows it.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn setup(State(state): State<AppState>, SignedInForm { signed_in: me, .. }: SignedInForm<Empty>) -> Response {
    match totp::setup(&state, &me.user).await {
        Ok(_) | Err(AuthError::MfaAlreadyEnabled) => Redirect::to("/ui/account/mfa").into_response(),
        Err(e) => super::account::failed(&state, &me, e).await,
    }
}

/// `GET /ui/account/mfa`: the pending secret with the enable form, or the disable form.
pub async fn show(State(state): State<AppState>, me: SignedIn) -> Response {
    render(&state, &me, StatusCode::OK, &FormErrors::none()).await
}

async fn render(state: &AppState, me: &SignedIn, status: StatusCode, errors: &FormErrors) -> Response {
    if me.user.mfa_enabled {
        let content = disable_form(me, errors);
        return Page::signed_in("Two-step verification", me, "/ui/account").respond(state, status, content);
    }
    match totp::pending(state, &me.user).await {
        Ok(Some(pending)) => {
            let content = enable_form(me, &pending, errors);
            Page::signed_in("Two-step verification", me, "/ui/account").respond(state, status, content)
        }
        Ok(None) => Redirect::to("/ui/account").into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

fn enable_form(me: &SignedIn, pending: &Pending, errors: &FormErrors) -> Markup {
    // Our own SVG (black squares on white, no script, no links), as an image: an `<img>` never
    // runs anything in an SVG, and `img-src data:` is all the CSP has to allow for it.
    let qr = format!("data:image/svg+xml;base64,{}", STANDARD.encode(pending.qr_svg.as_bytes()));
    html! {
        h1 { "Set up two-step verification" }
        (errors.summary())
        div class="grid-2" {
            section class="card" aria-labelledby="scan-title" {
                h2 id="scan-title" { "1. Scan this code" }
                p { "Use an authenticator app (1Password, Aegis, Google Authenticator, ...)." }
                img class="qr" src=(qr) alt="QR code for your authenticator app" width="224" height="224";
                p class="muted" { "Cannot scan? Enter this key instead:" }
                p { code id="totp-secret" { (pending.secret_base32) } }
            }
            section class="card" aria-labelledby="confirm-title" {
                h2 id="confirm-title" { "2. Confirm" }
                form class="stack" method="post" action="/ui/account/mfa/enable" novalidate {
                    (csrf_input(me.csrf_token()))
                    (Input::new("code", "Code from the app", "text").autocomplete("one-time-code").numeric().render(errors))
                    (Input::new("password", "Your password", "password").autocomplete("current-password").render(errors))
                    div class="actions" {
                        button type="submit" { "Turn on" }
                        a href="/ui/account" { "Cancel" }
                    }
                }
            }
        }
    }
}

fn disable_form(me: &SignedIn, errors: &FormErrors) -> Markup {
    html! {
        h1 { "Turn off two-step verification" }
        (errors.summary())
        section class="card" {
            p { "Signing in will need only your password again. To confirm, enter your password and a code." }
            form class="stack" method="post" action="/ui/account/mfa/disable" novalidate {
                (csrf_input(me.csrf_token()))
                (Input::new("password", "Your password", "password").autocomplete("current-password").render(errors))
                (Input::new("code", "Code from the app, or a recovery code", "text").autocomplete("one-time-code").numeric().render(errors))
                div class="actions" {
                    button type="submit" class="danger" { "Turn off" }
                    a href="/ui/account" { "Cancel" }
                }
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeAndPassword {
    code: String,
    password: SecretString,
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn enable(
    State(state): State<AppState>,
    ctx: RequestContext,
    SignedInForm { signed_in: me, form }: SignedInForm<CodeAndPassword>,
) -> Response {
    match totp::enable(&state, &ctx, &me.user, &form.code, form.password).await {
        Ok(codes) => {
            let content = html! {
                h1 { "Two-step verification is on" }
                section class="card" aria-labelledby="codes-title" {
                    h2 id="codes-title" { "Your recovery codes" }
                    p { "Each code signs you in once if you lose your phone. Save them somewhere safe now: they are shown only this once." }
                    ol class="codes" id="recovery-codes" {
                        @for c in &codes { li { code { (c.expose_secret()) } } }
                    }
                    p { a class="button" href="/ui/account" { "Done" } }
                }
            };
            Page::signed_in("Recovery codes", &me, "/ui/account").respond(&state, StatusCode::OK, content)
        }
        Err(e) => failed(&state, &me, e).await,
    }
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn disable(
    State(state): State<AppState>,
    ctx: RequestContext,
    SignedInForm { signed_in: me, form }: SignedInForm<CodeAndPassword>,
) -> Response {
    match totp::disable(&state, &ctx, &me.user, &form.code, form.password).await {
        Ok(()) => Redirect::to("/ui/account?notice=mfa_disabled").into_response(),
        Err(e) => failed(&state, &me, e).await,
    }
}

async fn failed(state: &AppState, me: &SignedIn, e: AuthError) -> Response {
    match Failure::of(e).await {
        Failure::Show { status, headers, errors } => {
            let mut res = render(state, me, status, &errors).await;
            res.headers_mut().extend(headers);
            res
        }
        Failure::Page(res) => res,
    }
}

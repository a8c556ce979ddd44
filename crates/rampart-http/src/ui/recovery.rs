//! `/ui/forgot`, `/ui/reset`, `/ui/verify`: the mailed-token pages, through
//! `flows::recovery` as `POST /auth/password/forgot`, `/auth/password/reset` and
//! `/auth/email/verify` do.
//!
//! The mailed links carry the token in the URL fragment (`/ui/reset#token=...`), which the
//! browser never sends to a server or in a `Referer`. The page's script reads it into the form's
//! hidden `token` field and drops it from the address bar; it is never put in a query string.
//! Without JavaScript these two pages say so (the one step that needs it).

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::StatusCode;
use maud::{Markup, html};
use secrecy::SecretString;
use serde::Deserialize;

use super::forms::{Failure, FormErrors, Input, PreSessionForm, csrf_input};
use super::layout::Page;
use super::notice;
use super::presession::PreSession;
use crate::AppState;
use crate::extract::{PresentedToken, RequestContext};
use crate::flows::recovery::{request_reset, reset_password, verify_email};

#[derive(Deserialize, Default)]
pub struct NoticeQuery {
    notice: Option<String>,
}

pub async fn show_forgot(State(state): State<AppState>, pre: PreSession, Query(q): Query<NoticeQuery>) -> Response {
    pre.respond(StatusCode::OK, forgot_page(&state, &pre, None, q.notice.as_deref(), &FormErrors::none()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgotForm {
    email: String,
}

/// Always the same answer for a known and an unknown address (the flow sends the mail, or not,
/// in the background).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn submit_forgot(
    State(state): State<AppState>,
    ctx: RequestContext,
    PreSessionForm { form, pre }: PreSessionForm<ForgotForm>,
) -> Response {
    match request_reset(&state, &ctx, &form.email, None).await {
        Ok(()) => Redirect::to("/ui/forgot?notice=reset_sent").into_response(),
        Err(e) => Failure::of(e)
            .await
            .respond(|status, errors| pre.respond(status, forgot_page(&state, &pre, Some(&form.email), None, errors))),
    }
}

fn forgot_page(
    state: &AppState,
    pre: &PreSession,
    email: Option<&str>,
    note: Option<&str>,
    errors: &FormErrors,
) -> Markup {
    let content = html! {
        div class="card" {
            h1 { "Forgot your password?" }
            p class="lead" { "Enter your email address and we will send you a link to set a new one." }
            (notice::render(note))
            (errors.summary())
            form class="stack" method="post" action="/ui/forgot" novalidate {
                (csrf_input(pre.token()))
                (Input::new("email", "Email", "email").autocomplete("username").value(email).render(errors))
                button type="submit" class="wide" { "Send the link" }
            }
            div class="below-form" { a href="/ui/login" { "Back to sign in" } }
        }
    };
    Page::anonymous("Forgot password").render(state, content)
}

pub async fn show_reset(State(state): State<AppState>, pre: PreSession) -> Response {
    pre.respond(StatusCode::OK, reset_page(&state, &pre, None, &FormErrors::none()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetForm {
    token: String,
    new_password: SecretString,
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn submit_reset(
    State(state): State<AppState>,
    ctx: RequestContext,
    PreSessionForm { form, pre }: PreSessionForm<ResetForm>,
) -> Response {
    let token = PresentedToken::parse(&form.token);
    match reset_password(&state, &ctx, &token, form.new_password).await {
        Ok(()) => Redirect::to("/ui/login?notice=reset_done").into_response(),
        Err(e) => Failure::of(e).await.respond(|status, errors| {
            // The token goes back into the hidden field (a no-store page), so that a password the
            // policy refused can be retried without a new mail.
            pre.respond(status, reset_page(&state, &pre, Some(&form.token), errors))
        }),
    }
}

fn reset_page(state: &AppState, pre: &PreSession, token: Option<&str>, errors: &FormErrors) -> Markup {
    let content = html! {
        div class="card" {
            h1 { "Set a new password" }
            (errors.summary())
            (token_notes("reset your password"))
            form class="stack" method="post" action="/ui/reset" hidden[token.is_none()] novalidate {
                (csrf_input(pre.token()))
                input type="hidden" name="token" value=[token] data-fragment-token="";
                (Input::new("new_password", "New password", "password")
                    .autocomplete("new-password")
                    .hint("At least 8 characters and hard to guess. Every other session is signed out.")
                    .render(errors))
                button type="submit" class="wide" { "Set password" }
            }
            div class="below-form" { a href="/ui/forgot" { "Send a new link" } }
        }
    };
    Page::anonymous("Set a new password").render(state, content)
}

pub async fn show_verify(State(state): State<AppState>, pre: PreSession) -> Response {
    pre.respond(StatusCode::OK, verify_page(&state, &pre, &FormErrors::none()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyForm {
    token: String,
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn submit_verify(
    State(state): State<AppState>,
    ctx: RequestContext,
    PreSessionForm { form, pre }: PreSessionForm<VerifyForm>,
) -> Response {
    match verify_email(&state, &ctx, &PresentedToken::parse(&form.token)).await {
        Ok(()) => Redirect::to("/ui/login?notice=verified").into_response(),
        Err(e) => Failure::of(e).await.respond(|status, errors| pre.respond(status, verify_page(&state, &pre, errors))),
    }
}

fn verify_page(state: &AppState, pre: &PreSession, errors: &FormErrors) -> Markup {
    let content = html! {
        div class="card" {
            h1 { "Confirm your email address" }
            (errors.summary())
            (token_notes("confirm your address"))
            form class="stack" method="post" action="/ui/verify" hidden novalidate {
                (csrf_input(pre.token()))
                input type="hidden" name="token" data-fragment-token="";
                p { "Confirm that this address is yours." }
                button type="submit" class="wide" { "Confirm my email address" }
            }
        }
    };
    Page::anonymous("Confirm email").render(state, content)
}

/// What the page says before its script has run, or when the link had no token.
fn token_notes(what: &str) -> Markup {
    html! {
        p id="needs-js" class="muted" {
            "This step needs JavaScript: the link's secret stays in your browser and is read by this page. "
            "Please enable JavaScript and open the link from your email again to " (what) "."
        }
        p id="token-missing" class="muted" hidden {
            "This link is incomplete. Please open the link from your email again, or ask for a new one."
        }
    }
}

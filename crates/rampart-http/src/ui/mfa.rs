//! `/ui/mfa`: the second step of a sign-in whose account has a second factor. The code (six
//! digits from the app, or a recovery code) goes through `flows::second_factor::complete`, as
//! `POST /auth/mfa/verify` does: the same budgets, lockout, single use and audit.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode};
use maud::{Markup, html};
use serde::Deserialize;

use super::forms::{Failure, FormErrors, Input, PreSessionForm, csrf_input};
use super::layout::Page;
use super::presession::PreSession;
use super::signing_in::{self, mfa_token};
use crate::AppState;
use crate::error::FieldError;
use crate::extract::RequestContext;
use crate::flows::AuthError;
use crate::flows::password_login::Flow;
use crate::flows::second_factor::{Answer, code_field, complete};

/// Without a pending sign-in there is nothing to complete: back to the password.
pub async fn show(State(state): State<AppState>, headers: HeaderMap, pre: PreSession) -> Response {
    if mfa_token(&headers).is_none() {
        return Redirect::to("/ui/login").into_response();
    }
    pre.respond(StatusCode::OK, page(&state, &pre, &FormErrors::none()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeForm {
    code: String,
}

#[tracing::instrument(skip_all)]
pub async fn submit(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    PreSessionForm { form, pre }: PreSessionForm<CodeForm>,
) -> Response {
    let outcome = async {
        let token = mfa_token(&headers).ok_or(AuthError::InvalidChallenge)?;
        let code = code_field(&form.code).map_err(|e: FieldError| AuthError::Invalid(vec![e]))?;
        match complete(&state, &ctx, &token, Answer::Code(&code), None).await? {
            // Only `/ui/login` sets this cookie, and it always starts a cookie login.
            (login, Flow::Cookie) => Ok(login),
            (_, Flow::Token) => Err(AuthError::InvalidChallenge),
        }
    };
    match outcome.await {
        Ok(login) => signing_in::complete(&state, &ctx, &headers, &login).await,
        Err(AuthError::InvalidChallenge) => {
            // Expired, spent or dead after too many wrong codes: the password step again.
            let errors = FormErrors::whole_form("This sign-in has expired. Please sign in again.");
            let mut res = super::layout::html_response(StatusCode::UNAUTHORIZED, expired(&state, &errors));
            res.headers_mut().append(http::header::SET_COOKIE, signing_in::clear_mfa());
            res
        }
        Err(e) => Failure::of(e).await.respond(|status, errors| pre.respond(status, page(&state, &pre, errors))),
    }
}

fn page(state: &AppState, pre: &PreSession, errors: &FormErrors) -> Markup {
    let content = html! {
        div class="card" {
            h1 { "Two-step verification" }
            p class="lead" { "Enter the 6-digit code from your authenticator app, or one of your recovery codes." }
            (errors.summary())
            form class="stack" method="post" action="/ui/mfa" novalidate {
                (csrf_input(pre.token()))
                (Input::new("code", "Code", "text").autocomplete("one-time-code").numeric().render(errors))
                button type="submit" class="wide" { "Verify" }
            }
            div class="below-form" { a href="/ui/login" { "Start over" } }
        }
    };
    Page::anonymous("Two-step verification").render(state, content)
}

fn expired(state: &AppState, errors: &FormErrors) -> Markup {
    let content = html! {
        div class="card" {
            h1 { "Two-step verification" }
            (errors.summary())
            p { a class="button" href="/ui/login" { "Sign in again" } }
        }
    };
    Page::anonymous("Two-step verification").render(state, content)
}

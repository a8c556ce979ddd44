//! `/ui/login`: email and password, through the same password step as `POST /auth/login`
//! (`flows::password_login::password_step`): the same budgets, lockout, audit events and
//! answers. A complete login sets the session cookie exactly as the API does and answers 303 to
//! `/ui/account`; one that needs a second factor keeps the `mfa_token` in a short-lived HttpOnly
//! cookie (never in a URL, where logs and `Referer` would keep it) and answers 303 to `/ui/mfa`.
//!
//! "Sign in with a passkey" (and the passkeys the browser offers in the email field's autofill,
//! `autocomplete="username webauthn"`) is `ui.js` running the discoverable sign-in of
//! `POST /auth/passkeys/login/start` and `/finish`: no email is asked, and the session cookie is
//! the one `/finish` sets, as for `POST /auth/login`. Login CSRF is stopped there by the guard's
//! Origin and `Sec-Fetch-Site` checks (a foreign page's fetch is refused before the handler), and
//! the assertion itself is bound to our origin by WebAuthn. The button stays hidden without the
//! script or without WebAuthn; the password form works either way.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode};
use maud::{Markup, html};
use secrecy::SecretString;
use serde::Deserialize;

use super::forms::{Failure, FormErrors, Input, PreSessionForm, csrf_input};
use super::layout::Page;
use super::presession::PreSession;
use super::session::MaybeSignedIn;
use super::signing_in;
use crate::AppState;
use crate::extract::RequestContext;
use crate::flows::AuthError;
use crate::flows::password_login::{Flow, password_step};

/// `?email=` fills the email field (an application linking here may know it). It is only ever
/// shown as an escaped attribute value.
#[derive(Deserialize, Default)]
pub struct LoginQuery {
    email: Option<String>,
    /// One of `notice`'s keys; anything else shows nothing.
    notice: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    MaybeSignedIn(viewer): MaybeSignedIn,
    pre: PreSession,
    Query(query): Query<LoginQuery>,
) -> Response {
    if viewer.is_some() {
        return Redirect::to("/ui/account").into_response();
    }
    pre.respond(
        StatusCode::OK,
        page(&state, &pre, query.email.as_deref(), query.notice.as_deref(), &FormErrors::none()),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginForm {
    email: String,
    password: SecretString,
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn submit(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    PreSessionForm { form, pre }: PreSessionForm<LoginForm>,
) -> Response {
    match password_step(&state, &ctx, &form.email, form.password, None, Flow::Cookie).await {
        Ok(login) => signing_in::complete(&state, &ctx, &headers, &login).await,
        Err(AuthError::MfaRequired(token)) => signing_in::to_second_factor(&state, &token),
        Err(e) => Failure::of(e)
            .await
            .respond(|status, errors| pre.respond(status, page(&state, &pre, Some(&form.email), None, errors))),
    }
}

fn page(state: &AppState, pre: &PreSession, email: Option<&str>, note: Option<&str>, errors: &FormErrors) -> Markup {
    let content = html! {
        div class="card" {
            h1 { "Sign in" }
            p class="lead" { "Welcome back. Sign in to " (state.settings.ui.title) "." }
            (super::notice::render(note))
            (errors.summary())
            form class="stack" method="post" action="/ui/login" novalidate {
                (csrf_input(pre.token()))
                (Input::new("email", "Email", "email").autocomplete("username webauthn").value(email).render(errors))
                (Input::new("password", "Password", "password").autocomplete("current-password").render(errors))
                button type="submit" class="wide" { "Sign in" }
            }
            div id="passkey-signin" class="stack below-form" hidden {
                p class="muted" { "Or, without a password:" }
                button type="button" class="secondary wide" id="passkey-signin-button" { "Sign in with a passkey" }
                p id="passkey-error" class="field-error" role="alert" hidden {}
            }
            div class="below-form" {
                a href="/ui/forgot" { "Forgot your password?" }
                span { "New here? " a href="/ui/register" { "Create an account" } }
            }
        }
    };
    Page::anonymous("Sign in").render(state, content)
}

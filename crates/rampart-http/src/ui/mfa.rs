//! `/ui/mfa`: the second step of a sign-in whose account has a second factor. The code (six
//! digits from the app, or a recovery code) goes through `flows::second_factor::complete`, as
//! `POST /auth/mfa/verify` does: the same budgets, lockout, single use and audit.
//!
//! A user with a passkey also gets "Use a passkey" (shown by the script where the browser has
//! WebAuthn): `ui.js` starts the ceremony at `POST /ui/mfa/passkey/start` and posts the
//! assertion back with the form of [`submit_passkey`], which answers it through the same
//! `complete` with `Answer::Passkey`. The `mfa_token` never leaves its HttpOnly cookie.

use crate::flows::SignedIn;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode};
use maud::{Markup, html};
use rampart_core::clock::now_ms;
use serde::Deserialize;
use webauthn_rs::prelude::PublicKeyCredential;

use super::forms::{Failure, FormErrors, Input, PreSessionForm, csrf_input};
use super::layout::Page;
use super::presession::PreSession;
use super::signing_in::{self, mfa_token};
use crate::AppState;
use crate::error::FieldError;
use crate::extract::{PresentedToken, RequestContext};
use crate::flows::AuthError;
use crate::flows::password_login::Flow;
use crate::flows::second_factor::{Answer, code_field, complete};

/// Without a pending sign-in there is nothing to complete: back to the password.
pub async fn show(State(state): State<AppState>, headers: HeaderMap, pre: PreSession) -> Response {
    let Some(token) = mfa_token(&headers) else {
        return Redirect::to("/ui/login").into_response();
    };
    let factors = factors(&state, &token).await;
    pre.respond(StatusCode::OK, page(&state, &pre, factors, &FormErrors::none()))
}

/// What the user of the pending login can answer with, so that the page asks for what they
/// have: a passkey-only user has no authenticator app, only passkeys and recovery codes.
#[derive(Clone, Copy)]
struct Factors {
    passkey: bool,
    totp: bool,
}

/// A dead or unknown token (or a store that cannot say) offers the code form as for TOTP, with
/// no passkey (the form then says the sign-in has expired).
async fn factors(state: &AppState, token: &PresentedToken) -> Factors {
    let unknown = Factors { passkey: false, totp: true };
    let Some(hash) = token.hash() else { return unknown };
    let Ok(Some(challenge)) = state.store.mfa_challenge(hash.as_str(), now_ms()).await else { return unknown };
    let passkey = state.store.count_passkeys(&challenge.user_id).await.is_ok_and(|n| n > 0);
    let totp = match state.store.user_by_id(&challenge.user_id).await {
        Ok(Some(user)) => user.mfa_enabled,
        _ => true,
    };
    Factors { passkey, totp: totp || !passkey }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeForm {
    code: String,
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn submit(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    PreSessionForm { form, pre }: PreSessionForm<CodeForm>,
) -> Response {
    let outcome = async {
        let token = mfa_token(&headers).ok_or(AuthError::InvalidChallenge)?;
        let code = code_field(&form.code).map_err(|e: FieldError| AuthError::Invalid(vec![e]))?;
        cookie_login(complete(&state, &ctx, &token, Answer::Code(&code), None).await?)
    };
    answered(&state, &ctx, &headers, &pre, outcome.await).await
}

/// The form `ui.js` fills with a passkey assertion: the ceremony's `challenge_id` and the
/// credential as `PublicKeyCredential.toJSON()` gives it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasskeyForm {
    challenge_id: String,
    credential: String,
}

/// `POST /ui/mfa/passkey`: the passkey answer to the pending login.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn submit_passkey(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    PreSessionForm { form, pre }: PreSessionForm<PasskeyForm>,
) -> Response {
    let outcome = async {
        let token = mfa_token(&headers).ok_or(AuthError::InvalidChallenge)?;
        let credential: PublicKeyCredential = serde_json::from_str(&form.credential)
            .map_err(|_| AuthError::field("credential", "is not a passkey answer this page can read"))?;
        let challenge_id = PresentedToken::parse(&form.challenge_id);
        let answer = Answer::Passkey { challenge_id: &challenge_id, credential: &credential };
        cookie_login(complete(&state, &ctx, &token, answer, None).await?)
    };
    answered(&state, &ctx, &headers, &pre, outcome.await).await
}

/// Only `/ui/login` sets the `mfa_token` cookie, and it always starts a cookie login.
fn cookie_login((user, flow): (SignedIn, Flow)) -> Result<SignedIn, AuthError> {
    match flow {
        Flow::Cookie => Ok(user),
        Flow::Token => Err(AuthError::InvalidChallenge),
    }
}

/// The page's answer to a second factor, by code or by passkey.
async fn answered(
    state: &AppState,
    ctx: &RequestContext,
    headers: &HeaderMap,
    pre: &PreSession,
    outcome: Result<SignedIn, AuthError>,
) -> Response {
    match outcome {
        Ok(user) => signing_in::complete(state, ctx, headers, &user).await,
        Err(AuthError::InvalidChallenge) => {
            // Expired, spent or dead after too many wrong codes: the password step again.
            let errors = FormErrors::whole_form("This sign-in has expired. Please sign in again.");
            let mut res = super::layout::html_response(StatusCode::UNAUTHORIZED, expired(state, &errors));
            res.headers_mut().append(http::header::SET_COOKIE, signing_in::clear_mfa());
            res
        }
        Err(e) => {
            let factors = match mfa_token(headers) {
                Some(token) => factors(state, &token).await,
                None => Factors { passkey: false, totp: true },
            };
            Failure::of(e).await.respond(|status, errors| pre.respond(status, page(state, pre, factors, errors)))
        }
    }
}

fn page(state: &AppState, pre: &PreSession, factors: Factors, errors: &FormErrors) -> Markup {
    let Factors { passkey, totp } = factors;
    let code = if totp {
        Input::new("code", "Code", "text").autocomplete("one-time-code").numeric()
    } else {
        // Recovery codes are letters and digits: no numeric keyboard.
        Input::new("code", "Recovery code", "text").autocomplete("one-time-code")
    };
    let content = html! {
        div class="card" {
            h1 { "Two-step verification" }
            p class="lead" {
                @if passkey { "Use one of your passkeys, or enter " } @else { "Enter " }
                @if totp {
                    "the 6-digit code from your authenticator app, or one of your recovery codes."
                } @else {
                    "one of your recovery codes if you no longer have your passkeys."
                }
            }
            (errors.summary())
            form class="stack" method="post" action="/ui/mfa" novalidate {
                (csrf_input(pre.token()))
                (code.render(errors))
                button type="submit" class="wide" { "Verify" }
            }
            @if passkey {
                // Shown by the script where the browser has WebAuthn; it fills and posts the
                // hidden form with the assertion.
                div id="passkey-mfa" class="stack below-form" hidden {
                    p class="muted" { "Or use one of your passkeys instead of a code." }
                    button type="button" class="secondary wide" id="passkey-mfa-button" { "Use a passkey" }
                    p id="passkey-error" class="field-error" role="alert" hidden {}
                    form id="passkey-mfa-form" method="post" action="/ui/mfa/passkey" hidden {
                        (csrf_input(pre.token()))
                        input type="hidden" name="challenge_id" value="";
                        input type="hidden" name="credential" value="";
                    }
                }
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

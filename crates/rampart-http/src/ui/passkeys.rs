//! Passkeys on the pages: the "Passkeys" section of `/ui/account` (the list, rendered here from
//! the store, so it is there without the script; rename and remove as plain forms), and the two
//! routes the second-factor page needs.
//!
//! - Adding a passkey and signing in with one are ceremonies only a browser's WebAuthn API can
//!   do, so `ui.js` runs them against the JSON API (`/auth/passkeys/register/*`,
//!   `/auth/passkeys/login/*`), with this session's CSRF token or, for sign-in, under the
//!   guard's Origin / `Sec-Fetch-Site` rules: nothing here accepts less than those endpoints.
//! - Renaming and removing go through `flows::own_passkeys`, which `PATCH` / `DELETE
//!   /auth/passkeys/{id}` call too: the same owner scope, the same recent sign-in
//!   (`auth.reauth_window`), the same 409 for the last passkey a role requires, the same audit
//!   event and owner's mail.
//! - On `/ui/mfa` the pending login stays in its HttpOnly cookie: the script never holds an
//!   `mfa_token`. [`mfa_start`] is a small same-origin JSON endpoint (its CSRF token is the
//!   pre-session's, sent as `X-CSRF-Token`), and the assertion comes back as an ordinary form
//!   post to [`super::mfa::submit_passkey`].

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode};
use maud::{Markup, html};
use rampart_core::clock::rfc3339;
use rampart_store::PasskeyRow;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;

use super::account::{Empty, failed};
use super::forms::{FormErrors, SignedInForm, csrf_input};
use super::presession;
use super::session::SignedIn;
use super::signing_in::mfa_token;
use crate::extract::{IdPath, RequestContext};
use crate::flows::passkeys::{NAME_MAX, start_second_factor};
use crate::flows::{AuthError, own_passkeys};
use crate::middleware::CSRF_HEADER;
use crate::{ApiError, AppState};

/// The account page's section. `required` is whether the user's role requires a passkey.
pub fn section(state: &AppState, me: &SignedIn, rows: &[PasskeyRow], required: bool) -> Markup {
    let csrf = me.csrf_token();
    let window_min = state.settings.auth.reauth_window.as_secs().div_ceil(60);
    html! {
        section class="card" aria-labelledby="passkeys-title" id="passkeys" {
            h2 id="passkeys-title" { "Passkeys" }
            p {
                "A passkey signs you in with your device's screen lock or security key, without a password. "
                "Unlike a password or a code, it cannot be phished."
                @if required { " " strong { "Your role requires one." } }
            }
            @if rows.is_empty() {
                p class="muted" id="no-passkeys" { "No passkeys yet." }
            } @else {
                div class="table-wrap" {
                    table class="responsive" id="passkeys-table" {
                        thead { tr {
                            th scope="col" { "Name" } th scope="col" { "Created" } th scope="col" { "Last used" }
                            th scope="col" { "Backed up" } th scope="col" { span class="visually-hidden" { "Actions" } }
                        } }
                        tbody {
                            @for p in rows {
                                @let created = rfc3339(p.created_at);
                                @let input_id = format!("passkey-name-{}", p.id);
                                tr {
                                    td class="wrap" data-label="Name" { (p.name) }
                                    td data-label="Created" { time datetime=(created) { (created) } }
                                    td data-label="Last used" {
                                        @match p.last_used_at.map(rfc3339) {
                                            Some(at) => time datetime=(at) { (at) },
                                            None => span class="muted" { "Never" },
                                        }
                                    }
                                    td data-label="Backed up" {
                                        @if p.backed_up { span class="badge ok" { "Yes" } } @else { span class="badge" { "No" } }
                                    }
                                    td data-label="Actions" {
                                        form class="inline-action" method="post" action={ "/ui/account/passkeys/" (p.id) "/rename" } {
                                            (csrf_input(csrf))
                                            label class="visually-hidden" for=(input_id) { "New name for " (p.name) }
                                            input id=(input_id) type="text" name="name" value=(p.name) maxlength=(NAME_MAX) required;
                                            button type="submit" class="secondary" { "Rename" span class="visually-hidden" { " " (p.name) } }
                                        }
                                        form method="post" action={ "/ui/account/passkeys/" (p.id) "/remove" } {
                                            (csrf_input(csrf))
                                            button type="submit" class="danger" { "Remove" span class="visually-hidden" { " " (p.name) } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            p class="hint" {
                "Adding or removing a passkey needs a sign-in within the last " (window_min) " minutes: "
                "if you signed in earlier, sign out and sign in again first."
            }
            // Shown by the script only where the browser has WebAuthn: without it there is
            // nothing this button could do.
            div id="passkey-add" class="stack" hidden data-csrf=(csrf) {
                div class="field" {
                    label for="passkey-add-name" { "Name for the new passkey (optional)" }
                    input id="passkey-add-name" type="text" maxlength=(NAME_MAX) autocomplete="off";
                }
                div class="actions" { button type="button" id="passkey-add-button" { "Add a passkey" } }
                p id="passkey-error" class="field-error" role="alert" hidden {}
            }
            // The recovery codes issued with a first passkey: the script fills the list (with
            // `textContent` only) from the answer of `register/finish` and shows this instead of
            // reloading, because no later page can show them again.
            div id="passkey-recovery" class="stack" role="alert" tabindex="-1" hidden {
                h3 { "Save your recovery codes now" }
                p {
                    "Your passkey was added. Each of these codes signs you in once, after your password, "
                    "if you lose every passkey. Save them somewhere safe now: they are shown only this once."
                }
                ol class="codes" id="passkey-recovery-codes" {}
                p { a class="button" href="/ui/account?notice=passkey_added" { "I have saved them" } }
            }
        }
    }
}

/// The notice at the top of the account page of a user whose role requires a passkey and who has
/// none yet: every sign-in until then is by password.
pub fn enrol_notice() -> Markup {
    html! {
        div class="error-summary" role="alert" id="passkey-required" {
            h2 { "Add a passkey" }
            p { "Your role requires a passkey. Add one below: once you have it, a password (or a password and a code) no longer signs you in." }
            p { a href="#passkeys" { "Go to Passkeys" } }
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameForm {
    name: String,
}

/// `POST /ui/account/passkeys/{id}/rename`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn rename(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    SignedInForm { signed_in: me, form }: SignedInForm<RenameForm>,
) -> Response {
    let renamed = async {
        let name = own_passkeys::name_field(&form.name).map_err(|e| AuthError::Invalid(vec![e]))?;
        own_passkeys::rename(&state, &me.user, &id, &name).await
    };
    match renamed.await {
        Ok(_) => Redirect::to("/ui/account?notice=passkey_renamed").into_response(),
        // The field is one of several rename inputs: the message names what it is about.
        Err(AuthError::Invalid(errors)) => {
            let message = errors.first().map_or("is not valid", |e| e.message.as_str());
            let errors = FormErrors::whole_form(format!("Passkey name: {message}."));
            super::account::render_with(&state, &me, StatusCode::BAD_REQUEST, &errors).await
        }
        Err(e) => failed(&state, &me, e).await,
    }
}

/// `POST /ui/account/passkeys/{id}/remove`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn remove(
    State(state): State<AppState>,
    ctx: RequestContext,
    IdPath(id): IdPath,
    SignedInForm { signed_in: me, .. }: SignedInForm<Empty>,
) -> Response {
    match own_passkeys::remove(&state, &ctx, &me.user, &me.session_id, &id).await {
        Ok(()) => Redirect::to("/ui/account?notice=passkey_removed").into_response(),
        Err(AuthError::ReauthRequired) => {
            // The API's 403, in words that say what to do on this page.
            let errors = FormErrors::whole_form(
                "To remove a passkey you must sign in again: your sign-in is too old. Sign out, sign in, then remove it.",
            );
            super::account::render_with(&state, &me, StatusCode::FORBIDDEN, &errors).await
        }
        Err(e) => failed(&state, &me, e).await,
    }
}

/// `POST /ui/mfa/passkey/start`: `{challenge_id, options}` for the login pending in this
/// browser's `__Host-rampart_mfa` cookie, through the flow of `POST /auth/mfa/passkey/start`
/// (the same login budgets). `X-CSRF-Token` must be the pre-session's token, which only a page
/// of ours can read: a custom header is also something no cross-site form can send.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn mfa_start(State(state): State<AppState>, ctx: RequestContext, headers: HeaderMap) -> Response {
    let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !presession::verify(&state, &headers, sent) {
        return super::forms::REFUSED.into_response();
    }
    let Some(token) = mfa_token(&headers) else {
        return ApiError::from(AuthError::InvalidChallenge).into_response();
    };
    match start_second_factor(&state, &ctx, &token).await {
        Ok(s) => Json(json!({ "challenge_id": s.challenge_id.expose_secret(), "options": s.options })).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

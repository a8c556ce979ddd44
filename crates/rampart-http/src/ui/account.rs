//! `/ui/account`: the signed-in visitor's own page: profile (display name), email status,
//! password change, the list of their sessions with "sign out" for each, two-step verification,
//! the passkeys (`passkeys`), the API keys (`api_keys`) and sign-out. Every change goes through the flow the JSON handler
//! of the same action uses (`flows::account`, `flows::sessions::sign_out`, `flows::api_keys`).

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{StatusCode, header};
use maud::html;
use rampart_core::clock::{duration_ms, now_ms, rfc3339};
use secrecy::SecretString;
use serde::Deserialize;

use super::api_keys::Targets;
use super::forms::{Failure, FormErrors, Input, SignedInForm, csrf_input};
use super::layout::Page;
use super::notice;
use super::session::SignedIn;
use crate::cookie::clear_session;
use crate::extract::RequestContext;
use crate::flows::account::{change_password, revoke_own_login, set_display_name};
use crate::flows::api_keys::KeyView;
use crate::flows::passkeys::required_for;
use crate::flows::sessions::sign_out;
use crate::{ApiError, AppState};

#[derive(Deserialize, Default)]
pub struct NoticeQuery {
    notice: Option<String>,
}

pub async fn show(State(state): State<AppState>, me: SignedIn, Query(q): Query<NoticeQuery>) -> Response {
    render(&state, &me, q.notice.as_deref(), StatusCode::OK, &FormErrors::none()).await
}

/// The account page, with a notice or with the errors of the form just posted.
async fn render(
    state: &AppState,
    me: &SignedIn,
    note: Option<&str>,
    status: StatusCode,
    errors: &FormErrors,
) -> Response {
    let idle = duration_ms(state.settings.auth.session_idle_timeout);
    let sessions = match state.store.list_sessions(&me.user.id, now_ms(), idle).await {
        Ok(rows) => rows,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let keys = match state.store.api_keys_of(&me.user.id).await {
        Ok(rows) => rows.iter().map(KeyView::from).collect::<Vec<_>>(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let passkeys = match state.store.passkeys_of_user(&me.user.id).await {
        Ok(rows) => rows,
        Err(e) => return ApiError::from(e).into_response(),
    };
    // `auth.passkeys.required_for_roles`: pushed to enrol, at the top, until they have one.
    let passkey_required = required_for(state, &me.user);
    let key_targets = Targets { create: "/ui/account/api-keys", revoke: "/ui/account/api-keys/revoke" };
    let user = &me.user;
    let token = me.csrf_token();
    let content = html! {
        h1 { "Your account" }
        p class="lead" { "Signed in as " strong { (user.email) } }
        @if passkey_required && passkeys.is_empty() { (super::passkeys::enrol_notice()) }
        (notice::render(note))
        (errors.summary())
        div class="stack-gap" {
            section class="card" aria-labelledby="profile-title" {
                h2 id="profile-title" { "Profile" }
                dl class="facts" {
                    dt { "Email" }
                    dd {
                        (user.email) " "
                        @if user.email_verified { span class="badge ok" { "Verified" } }
                        @else { span class="badge warn" { "Not verified" } }
                    }
                    dt { "Two-step verification" }
                    dd {
                        // A passkey is a second factor too: a password sign-in then asks for it
                        // (flows::password_login), so the page must not say "Off".
                        @match (user.mfa_enabled, !passkeys.is_empty()) {
                            (false, false) => span class="badge" { "Off" },
                            (totp, passkey) => {
                                span class="badge ok" { "On" }
                                " "
                                span class="hint" id="second-factors" {
                                    @if totp && passkey { "authenticator app and passkey" }
                                    @else if totp { "authenticator app" }
                                    @else { "passkey" }
                                }
                            }
                        }
                    }
                }
                form class="stack" method="post" action="/ui/account/profile" novalidate {
                    (csrf_input(token))
                    (Input::new("display_name", "Display name", "text")
                        .autocomplete("nickname")
                        .value(user.display_name.as_deref())
                        .hint("How you are shown to others. Leave empty to remove it.")
                        .optional()
                        .render(errors))
                    div class="actions" { button type="submit" { "Save" } }
                }
            }
            section class="card" aria-labelledby="password-title" {
                h2 id="password-title" { "Password" }
                form class="stack" method="post" action="/ui/account/password" novalidate {
                    (csrf_input(token))
                    // Lets password managers tie the new password to this account.
                    input type="hidden" name="username" value=(user.email) autocomplete="username";
                    (Input::new("current_password", "Current password", "password").autocomplete("current-password").render(errors))
                    (Input::new("new_password", "New password", "password")
                        .autocomplete("new-password")
                        .hint("Your other sessions will be signed out.")
                        .render(errors))
                    div class="actions" { button type="submit" { "Change password" } }
                }
            }
            (super::passkeys::section(state, me, &passkeys, passkey_required))
            (super::totp::section(user, token))
            (super::api_keys::section(state, user, &keys, token, &key_targets, errors))
            section class="card" aria-labelledby="sessions-title" {
                h2 id="sessions-title" { "Where you are signed in" }
                div class="table-wrap" {
                    table class="responsive" {
                        thead { tr { th scope="col" { "Device" } th scope="col" { "IP address" } th scope="col" { "Last seen" } th scope="col" { span class="visually-hidden" { "Action" } } } }
                        tbody {
                            @for s in &sessions {
                                tr {
                                    td class="wrap" data-label="Device" {
                                        @match &s.user_agent { Some(ua) => (ua), None => span class="muted" { "Unknown" } }
                                        @if s.kind == "token" { " " span class="badge" { "App" } }
                                        @if s.id == me.session_id { " " span class="badge ok" { "This device" } }
                                    }
                                    td data-label="IP address" { @match &s.ip { Some(ip) => (ip), None => "—" } }
                                    td data-label="Last seen" { time datetime=(rfc3339(s.last_seen_at)) { (rfc3339(s.last_seen_at)) } }
                                    td data-label="Action" {
                                        form method="post" action="/ui/account/sessions/revoke" {
                                            (csrf_input(token))
                                            input type="hidden" name="id" value=(s.id);
                                            button type="submit" class="secondary" { "Sign out" span class="visually-hidden" { " this session" } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Page::signed_in("Account", me, "/ui/account").respond(state, status, content)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileForm {
    display_name: String,
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn save_profile(
    State(state): State<AppState>,
    SignedInForm { signed_in: me, form }: SignedInForm<ProfileForm>,
) -> Response {
    match set_display_name(&state, &me.user.id, Some(form.display_name)).await {
        Ok(_) => Redirect::to("/ui/account?notice=saved").into_response(),
        Err(e) => failed(&state, &me, e).await,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordForm {
    /// The hidden `username` for password managers; not used.
    #[serde(rename = "username")]
    _username: Option<String>,
    current_password: SecretString,
    new_password: SecretString,
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn change_password_form(
    State(state): State<AppState>,
    ctx: RequestContext,
    SignedInForm { signed_in: me, form }: SignedInForm<PasswordForm>,
) -> Response {
    match change_password(&state, &ctx, &me.user, &me.session_id, form.current_password, form.new_password).await {
        Ok(()) => Redirect::to("/ui/account?notice=password_changed").into_response(),
        Err(e) => failed(&state, &me, e).await,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeForm {
    id: String,
}

/// Signs out one of the visitor's own sessions; this one too, which then ends here.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn revoke_session(
    State(state): State<AppState>,
    ctx: RequestContext,
    SignedInForm { signed_in: me, form }: SignedInForm<RevokeForm>,
) -> Response {
    match revoke_own_login(&state, &ctx, &me.user.id, &form.id).await {
        Ok(true) if form.id == me.session_id => signed_out(),
        Ok(true) => Redirect::to("/ui/account?notice=session_revoked").into_response(),
        // Not one of theirs, or already ended: the same answer either way.
        Ok(false) => {
            let errors = FormErrors::whole_form("That session does not exist or has already ended.");
            render(&state, &me, None, StatusCode::NOT_FOUND, &errors).await
        }
        Err(e) => failed(&state, &me, e).await,
    }
}

/// The account page with `errors` shown at the top, answered with `status`.
pub(super) async fn render_with(state: &AppState, me: &SignedIn, status: StatusCode, errors: &FormErrors) -> Response {
    render(state, me, None, status, errors).await
}

/// The account page again with a flow's refusal, as the API would have answered it.
pub(super) async fn failed(state: &AppState, me: &SignedIn, e: impl Into<ApiError>) -> Response {
    match Failure::of(e).await {
        Failure::Show { status, headers, errors } => {
            let mut res = render(state, me, None, status, &errors).await;
            res.headers_mut().extend(headers);
            res
        }
        Failure::Page(res) => res,
    }
}

/// No fields besides the CSRF token.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// `POST /ui/logout`: ends this session (the flow the JSON `POST /auth/logout` uses), clears the
/// cookie, 303 to the sign-in page.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn logout(
    State(state): State<AppState>,
    ctx: RequestContext,
    SignedInForm { signed_in, .. }: SignedInForm<Empty>,
) -> Response {
    if let Err(e) = sign_out(&state, &ctx, &signed_in.user.id, &signed_in.session_id).await {
        return ApiError::from(e).into_response();
    }
    signed_out()
}

fn signed_out() -> Response {
    let mut res = Redirect::to("/ui/login?notice=signed_out").into_response();
    res.headers_mut().append(header::SET_COOKIE, clear_session());
    res
}

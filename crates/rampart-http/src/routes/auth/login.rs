//! `POST /auth/login`, `POST /auth/logout`, `GET /auth/csrf`.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use http::{HeaderMap, StatusCode, header};
use rampart_core::opaque_token;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

use crate::cookie::{clear_session, new_session, session_value};
use crate::extract::{ApiJson, Authenticated, Credential, RequestContext};
use crate::flows::password_login::{Flow, password_step};
use crate::flows::{SignedIn, sessions};
use crate::middleware::LoginIpSpent;
use crate::views::UserView;
use crate::{ApiError, AppState};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    password: SecretString,
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn login(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    ip_spent: Option<Extension<LoginIpSpent>>,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let ip_spent = ip_spent.map(|Extension(s)| s);
    let login = password_step(&state, &ctx, &body.email, body.password, ip_spent, Flow::Cookie).await?;
    start_session(&state, &ctx, &headers, &login).await
}

/// A complete cookie login (password, and second factor if any): a new session, its cookie, and
/// the login's answer `{user, csrf_token}`.
pub(super) async fn start_session(
    state: &AppState,
    ctx: &RequestContext,
    headers: &HeaderMap,
    login: &SignedIn,
) -> Result<Response, ApiError> {
    let session = sessions::open_cookie_session(state, ctx, session_value(headers), login).await?;
    let user = login.user();
    let cookie = new_session(&session, &state.settings)?;
    // `auth.passkeys.required_for_roles`: a user whose role requires a passkey and who has none
    // yet signs in as before, and is told to add one (the page sends them there).
    let enrol = crate::flows::passkeys::required_for(state, user) && state.store.count_passkeys(&user.id).await? == 0;
    let body = if enrol {
        json!({ "user": UserView::from(user), "csrf_token": session.csrf_token, "passkey_enrollment_required": true })
    } else {
        json!({ "user": UserView::from(user), "csrf_token": session.csrf_token })
    };
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

/// Ends the login the request authenticated with: the cookie session, or the bearer token's
/// `sid` (every access and refresh token of that login dies with it).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn logout(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
) -> Result<Response, ApiError> {
    sessions::sign_out(&state, &ctx, &auth.user.id, &auth.session_id).await?;
    let cookie = matches!(auth.credential, Credential::Cookie(_));
    if cookie {
        return Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear_session())]).into_response());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The CSRF token of the current cookie session (also returned by login).
pub async fn csrf(auth: Authenticated) -> Result<Json<serde_json::Value>, ApiError> {
    match auth.credential {
        Credential::Cookie(value) => Ok(Json(json!({ "csrf_token": opaque_token::csrf_token(&value) }))),
        Credential::Bearer | Credential::ApiKey(_) => {
            Err(ApiError::BadRequest("CSRF tokens belong to cookie sessions; bearer requests need none".into()))
        }
    }
}

//! `/auth/password`: change (signed in), forgot and reset (by a mailed token).

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

use crate::extract::{ApiJson, Authenticated, PresentedToken, RequestContext};
use crate::flows::{account, recovery};
use crate::middleware::LoginIpSpent;
use crate::{ApiError, AppState};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeRequest {
    current_password: SecretString,
    new_password: SecretString,
}

/// `POST /auth/password/change`: the current password proves it is the owner (not just whoever
/// holds the session); every other login of the user ends, this one stays.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn change(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
    ApiJson(body): ApiJson<ChangeRequest>,
) -> Result<StatusCode, ApiError> {
    account::change_password(&state, &ctx, &auth.user, &auth.session_id, body.current_password, body.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgotRequest {
    email: String,
}

/// `POST /auth/password/forgot`: always 202 with the same body (see
/// [`recovery::request_reset`]).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn forgot(
    State(state): State<AppState>,
    ctx: RequestContext,
    ip_spent: Option<Extension<LoginIpSpent>>,
    ApiJson(body): ApiJson<ForgotRequest>,
) -> Result<Response, ApiError> {
    recovery::request_reset(&state, &ctx, &body.email, ip_spent.map(|Extension(s)| s)).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "status": "reset_requested" }))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    token: PresentedToken,
    new_password: SecretString,
}

/// `POST /auth/password/reset`: a mailed token sets a new password, once; every login of the
/// user ends and an automatic lockout is lifted.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn reset(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<ResetRequest>,
) -> Result<StatusCode, ApiError> {
    recovery::reset_password(&state, &ctx, &body.token, body.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

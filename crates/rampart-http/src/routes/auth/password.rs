//! `/auth/password`: change (signed in), forgot and reset (by a mailed token).

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use rampart_core::clock::now_ms;
use rampart_core::password::check_length;
use rampart_store::{AuditEvent, AuditOutcome};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

use super::super::audit_trail::{Audit, record};
use crate::error::FieldError;
use crate::extract::{ApiJson, Authenticated, PresentedToken, RequestContext};
use crate::flows::reauth::reauthenticate;
use crate::flows::{AuthError, recovery};
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
#[tracing::instrument(skip_all)]
pub async fn change(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
    ApiJson(body): ApiJson<ChangeRequest>,
) -> Result<StatusCode, ApiError> {
    let user = &auth.user;
    let mut errors = Vec::new();
    if let Err(e) = check_length(&body.current_password) {
        errors.push(FieldError::new("current_password", e.to_string()));
    }
    if let Err(e) = state.settings.auth.password_policy().check(&body.new_password, &[user.email_normalized.as_str()]) {
        errors.push(FieldError::new("new_password", e.to_string()));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    // Guessing the current password through a stolen session costs, and counts, like guessing it
    // at login.
    let (password_ok, attempt) = reauthenticate(&state, &ctx, user, body.current_password).await?;
    if !password_ok {
        let event = Audit {
            action: AuditEvent::PasswordChanged,
            actor_id: Some(&user.id),
            target: Some(&user.id),
            outcome: AuditOutcome::Failure,
        };
        record(&state, &ctx, event).await;
        attempt.failed(&state, &ctx).await;
        return Err(ApiError::Forbidden("the current password is not correct"));
    }
    attempt.release(&state).await;
    let new_hash = state.hasher.hash(body.new_password).await?;
    let now = now_ms();
    let notice = rampart_mail::templates::password_changed(&user.email);
    let notice = state.mailer.seal(notice).map_err(|e| ApiError::Internal(e.to_string()))?;
    let revoked = state
        .store
        .change_password(&user.id, user.password_hash.as_str(), &new_hash, &auth.session_id, now, &notice)
        .await?
        .ok_or(AuthError::PasswordChangedMeanwhile)?;
    state.revoke_token_logins(&revoked, now).await;
    let event = Audit {
        action: AuditEvent::PasswordChanged,
        actor_id: Some(&user.id),
        target: Some(&user.id),
        outcome: AuditOutcome::Success,
    };
    record(&state, &ctx, event).await;
    state.mailer.wake();
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgotRequest {
    email: String,
}

/// `POST /auth/password/forgot`: always 202 with the same body (see
/// [`recovery::request_reset`]).
#[tracing::instrument(skip_all)]
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
#[tracing::instrument(skip_all)]
pub async fn reset(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<ResetRequest>,
) -> Result<StatusCode, ApiError> {
    recovery::reset_password(&state, &ctx, &body.token, body.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

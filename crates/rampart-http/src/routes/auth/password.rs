//! `/auth/password`: change (signed in), forgot and reset (by a mailed token).

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use rampart_core::clock::now_ms;
use rampart_core::email::Email;
use rampart_core::password::check_length;
use rampart_core::token::{self, TokenHash};
use rampart_store::{AuditEvent, AuditOutcome, Purpose};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use super::super::audit::{Audit, record};
use super::credentials::login_gate;
use super::reauth::reauthenticate;
use crate::error::FieldError;
use crate::extract::{ApiJson, Authenticated, RequestContext};
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
    if let Err(e) = state.policy.check(&body.new_password, &[user.email_normalized.as_str()]) {
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
    let revoked = state
        .store
        .change_password(&user.id, &user.password_hash, &new_hash, &auth.session_id, now)
        .await?
        .ok_or(ApiError::Conflict("the password was changed by another request meanwhile"))?;
    state.revoke_token_logins(&revoked, now).await;
    let event = Audit {
        action: AuditEvent::PasswordChanged,
        actor_id: Some(&user.id),
        target: Some(&user.id),
        outcome: AuditOutcome::Success,
    };
    record(&state, &ctx, event).await;
    state.mailer.send(rampart_mail::templates::password_changed(&user.email));
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgotRequest {
    email: String,
}

/// `POST /auth/password/forgot`: always 202 with the same body. Everything that depends on
/// whether the account exists (the lookup, the token, the mail, the audit event) happens after
/// the answer, in a background task, so neither the body nor the timing tells.
#[tracing::instrument(skip_all)]
pub async fn forgot(
    State(state): State<AppState>,
    ctx: RequestContext,
    ip_spent: Option<Extension<LoginIpSpent>>,
    ApiJson(body): ApiJson<ForgotRequest>,
) -> Result<Response, ApiError> {
    let email =
        Email::parse(&body.email).map_err(|e| ApiError::Validation(vec![FieldError::new("email", e.to_string())]))?;
    login_gate(&state, &ctx, Some(email.normalized()), ip_spent.map(|Extension(s)| s)).await?;
    let (state2, ctx2) = (state.clone(), ctx.clone());
    tokio::spawn(async move {
        let found = match state2.store.user_by_email(email.normalized()).await {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(error = %e, "forgot-password lookup failed; no mail sent");
                return;
            }
        };
        if let Some(user) = &found {
            super::mailing::send_reset(&state2, user);
        }
        let event = Audit {
            action: AuditEvent::PasswordResetRequested,
            actor_id: found.as_ref().map(|u| u.id.as_str()),
            target: Some(email.normalized()),
            outcome: if found.is_some() { AuditOutcome::Success } else { AuditOutcome::Failure },
        };
        record(&state2, &ctx2, event).await;
    });
    Ok((StatusCode::ACCEPTED, Json(json!({ "status": "reset_requested" }))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    token: SecretString,
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
    let presented = body.token.expose_secret();
    if !token::well_formed(presented) {
        return Err(ApiError::InvalidToken);
    }
    let hash = TokenHash::of(presented);
    // Looked up (not spent) first, so that a bad token costs no password hash.
    let user = state
        .store
        .account_token_user(hash.as_str(), Purpose::PasswordReset, now_ms())
        .await?
        .ok_or(ApiError::InvalidToken)?;
    if let Err(e) = state.policy.check(&body.new_password, &[user.email_normalized.as_str()]) {
        return Err(ApiError::Validation(vec![FieldError::new("new_password", e.to_string())]));
    }
    let new_hash = state.hasher.hash(body.new_password).await?;
    let now = now_ms();
    let revoked =
        state.store.reset_password(hash.as_str(), &user.id, &new_hash, now).await?.ok_or(ApiError::InvalidToken)?;
    state.revoke_token_logins(&revoked, now).await;
    let event = Audit {
        action: AuditEvent::PasswordResetCompleted,
        actor_id: Some(&user.id),
        target: Some(&user.id),
        outcome: AuditOutcome::Success,
    };
    record(&state, &ctx, event).await;
    Ok(StatusCode::NO_CONTENT)
}

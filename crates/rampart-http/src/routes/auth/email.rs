//! `POST /auth/email/verify`: a mailed token marks the address verified, once.

use axum::extract::State;
use http::StatusCode;
use rampart_core::clock::now_ms;
use rampart_core::token::{self, TokenHash};
use rampart_store::{AuditEvent, AuditOutcome};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::super::audit::{Audit, record};
use crate::extract::{ApiJson, RequestContext};
use crate::{ApiError, AppState};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    token: SecretString,
}

#[tracing::instrument(skip_all)]
pub async fn verify(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<VerifyRequest>,
) -> Result<StatusCode, ApiError> {
    let presented = body.token.expose_secret();
    if !token::well_formed(presented) {
        return Err(ApiError::InvalidToken);
    }
    let user_id =
        state.store.verify_email(TokenHash::of(presented).as_str(), now_ms()).await?.ok_or(ApiError::InvalidToken)?;
    let event = Audit {
        action: AuditEvent::EmailVerified,
        actor_id: Some(&user_id),
        target: Some(&user_id),
        outcome: AuditOutcome::Success,
    };
    record(&state, &ctx, event).await;
    Ok(StatusCode::NO_CONTENT)
}

//! `POST /auth/email/verify`: a mailed token marks the address verified, once.

use axum::extract::State;
use http::StatusCode;
use serde::Deserialize;

use crate::extract::{ApiJson, PresentedToken, RequestContext};
use crate::flows::recovery;
use crate::{ApiError, AppState};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    token: PresentedToken,
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn verify(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<VerifyRequest>,
) -> Result<StatusCode, ApiError> {
    recovery::verify_email(&state, &ctx, &body.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

//! `POST /admin/users/{id}/mfa/reset`: removes every second factor of a user.
//!
//! The way back for an owner locked out by a factor they do not hold (a lost phone, or an
//! authenticator a thief enrolled with a stolen session). It also ends the logins waiting for a
//! second factor, so a password step taken before the reset cannot be completed with the old
//! factor. Audited `mfa_reset`; the owner is mailed when a factor was in force.
//!
//! An admin cannot reset their own factor here (403): for oneself the way is
//! `POST /auth/mfa/totp/disable`, with the password and a code, so a stolen admin session cannot
//! strip its owner's second factor.

use axum::extract::State;
use http::StatusCode;

use crate::extract::{Admin, IdPath, RequestContext, RequireRole};
use crate::flows::admin_users::{self, Acting};
use crate::{ApiError, AppState};

#[tracing::instrument(level = "debug", skip_all)]
pub async fn reset(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: RequireRole<Admin>,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    admin_users::reset_mfa(&state, Acting { admin_id: &admin.user.id, ctx: &ctx }, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

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
use rampart_core::clock::now_ms;
use rampart_mail::templates::{self, RemovedBy};
use rampart_store::{AuditEvent, AuditOutcome};

use super::super::audit_trail::{Audit, record};
use crate::extract::{Admin, IdPath, RequestContext, RequireRole};
use crate::{ApiError, AppState};

#[tracing::instrument(skip_all)]
pub async fn reset(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: RequireRole<Admin>,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    if id == admin.user.id {
        return Err(ApiError::Forbidden(
            "you cannot reset your own second factor; use POST /auth/mfa/totp/disable or ask another admin",
        ));
    }
    let notice = |to: &str| match state.mailer.seal(templates::second_factor_removed(to, RemovedBy::Administrator)) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::error!(error = %e, "the second-factor notice could not be sealed; not queued");
            None
        }
    };
    let done = state.store.reset_mfa(&id, now_ms(), notice).await?.ok_or(ApiError::NotFound)?;
    let event = Audit {
        action: AuditEvent::MfaReset,
        actor_id: Some(&admin.user.id),
        target: Some(&id),
        outcome: AuditOutcome::Success,
    };
    record(&state, &ctx, event).await;
    if done.removed {
        state.mailer.wake();
    }
    Ok(StatusCode::NO_CONTENT)
}

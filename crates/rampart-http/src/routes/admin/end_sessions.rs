//! `DELETE /admin/users/{id}/sessions`: ends every login of a user, cookie sessions and token
//! logins alike, at once on every instance (the token logins go into the revocation set, and the
//! others learn of them from the database). The answer to a stolen session that the owner cannot
//! end, or to an account being taken over; the account itself stays usable (lock it too, with
//! `PATCH /admin/users/{id}`, to keep its owner out). Audited `session_revoked`, with the user as
//! the target.

use axum::extract::State;
use http::StatusCode;
use rampart_core::clock::now_ms;
use rampart_store::{AuditEvent, AuditOutcome};

use super::super::audit_trail::{Audit, record};
use crate::extract::{Admin, IdPath, RequestContext, RequireRole};
use crate::{ApiError, AppState};

#[tracing::instrument(skip_all)]
pub async fn end_all(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: RequireRole<Admin>,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    let now = now_ms();
    let token_logins = state.store.admin_end_logins(&id, now).await?.ok_or(ApiError::NotFound)?;
    state.revoke_token_logins(&token_logins, now).await;
    let event = Audit {
        action: AuditEvent::SessionRevoked,
        actor_id: Some(&admin.user.id),
        target: Some(&id),
        outcome: AuditOutcome::Success,
    };
    record(&state, &ctx, event).await;
    Ok(StatusCode::NO_CONTENT)
}

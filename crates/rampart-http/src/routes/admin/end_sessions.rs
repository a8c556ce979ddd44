//! `DELETE /admin/users/{id}/sessions`: ends every login of a user, cookie sessions and token
//! logins alike, at once on every instance (the token logins go into the revocation set, and the
//! others learn of them from the database). The answer to a stolen session that the owner cannot
//! end, or to an account being taken over; the account itself stays usable (lock it too, with
//! `PATCH /admin/users/{id}`, to keep its owner out). Audited `session_revoked`, with the user as
//! the target.

use axum::extract::State;
use http::StatusCode;

use crate::extract::{Admin, IdPath, RequestContext, RequireRole};
use crate::flows::admin_users::{self, Acting};
use crate::{ApiError, AppState};

#[tracing::instrument(level = "debug", skip_all)]
pub async fn end_all(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: RequireRole<Admin>,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    admin_users::end_sessions(&state, Acting { admin_id: &admin.user.id, ctx: &ctx }, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

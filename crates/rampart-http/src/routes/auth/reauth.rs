//! Re-authentication of a signed-in user by their current password, before a change that a stolen
//! session or access token alone must not be able to make: adding or removing a second factor.

use rampart_core::auth::hasher::{HashError, Verdict};
use rampart_store::UserRow;
use secrecy::SecretString;

use super::credentials::login_gate;
use crate::extract::RequestContext;
use crate::{ApiError, AppState};

/// Whether `password` is the signed-in user's current password.
///
/// One function for every such check, so that what a wrong password costs is decided in one
/// place. Guessing the password through a stolen session costs what guessing it at login does:
/// the login budgets (per IP, per account, global) are spent first, and the hash runs in the
/// bounded pool, refused early (503) when it is saturated, before any Argon2 work.
pub async fn password_matches(
    state: &AppState,
    ctx: &RequestContext,
    user: &UserRow,
    password: SecretString,
) -> Result<bool, ApiError> {
    login_gate(state, ctx, &user.email_normalized, None).await?;
    if state.hasher.saturated() {
        return Err(HashError::Busy.into());
    }
    let verdict = state.hasher.verify(password, Some(user.password_hash.clone())).await?;
    Ok(matches!(verdict, Verdict::Match { .. }))
}

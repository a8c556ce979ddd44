//! Re-authentication of a signed-in user by their current password, before a change that a stolen
//! session or access token alone must not be able to make: the password itself, adding or
//! removing a second factor.

use rampart_core::auth::hasher::{HashError, Verdict};
use rampart_store::UserRow;
use secrecy::SecretString;

use super::AuthError;
use super::attempt::Attempt;
use super::budget::spend_login_budgets;
use crate::AppState;
use crate::extract::RequestContext;

/// A signed-in user proves their password again. One function for every such check, so that
/// what a wrong password costs is decided in one place: it costs like a login attempt and counts
/// like one: the login budgets, a reservation refused while the account is locked, and a wrong password counted towards the lockout, so that a stolen
/// session cannot be used to guess the password at leisure. The caller ends the returned
/// attempt: [`Attempt::release`] when everything it asked for was right, else
/// [`Attempt::failed`].
pub async fn reauthenticate(
    state: &AppState,
    ctx: &RequestContext,
    user: &UserRow,
    password: SecretString,
) -> Result<(bool, Attempt), AuthError> {
    spend_login_budgets(state, ctx, Some(&user.email_normalized), None).await?;
    if state.hasher.saturated() {
        return Err(HashError::Busy.into());
    }
    let attempt = Attempt::reserve(state, ctx, Some(user), &user.email_normalized).await?;
    match state.hasher.verify(password, Some(user.password_hash.as_str().to_owned())).await {
        Ok(verdict) => Ok((matches!(verdict, Verdict::Match { .. }), attempt)),
        Err(e) => {
            attempt.release(state).await;
            Err(e.into())
        }
    }
}

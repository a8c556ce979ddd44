//! The credential check shared by `POST /auth/login` and the token password grant: one code path,
//! one hashing pool, one uniform failure.

use rampart_core::auth::hasher::Verdict;
use rampart_core::clock::now_ms;
use rampart_core::email::Email;
use rampart_core::password::check_length;
use rampart_store::{AuditEvent, UserRow};
use secrecy::SecretString;

use super::super::audit::{Audit, record};
use crate::error::FieldError;
use crate::extract::RequestContext;
use crate::{ApiError, AppState};

/// The one answer for an unknown email and a wrong password: same status, same bytes.
pub const INVALID_CREDENTIALS: ApiError = ApiError::Unauthorized("invalid email or password");

/// Checks an email and password. Failures are audited and answered uniformly.
pub async fn authenticate(
    state: &AppState,
    ctx: &RequestContext,
    email: &str,
    password: SecretString,
) -> Result<UserRow, ApiError> {
    let email = Email::parse(email).map_err(|e| ApiError::Validation(vec![FieldError::new("email", e.to_string())]))?;
    check_length(&password).map_err(|e| ApiError::Validation(vec![FieldError::new("password", e.to_string())]))?;

    let user = state.store.user_by_email(email.normalized()).await?;
    // An unknown email is checked against a dummy hash: the same Argon2 work as a wrong password,
    // so response time does not reveal whether an account exists.
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let verdict = state.hasher.verify(password.clone(), stored).await?;
    let (user, rehash) = match (user, verdict) {
        (Some(user), Verdict::Match { rehash }) => (user, rehash),
        (user, _) => {
            let actor = user.as_ref().map(|u| u.id.as_str());
            let event = Audit {
                action: AuditEvent::LoginFailure,
                actor_id: actor,
                target: Some(email.normalized()),
                outcome: "failure",
            };
            record(state, ctx, event).await;
            return Err(INVALID_CREDENTIALS);
        }
    };
    if rehash {
        // Parameters were raised since this hash was made: store a fresh one. Off the response
        // path; it only succeeds if the hash was not changed meanwhile.
        let (state, id, old) = (state.clone(), user.id.clone(), user.password_hash.clone());
        tokio::spawn(async move {
            let result = match state.hasher.hash(password).await {
                Ok(new) => state.store.rehash_password(&id, &old, &new, now_ms()).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "rehash on login failed");
            }
        });
    }
    Ok(user)
}

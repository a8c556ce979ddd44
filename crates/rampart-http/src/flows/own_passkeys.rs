//! A signed-in user's own passkeys: the name rule, the recent sign-in that adding or removing one
//! needs, renaming and removing. `PATCH` / `DELETE /auth/passkeys/{id}` and the account page's
//! forms (`/ui/account/passkeys/{id}/rename`, `/remove`) both call these, so the rules, the audit
//! event and the owner's mail are the same whichever way a passkey goes.
//!
//! - Renaming and removing are scoped by the owner in the statement itself: another user's
//!   passkey is "not found", never "forbidden", so ids cannot be probed.
//! - Adding or removing needs a sign-in within `auth.reauth_window`: a stolen session that is
//!   hours old can neither add the thief's passkey (which would outlive a password reset) nor
//!   strip the owner's.
//! - The last passkey of a user whose role requires one (`auth.passkeys.required_for_roles`)
//!   cannot be removed: they would be left with nothing their policy accepts.

use rampart_core::clock::{duration_ms, now_ms};
use rampart_store::{AuditEvent, AuditOutcome, PasskeyRow, UserRow};

use super::AuthError;
use super::passkeys::{NAME_MAX, required_for};
use crate::AppState;
use crate::error::FieldError;
use crate::extract::RequestContext;
use crate::routes::audit_trail::{Audit, record};

/// A name as given, trimmed; refused when empty, too long or holding control characters.
pub fn name_field(raw: &str) -> Result<String, FieldError> {
    let name = raw.trim();
    let problem = if name.is_empty() {
        Some("must not be empty")
    } else if name.chars().count() > NAME_MAX {
        Some("must be at most 64 characters")
    } else if name.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
    };
    match problem {
        Some(m) => Err(FieldError::new("name", m)),
        None => Ok(name.to_owned()),
    }
}

/// The login `session_id` (cookie session or token login) of `user` signed in within
/// `auth.reauth_window`; else [`AuthError::ReauthRequired`].
pub async fn require_recent_sign_in(state: &AppState, user: &UserRow, session_id: &str) -> Result<(), AuthError> {
    let started = state.store.login_started_at(session_id, &user.id).await?;
    let window = duration_ms(state.settings.auth.reauth_window);
    if started.is_some_and(|at| now_ms() - at <= window) { Ok(()) } else { Err(AuthError::ReauthRequired) }
}

/// Renames one of `user`'s passkeys; `name` is already checked by [`name_field`].
pub async fn rename(state: &AppState, user: &UserRow, id: &str, name: &str) -> Result<PasskeyRow, AuthError> {
    state.store.rename_passkey(id, &user.id, name).await?.ok_or(AuthError::PasskeyNotFound)
}

/// Removes one of `user`'s passkeys, from the login `session_id`: the recent sign-in, the last
/// required passkey, then the delete (scoped by the owner), the audit event and the owner's mail.
pub async fn remove(
    state: &AppState,
    ctx: &RequestContext,
    user: &UserRow,
    session_id: &str,
    id: &str,
) -> Result<(), AuthError> {
    let mine = state.store.passkeys_of_user(&user.id).await?;
    if !mine.iter().any(|p| p.id == id) {
        return Err(AuthError::PasskeyNotFound);
    }
    require_recent_sign_in(state, user, session_id).await?;
    if mine.len() == 1 && required_for(state, user) {
        return Err(AuthError::LastRequiredPasskey);
    }
    if !state.store.delete_passkey(id, &user.id).await? {
        return Err(AuthError::PasskeyNotFound);
    }
    let event = Audit {
        action: AuditEvent::PasskeyRemoved,
        actor_id: Some(&user.id),
        target: Some(id),
        outcome: AuditOutcome::Success,
    };
    record(state, ctx, event).await;
    super::mailing::queue_notice(state, &user.id, rampart_mail::templates::passkey_removed(&user.email)).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name_field("  Laptop ").unwrap(), "Laptop");
        assert!(name_field("   ").is_err());
        assert!(name_field(&"x".repeat(NAME_MAX + 1)).is_err());
        assert!(name_field(&"é".repeat(NAME_MAX)).is_ok());
        assert!(name_field("a\u{7}b").is_err());
    }
}

//! What a signed-in user changes on their own account: the display name, their logins, the
//! password. The JSON handlers (`PATCH /auth/me`, `DELETE /auth/sessions/{id}`,
//! `POST /auth/password/change`) and the account page call these same functions.

use rampart_core::clock::now_ms;
use rampart_core::password::check_length;
use rampart_store::{AuditEvent, AuditOutcome, UserRow};
use secrecy::SecretString;

use super::AuthError;
use super::reauth::reauthenticate;
use crate::AppState;
use crate::error::FieldError;
use crate::extract::RequestContext;
use crate::routes::audit_trail::{Audit, record};

pub const DISPLAY_NAME_MAX: usize = 100;

/// Sets (or with `None` or blank text, clears) the display name. `None` when the user no longer
/// exists.
pub async fn set_display_name(
    state: &AppState,
    user_id: &str,
    name: Option<String>,
) -> Result<Option<UserRow>, AuthError> {
    let name = name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if let Some(n) = &name {
        if n.chars().count() > DISPLAY_NAME_MAX {
            return Err(AuthError::field("display_name", format!("must be at most {DISPLAY_NAME_MAX} characters")));
        }
        if n.chars().any(char::is_control) {
            return Err(AuthError::field("display_name", "must not contain control characters"));
        }
    }
    Ok(state.store.set_display_name(user_id, name.as_deref(), now_ms()).await?)
}

/// Ends one of the user's own logins, audited `session_revoked`. False when the user has no
/// such live login (another user's id is answered exactly the same).
pub async fn revoke_own_login(
    state: &AppState,
    ctx: &RequestContext,
    user_id: &str,
    id: &str,
) -> Result<bool, AuthError> {
    if !state.end_login(id, user_id).await? {
        return Ok(false);
    }
    let event = Audit {
        action: AuditEvent::SessionRevoked,
        actor_id: Some(user_id),
        target: Some(id),
        outcome: AuditOutcome::Success,
    };
    record(state, ctx, event).await;
    Ok(true)
}

/// A new password, proven by the current one (not just whoever holds the session); every other
/// login of the user ends, `session_id` stays. Audited either way; the owner is mailed.
pub async fn change_password(
    state: &AppState,
    ctx: &RequestContext,
    user: &UserRow,
    session_id: &str,
    current: SecretString,
    new: SecretString,
) -> Result<(), AuthError> {
    let mut errors = Vec::new();
    if let Err(e) = check_length(&current) {
        errors.push(FieldError::new("current_password", e.to_string()));
    }
    if let Err(e) = state.settings.auth.password_policy().check(&new, &[user.email_normalized.as_str()]) {
        errors.push(FieldError::new("new_password", e.to_string()));
    }
    if !errors.is_empty() {
        return Err(AuthError::Invalid(errors));
    }
    // Guessing the current password through a stolen session costs, and counts, like guessing it
    // at login.
    let (password_ok, attempt) = reauthenticate(state, ctx, user, current).await?;
    if !password_ok {
        let event = Audit {
            action: AuditEvent::PasswordChanged,
            actor_id: Some(&user.id),
            target: Some(&user.id),
            outcome: AuditOutcome::Failure,
        };
        record(state, ctx, event).await;
        attempt.failed(state, ctx).await;
        return Err(AuthError::WrongCurrentPassword);
    }
    attempt.release(state).await;
    let new_hash = state.hasher.hash(new).await?;
    let now = now_ms();
    // The owner's notice is queued in the transaction that changes the password (the outbox).
    let notice = rampart_mail::templates::password_changed(&user.email);
    let notice = state.mailer.seal(notice).map_err(|e| AuthError::Internal(e.to_string()))?;
    let revoked = state
        .store
        .change_password(&user.id, user.password_hash.as_str(), &new_hash, session_id, now, &notice)
        .await?
        .ok_or(AuthError::PasswordChangedMeanwhile)?;
    state.revoke_token_logins(&revoked, now).await;
    let event = Audit {
        action: AuditEvent::PasswordChanged,
        actor_id: Some(&user.id),
        target: Some(&user.id),
        outcome: AuditOutcome::Success,
    };
    record(state, ctx, event).await;
    state.mailer.wake();
    Ok(())
}

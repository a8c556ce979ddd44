//! What an admin does to a user, below HTTP: change roles, lock and unlock, reset the second
//! factor, end every login, delete. The JSON routes (`/admin/users/...`) and the console's pages
//! (`/ui/admin/users/...`) call these and only these, so a rule lives once:
//!
//! - an admin cannot change their own roles, lock themselves or reset their own second factor
//!   (privilege changes need a second admin; a stolen admin session cannot strip its owner's
//!   factor); unlocking and deleting oneself are allowed unless it leaves no admin;
//! - the last active (unlocked) admin cannot be demoted, locked or deleted: the store's statement
//!   refuses it (see `rampart_store::admin`), this only names the refusal;
//! - setting roles (even to the same list) and locking revoke every login of the user at once,
//!   tokens included (they carry the old roles in their claims);
//! - each action is audited next to its decision, with the admin as the actor.

use rampart_core::clock::now_ms;
use rampart_core::config::Roles;
use rampart_mail::templates::{self, RemovedBy};
use rampart_store::{AdminWrite, AuditEvent, AuditOutcome, LockChange, StoreError, UserChange, UserRow};

use crate::error::FieldError;
use crate::extract::RequestContext;
use crate::routes::audit_trail::{Audit, record};
use crate::{ApiError, AppState};

/// Why an admin action was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no such user")]
    NotFound,
    /// A rule about acting on oneself; the text says which and what to do instead.
    #[error("{0}")]
    OnSelf(&'static str),
    #[error("{}", LAST_ADMIN)]
    LastAdmin,
    #[error("validation failed")]
    Invalid(Vec<FieldError>),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// The refusal of the last-admin rule, as both the API and the console word it.
pub const LAST_ADMIN: &str = "this is the last active admin: promote another admin first";

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::NotFound => ApiError::NotFound,
            AdminError::OnSelf(why) => ApiError::Forbidden(why),
            AdminError::LastAdmin => ApiError::Conflict(LAST_ADMIN),
            AdminError::Invalid(fields) => ApiError::Validation(fields),
            AdminError::Store(e) => ApiError::from(e),
        }
    }
}

/// Who acts, and from where (for the audit trail).
#[derive(Clone, Copy)]
pub struct Acting<'a> {
    pub admin_id: &'a str,
    pub ctx: &'a RequestContext,
}

impl Acting<'_> {
    async fn audit(&self, state: &AppState, action: AuditEvent, target: &str) {
        let event =
            Audit { action, actor_id: Some(self.admin_id), target: Some(target), outcome: AuditOutcome::Success };
        record(state, self.ctx, event).await;
    }
}

/// Sets the roles (the complete new list, already parsed by [`parse_roles`]) and/or the lock.
/// Returns the user as it is afterwards; with nothing to change, as it is.
pub async fn change_user(
    state: &AppState,
    by: Acting<'_>,
    id: &str,
    roles: Option<Vec<String>>,
    lock: LockChange,
) -> Result<UserRow, AdminError> {
    if id == by.admin_id {
        if roles.is_some() {
            return Err(AdminError::OnSelf("you cannot change your own roles; ask another admin"));
        }
        if lock == LockChange::Lock {
            return Err(AdminError::OnSelf("you cannot lock your own account"));
        }
    }
    if roles.is_none() && lock == LockChange::Keep {
        return state.store.user_by_id(id).await?.ok_or(AdminError::NotFound);
    }
    let now = now_ms();
    let change = UserChange { roles: roles.as_deref(), lock };
    let changed = match state.store.admin_update_user(id, &change, now).await? {
        AdminWrite::Done(c) => c,
        AdminWrite::NotFound => return Err(AdminError::NotFound),
        AdminWrite::LastAdmin => return Err(AdminError::LastAdmin),
    };
    // Tokens carry the old roles in their claims and are checked against the database only
    // through this set: every one of them dies now, not at its `exp`.
    state.revoke_token_logins(&changed.revoked_token_logins, now).await;
    let actions = [
        roles.is_some().then_some(AuditEvent::RoleChanged),
        (lock == LockChange::Lock).then_some(AuditEvent::UserLocked),
        (lock == LockChange::Unlock).then_some(AuditEvent::UserUnlocked),
    ];
    for action in actions.into_iter().flatten() {
        by.audit(state, action, id).await;
    }
    Ok(changed.user)
}

/// The new role list: every name built in (`user`, `admin`) or declared in `roles.declared`, not
/// empty; duplicates dropped; `user` first, added when missing, since every account has it.
pub fn parse_roles(given: &[String], known: &Roles) -> Result<Vec<String>, AdminError> {
    let invalid = |message: String| AdminError::Invalid(vec![FieldError::new("roles", &message)]);
    if given.is_empty() {
        return Err(invalid("must list at least one role".to_owned()));
    }
    let mut roles = vec!["user".to_owned()];
    for r in given {
        if !known.is_known(r) {
            return Err(invalid(if rampart_core::ident::is_identifier(r) {
                let declared: String = known.declared.iter().map(|d| format!(", {d}")).collect();
                format!("unknown role `{r}` (known: {}{declared})", Roles::BUILT_IN.join(", "))
            } else {
                "is not a role name".to_owned()
            }));
        }
        if !roles.contains(r) {
            roles.push(r.clone());
        }
    }
    Ok(roles)
}

/// Deletes the user unless they are the last active admin; their logins end with them.
pub async fn delete_user(state: &AppState, by: Acting<'_>, id: &str) -> Result<(), AdminError> {
    let now = now_ms();
    let sids = match state.store.admin_delete_user(id, now).await? {
        AdminWrite::Done(sids) => sids,
        AdminWrite::NotFound => return Err(AdminError::NotFound),
        AdminWrite::LastAdmin => return Err(AdminError::LastAdmin),
    };
    // The sessions are gone with the user; their tokens must not outlive them.
    state.revoke_token_logins(&sids, now).await;
    by.audit(state, AuditEvent::UserDeleted, id).await;
    Ok(())
}

/// Removes every second factor of another user (the way back from a lost or hijacked factor),
/// ending the logins that were waiting for one. The owner is mailed when a factor was in force.
pub async fn reset_mfa(state: &AppState, by: Acting<'_>, id: &str) -> Result<(), AdminError> {
    if id == by.admin_id {
        return Err(AdminError::OnSelf(
            "you cannot reset your own second factor; use POST /auth/mfa/totp/disable or ask another admin",
        ));
    }
    // The owner's notice is queued in the reset's own transaction (the durable outbox), sealed
    // with the data key; a notice that cannot be sealed is logged and not queued.
    let notice = |to: &str| match state.mailer.seal(templates::second_factor_removed(to, RemovedBy::Administrator)) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::error!(error = %e, "the second-factor notice could not be sealed; not queued");
            None
        }
    };
    let done = state.store.reset_mfa(id, now_ms(), notice).await?.ok_or(AdminError::NotFound)?;
    by.audit(state, AuditEvent::MfaReset, id).await;
    if done.removed {
        state.mailer.wake();
    }
    Ok(())
}

/// Ends every login of the user, cookie sessions and token logins alike, on every instance; the
/// account stays usable (lock it too to keep its owner out).
pub async fn end_sessions(state: &AppState, by: Acting<'_>, id: &str) -> Result<(), AdminError> {
    let now = now_ms();
    let token_logins = state.store.admin_end_logins(id, now).await?.ok_or(AdminError::NotFound)?;
    state.revoke_token_logins(&token_logins, now).await;
    by.audit(state, AuditEvent::SessionRevoked, id).await;
    Ok(())
}

//! The audit log: append-only (the schema refuses UPDATE and DELETE on it). Nothing in it is a
//! secret: actions, ids, the client IP and the request id.

use rampart_core::clock::Millis;

use crate::{Store, StoreError};

/// The actions listed in docs/api.md, "Audit events written".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditEvent {
    Register,
    LoginSuccess,
    LoginFailure,
    Logout,
    RefreshTokenReuse,
    /// Too many failed logins locked the account (written when the lock is set).
    Lockout,
    RoleChanged,
    UserLocked,
    UserUnlocked,
    UserDeleted,
    AuthzDenied,
    MfaEnabled,
    MfaDisabled,
    MfaFailure,
    /// Every second factor of a user removed by an admin (`POST /admin/users/{id}/mfa/reset`) or
    /// an operator (`rampart user mfa-reset`).
    MfaReset,
    PasswordChanged,
    PasswordResetRequested,
    PasswordResetCompleted,
    EmailVerified,
    SessionRevoked,
}

impl AuditEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditEvent::Register => "register",
            AuditEvent::LoginSuccess => "login_success",
            AuditEvent::LoginFailure => "login_failure",
            AuditEvent::Logout => "logout",
            AuditEvent::RefreshTokenReuse => "refresh_token_reuse",
            AuditEvent::Lockout => "lockout",
            AuditEvent::RoleChanged => "role_changed",
            AuditEvent::UserLocked => "user_locked",
            AuditEvent::UserUnlocked => "user_unlocked",
            AuditEvent::UserDeleted => "user_deleted",
            AuditEvent::AuthzDenied => "authz_denied",
            AuditEvent::MfaEnabled => "mfa_enabled",
            AuditEvent::MfaDisabled => "mfa_disabled",
            AuditEvent::MfaFailure => "mfa_failure",
            AuditEvent::MfaReset => "mfa_reset",
            AuditEvent::PasswordChanged => "password_changed",
            AuditEvent::PasswordResetRequested => "password_reset_requested",
            AuditEvent::PasswordResetCompleted => "password_reset_completed",
            AuditEvent::EmailVerified => "email_verified",
            AuditEvent::SessionRevoked => "session_revoked",
        }
    }
}

pub struct NewAuditEvent<'a> {
    pub action: AuditEvent,
    pub actor_id: Option<&'a str>,
    pub target: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub request_id: Option<&'a str>,
    /// `success`, `failure` or `denied`.
    pub outcome: &'a str,
    pub now: Millis,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub seq: i64,
    pub id: String,
    pub at: i64,
    pub action: String,
    pub actor_id: Option<String>,
    pub target: Option<String>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub outcome: String,
    /// How many occurrences the row stands for: 1, except for coalesced repeats of a denial.
    pub count: i64,
}

impl Store {
    pub async fn append_audit(&self, e: &NewAuditEvent<'_>) -> Result<(), StoreError> {
        self.append_audit_repeated(e, 1).await
    }

    /// Appends one row that stands for `count` occurrences of the same event (repeated denials,
    /// coalesced); `at`, `ip` and `request_id` are those of the last one.
    pub async fn append_audit_repeated(&self, e: &NewAuditEvent<'_>, count: i64) -> Result<(), StoreError> {
        on_write!(self, db => sqlx::query(
            "INSERT INTO audit_log (id, at, action, actor_id, target, ip, request_id, outcome, count) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(rampart_core::opaque_token::new_id())
        .bind(e.now)
        .bind(e.action.as_str())
        .bind(e.actor_id)
        .bind(e.target)
        .bind(e.ip)
        .bind(e.request_id)
        .bind(e.outcome)
        .bind(count)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Newest first, after the `before` cursor (a `seq`), optionally filtered.
    pub async fn audit_page(
        &self,
        before: Option<i64>,
        actor: Option<&str>,
        action: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditRow>, StoreError> {
        Ok(on_read!(self, db => sqlx::query_as::<_, AuditRow>(
            "SELECT seq, id, at, action, actor_id, target, ip, request_id, outcome, count FROM audit_log \
             WHERE ($1 IS NULL OR seq < $1) AND ($2 IS NULL OR actor_id = $2) AND ($3 IS NULL OR action = $3) \
             ORDER BY seq DESC LIMIT $4",
        )
        .bind(before)
        .bind(actor)
        .bind(action)
        .bind(i64::from(limit))
        .fetch_all(db)
        .await)?)
    }
}

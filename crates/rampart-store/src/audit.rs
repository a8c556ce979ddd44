//! The audit log: append-only (the schema refuses UPDATE and DELETE on it). Nothing in it is a
//! secret: actions, ids, the client IP, the request id, and on a login how it was made.

use rampart_core::clock::Millis;

use crate::dialect::WriteTx;
use crate::{Store, StoreError};

statements! {
    INSERT_AUDIT_EVENT = "INSERT INTO audit_log \
         (id, at, action, actor_id, target, ip, request_id, outcome, count, user_agent, method) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
    /// Each filter applies only when given; the time range is `since <= at < until`.
    SELECT_AUDIT_PAGE = "SELECT seq, id, at, action, actor_id, target, ip, request_id, outcome, count, user_agent, \
         method \
         FROM audit_log \
         WHERE (CAST($1 AS BIGINT) IS NULL OR seq < $1) AND (CAST($2 AS TEXT) IS NULL OR actor_id = $2) \
           AND (CAST($3 AS TEXT) IS NULL OR action = $3) \
           AND (CAST($4 AS BIGINT) IS NULL OR at >= $4) AND (CAST($5 AS BIGINT) IS NULL OR at < $5) \
         ORDER BY seq DESC LIMIT $6";
}

/// Declares [`AuditEvent`] from one table of variants and their names, so that the enum, its
/// names and the list of every event cannot disagree.
macro_rules! audit_events {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// The actions docs/api.md names.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum AuditEvent {
            $($(#[$doc])* $variant,)*
        }

        impl AuditEvent {
            /// Every event, in declaration order.
            pub const ALL: &[AuditEvent] = &[$(AuditEvent::$variant,)*];

            /// The name stored in `audit_log.action` and used by the admin API's filter.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(AuditEvent::$variant => $name,)*
                }
            }
        }
    };
}

audit_events! {
    Register => "register",
    LoginSuccess => "login_success",
    LoginFailure => "login_failure",
    Logout => "logout",
    RefreshTokenReuse => "refresh_token_reuse",
    /// Too many failed logins locked the account (written when the lock is set).
    Lockout => "lockout",
    RoleChanged => "role_changed",
    UserLocked => "user_locked",
    UserUnlocked => "user_unlocked",
    UserDeleted => "user_deleted",
    AuthzDenied => "authz_denied",
    MfaEnabled => "mfa_enabled",
    MfaDisabled => "mfa_disabled",
    MfaFailure => "mfa_failure",
    /// Every second factor of a user removed by an admin (`POST /admin/users/{id}/mfa/reset`) or
    /// an operator (`rampart user mfa-reset`).
    MfaReset => "mfa_reset",
    PasswordChanged => "password_changed",
    PasswordResetRequested => "password_reset_requested",
    PasswordResetCompleted => "password_reset_completed",
    EmailVerified => "email_verified",
    SessionRevoked => "session_revoked",
    PasskeyAdded => "passkey_added",
    PasskeyRemoved => "passkey_removed",
    ApiKeyCreated => "api_key_created",
    ApiKeyRevoked => "api_key_revoked",
    ApiKeyRotated => "api_key_rotated",
    /// An admin made a service account (`POST /admin/service-accounts`).
    ServiceAccountCreated => "service_account_created",
    /// `rampart data-key rotate` re-encrypted the sealed secrets to the current data key
    /// (failure: some could not be opened with the configured keys).
    DataKeyRotated => "data_key_rotated",
}

impl AuditEvent {
    /// The event with this name, if it is one (every event, written yet or not).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|e| e.as_str() == name)
    }
}

/// How the audited attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditOutcome {
    Success,
    Failure,
    /// Refused by a rule (a lock, a role, a policy), whatever the credentials were.
    Denied,
}

impl AuditOutcome {
    /// The name stored in `audit_log.outcome` and used as the metric's label.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Success => "success",
            AuditOutcome::Failure => "failure",
            AuditOutcome::Denied => "denied",
        }
    }
}

/// How a login was made: the factors it took, first factor first. Stored on its `login_success`
/// event (`audit_log.method`), so that an admin can tell a phishing-resistant sign-in from one a
/// phished password (and code) could have made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInMethod {
    /// The password alone (the account has no second factor).
    Password,
    /// The password, then a TOTP code.
    PasswordTotp,
    /// The password, then a recovery code.
    PasswordRecoveryCode,
    /// The password, then a passkey as the second factor.
    PasswordPasskey,
    /// A passkey alone, as the first factor (it proves possession and, with user verification,
    /// the user; no email or password asked).
    Passkey,
}

impl SignInMethod {
    /// Every method, in declaration order.
    pub const ALL: &[SignInMethod] = &[
        SignInMethod::Password,
        SignInMethod::PasswordTotp,
        SignInMethod::PasswordRecoveryCode,
        SignInMethod::PasswordPasskey,
        SignInMethod::Passkey,
    ];

    /// The name stored in `audit_log.method` and shown by `GET /admin/audit`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignInMethod::Password => "password",
            SignInMethod::PasswordTotp => "password+totp",
            SignInMethod::PasswordRecoveryCode => "password+recovery_code",
            SignInMethod::PasswordPasskey => "password+passkey",
            SignInMethod::Passkey => "passkey",
        }
    }
}

pub struct NewAuditEvent<'a> {
    pub action: AuditEvent,
    pub actor_id: Option<&'a str>,
    pub target: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub request_id: Option<&'a str>,
    /// The client's User-Agent, as the request context bounded it.
    pub user_agent: Option<&'a str>,
    pub outcome: AuditOutcome,
    pub now: Millis,
}

/// Which events a page of the audit log holds; every filter is optional.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditFilter<'a> {
    /// Older than this `seq` (the cursor).
    pub before: Option<i64>,
    pub actor: Option<&'a str>,
    pub action: Option<&'a str>,
    /// At or after this instant.
    pub since: Option<Millis>,
    /// Strictly before this instant.
    pub until: Option<Millis>,
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
    pub user_agent: Option<String>,
    /// How the login was made, on `login_success` events written since it is recorded (a
    /// [`SignInMethod`] name); `None` on every other event.
    pub method: Option<String>,
}

/// The INSERT of one audit row, bound; run on the writer or in a transaction.
fn audit_insert<'q, DB: sqlx::Database>(
    id: &'q str,
    e: &NewAuditEvent<'q>,
    count: i64,
    method: Option<&'q str>,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    sqlx::query(INSERT_AUDIT_EVENT)
        .bind(id)
        .bind(e.now)
        .bind(e.action.as_str())
        .bind(e.actor_id)
        .bind(e.target)
        .bind(e.ip)
        .bind(e.request_id)
        .bind(e.outcome.as_str())
        .bind(count)
        .bind(e.user_agent)
        .bind(method)
}

impl WriteTx<'_> {
    /// Appends an event inside the transaction: it commits with what it records, or not at all.
    /// `method`: how a login was made, on a login's event only.
    pub(crate) async fn append_audit(
        &mut self,
        e: &NewAuditEvent<'_>,
        method: Option<SignInMethod>,
    ) -> Result<(), StoreError> {
        let id = rampart_core::opaque_token::new_id();
        let method = method.map(SignInMethod::as_str);
        in_tx!(self, |conn| audit_insert(&id, e, 1, method).execute(conn).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}

impl Store {
    pub async fn append_audit(&self, e: &NewAuditEvent<'_>) -> Result<(), StoreError> {
        self.append_audit_repeated(e, 1).await
    }

    /// Appends one row that stands for `count` occurrences of the same event (repeated denials,
    /// coalesced); `at`, `ip` and `request_id` are those of the last one. (A login's event, the
    /// one with a sign-in method, is written with the login: [`WriteTx::append_audit`].)
    pub async fn append_audit_repeated(&self, e: &NewAuditEvent<'_>, count: i64) -> Result<(), StoreError> {
        let id = rampart_core::opaque_token::new_id();
        on_write!(self, |db| audit_insert(&id, e, count, None).execute(db).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Newest first, at most `limit`, as `filter` says.
    pub async fn audit_page(&self, filter: &AuditFilter<'_>, limit: u32) -> Result<Vec<AuditRow>, StoreError> {
        let rows = on_read!(self, |db| {
            sqlx::query_as::<_, AuditRow>(SELECT_AUDIT_PAGE)
                .bind(filter.before)
                .bind(filter.actor)
                .bind(filter.action)
                .bind(filter.since)
                .bind(filter.until)
                .bind(i64::from(limit))
                .fetch_all(db)
                .await
        })?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found_again() {
        for e in AuditEvent::ALL {
            assert_eq!(AuditEvent::from_name(e.as_str()), Some(*e));
        }
        let mut names: Vec<_> = AuditEvent::ALL.iter().map(|e| e.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), AuditEvent::ALL.len());
        assert_eq!(AuditEvent::from_name("login"), None);
    }

    /// The names are what docs/api.md and the OpenAPI document list; two methods sharing one
    /// would make the audit trail unable to tell them apart.
    #[test]
    fn sign_in_method_names_are_the_documented_ones_and_unique() {
        let names: Vec<_> = SignInMethod::ALL.iter().map(|m| m.as_str()).collect();
        assert_eq!(names, ["password", "password+totp", "password+recovery_code", "password+passkey", "passkey"]);
    }
}

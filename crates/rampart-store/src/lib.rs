//! Persistence behind one `Store` handle.
//!
//! Every statement is written once, in portable SQL with `$N` placeholders (SQLite accepts them as
//! numbered parameters), as a named constant (`sql`), and runs on SQLite or PostgreSQL through the
//! same code (`dialect`); the dialects differ only in their migration files. Every value is a
//! bound parameter.

// The macros first: they are visible to the modules declared after them.
#[macro_use]
mod sql;
#[macro_use]
mod dialect;
mod account_tokens;
mod admin;
mod api_keys;
mod attempts;
mod audit;
pub mod backup;
mod db;
mod error;
pub mod grants;
mod mfa;
mod outbox;
mod passkeys;
mod records;
mod refresh;
mod resource_schema;
mod sessions;
#[cfg(test)]
mod test_db;
mod users;

pub use account_tokens::Purpose;
pub use admin::{AdminWrite, Changed, EmailMatch, LOCKED_INDEFINITELY, LockChange, UserChange, UserCursor};
pub use api_keys::{ApiKeyAuth, ApiKeyRow, NewApiKey, NewServiceAccount, Rotation};
pub use attempts::{AttemptKey, FAILURE_MEMORY_MS, LockRule, Reservation};
pub use audit::{AuditEvent, AuditFilter, AuditOutcome, AuditRow, NewAuditEvent, SignInMethod};
pub use db::{Backend, Store, StoreOptions, postgres_user};
pub use error::{Fault, StoreError};
pub use mfa::{ChallengeRow, MFA_MAX_ATTEMPTS, MfaProof, MfaReset, TotpRow};
pub use outbox::{ClaimedMail, MailPriority, OutgoingMail, PendingMails};
pub use passkeys::{Ceremony, NewPasskey, NewPasskeyChallenge, PasskeyChallengeRow, PasskeyRow, PasskeyUse};
pub use records::{Filter, Op, Record, Sort};
pub use refresh::RefreshRow;
pub use sessions::{
    FirstRefresh, LoginOpened, NewLogin, NewSession, SESSION_LIST_MAX, SessionAuth, SessionKind, SessionRow,
};
pub use users::{KIND_SERVICE, NewUser, PasswordHash, UserRow};

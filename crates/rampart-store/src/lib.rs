//! Persistence behind one `Store` handle.
//!
//! Every statement is written once, in portable SQL with `$N` placeholders (SQLite accepts them as
//! numbered parameters), so the PostgreSQL backend can run the same text; dialects differ only in
//! their migration files. Every value is a bound parameter.

mod admin;
mod audit;
mod db;
mod error;
mod records;
mod refresh;
mod resource_schema;
mod sessions;
mod users;

pub use admin::{AdminWrite, Changed, LOCKED_INDEFINITELY, LockChange, UserChange, UserCursor};
pub use audit::{AuditEvent, AuditRow, NewAuditEvent};
pub use db::{Store, StoreOptions};
pub use error::StoreError;
pub use records::{Filter, Op, Record, Sort};
pub use refresh::RefreshRow;
pub use sessions::{NewSession, SessionAuth, SessionKind};
pub use users::{LoginFailure, NewUser, UserRow};

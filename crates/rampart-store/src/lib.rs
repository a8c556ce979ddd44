//! Persistence behind one `Store` handle.
//!
//! Every statement is written once, in portable SQL with `$N` placeholders (SQLite accepts them as
//! numbered parameters), so the PostgreSQL backend can run the same text; dialects differ only in
//! their migration files. Every value is a bound parameter.

mod audit;
mod db;
mod error;
mod refresh;
mod sessions;
mod users;

pub use audit::{AuditEvent, AuditRow, NewAuditEvent};
pub use db::{Store, StoreOptions};
pub use error::StoreError;
pub use refresh::RefreshRow;
pub use sessions::{NewSession, SessionAuth, SessionKind};
pub use users::{NewUser, UserRow};

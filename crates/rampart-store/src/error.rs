//! Database errors mapped, in this one place, onto what the callers need to distinguish.
//!
//! Each error keeps its cause as a typed `source()`, for code and logs that walk the chain. Its
//! `Display` is one line that also carries the cause's own message, as the CLI prints it and the
//! log shows it. No `Display` here holds a bound value or a URL's password: drivers report
//! statements and constraints by name, and the URL parsers' errors (which could quote the
//! password) are replaced by a sentence saying only what is wrong.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness constraint refused the write (e.g. the email is taken).
    #[error("conflict with an existing row")]
    Conflict,
    /// The database cannot be reached or is too busy right now; worth retrying.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] Driver),
    /// Anything else: a bug, a corrupt database, or a setting or declaration the database cannot
    /// follow. The cause is for the server log and the operator only.
    #[error("database error: {0}")]
    Other(#[source] Fault),
}

/// What a [`StoreError::Other`] was.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    /// The driver refused a statement or could not decode its result.
    #[error(transparent)]
    Driver(Driver),
    /// An embedded migration could not be applied.
    #[error(transparent)]
    Migration(sqlx::migrate::MigrateError),
    /// The database file or its directory could not be prepared (`action`: `create`, `restrict`).
    #[error("cannot {action} {}: {source}", path.display())]
    File {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `database.url` (or `migrate_url`) cannot be used. Deliberately without the parser's error,
    /// which could quote the URL, password included.
    #[error("{0}")]
    Url(&'static str),
    /// A declared resource's table cannot follow its declaration without losing or invalidating
    /// data; `reason` says which change and what to do instead.
    #[error("resource `{resource}`: {reason}; nothing was changed")]
    SchemaChangeRefused { resource: String, reason: String },
    /// `rampart restore` was given a file it must not restore (or `backup` a database that is
    /// not there); the text says which and why.
    #[error("{0}")]
    NotABackup(String),
    /// A caller asked for the owner's rows of a resource that has no owner column: a bug, since
    /// the compiled policy never yields that scope for such a resource.
    #[error("owner scope on a resource without owner")]
    OwnerScopeWithoutOwner,
}

/// The error of either SQL driver: sqlx (PostgreSQL, and SQLite but for the records) or
/// rusqlite (the records on SQLite, see `db/inline.rs`).
#[derive(Debug, thiserror::Error)]
pub enum Driver {
    #[error(transparent)]
    Sqlx(sqlx::Error),
    #[error(transparent)]
    Sqlite(rusqlite::Error),
}

impl From<Fault> for StoreError {
    fn from(fault: Fault) -> Self {
        StoreError::Other(fault)
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
            // SQLITE_BUSY / SQLITE_LOCKED after the busy timeout; PostgreSQL 53xxx (resources),
            // 57Pxx (shutdown), 57014 (statement timeout), 40001 / 40P01 (serialization failure,
            // deadlock): all worth a retry, none the client's fault.
            sqlx::Error::Database(db)
                if matches!(db.code().as_deref(), Some("5" | "6" | "517" | "262" | "57014" | "40001" | "40P01"))
                    || db.code().is_some_and(|c| c.starts_with("53") || c.starts_with("57P")) =>
            {
                StoreError::Unavailable(Driver::Sqlx(e))
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
                StoreError::Unavailable(Driver::Sqlx(e))
            }
            // With TLS compiled in, a new PostgreSQL connection starts with an SSLRequest (sslmode
            // prefer, the default, included). A connection closed before the one-byte answer
            // (the database going away, a proxy in front of it cut) reads as a zero byte, which
            // sqlx reports as this protocol error rather than as I/O: the same outage.
            sqlx::Error::Protocol(m) if m.starts_with("unexpected response from SSLRequest") => {
                StoreError::Unavailable(Driver::Sqlx(e))
            }
            _ => StoreError::Other(Fault::Driver(Driver::Sqlx(e))),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    /// The same classes as sqlx's SQLite errors above: a uniqueness constraint is a conflict;
    /// busy or locked after the busy timeout is worth a retry.
    fn from(e: rusqlite::Error) -> Self {
        // SQLITE_CONSTRAINT_UNIQUE and SQLITE_CONSTRAINT_PRIMARYKEY, as sqlx's is_unique_violation.
        if let rusqlite::Error::SqliteFailure(f, _) = &e
            && matches!(f.extended_code, 2067 | 1555)
        {
            return StoreError::Conflict;
        }
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                StoreError::Unavailable(Driver::Sqlite(e))
            }
            _ => StoreError::Other(Fault::Driver(Driver::Sqlite(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PostgreSQL connection closed before it answered the SSLRequest is an outage (503), not
    /// a fault (500); other protocol errors stay faults.
    #[test]
    fn a_connection_closed_during_the_tls_request_is_unavailable() {
        let closed = sqlx::Error::Protocol("unexpected response from SSLRequest: 0x00".into());
        assert!(matches!(StoreError::from(closed), StoreError::Unavailable(_)));
        let other = sqlx::Error::Protocol("unknown message type".into());
        assert!(matches!(StoreError::from(other), StoreError::Other(_)));
    }

    /// On the inline readers too, a busy database is worth a retry (503), anything else a fault.
    #[test]
    fn a_busy_database_is_unavailable_on_either_driver() {
        let busy = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(5), None);
        assert!(matches!(StoreError::from(busy), StoreError::Unavailable(_)));
        let corrupt = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(11), None);
        assert!(matches!(StoreError::from(corrupt), StoreError::Other(_)));
        let duplicate = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(2067), None);
        assert!(matches!(StoreError::from(duplicate), StoreError::Conflict));
    }
}

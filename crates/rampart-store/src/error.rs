//! Database errors mapped, in this one place, onto what the callers need to distinguish.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness constraint refused the write (e.g. the email is taken).
    #[error("conflict with an existing row")]
    Conflict,
    /// The database cannot be reached or is too busy right now; worth retrying.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or a corrupt database. The cause is for the server log only.
    #[error("database error: {0}")]
    Other(String),
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
                StoreError::Unavailable(e.to_string())
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Other(e.to_string()),
        }
    }
}

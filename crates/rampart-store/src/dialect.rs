//! The dialect seam: one SQL text, two drivers.
//!
//! Every statement is written once, in portable SQL with `$N` placeholders (SQLite accepts them
//! as numbered parameters), as a named constant (see `sql`). What differs between SQLite and
//! PostgreSQL is only the Rust type of the pool or connection it runs on, and that is decided
//! here, in one of three forms:
//!
//! - [`on_read!`]`(store, |db| ...)` and [`on_write!`]`(store, |db| ...)` run one statement on
//!   the reader pool or on the writer (SQLite's single writer connection; on PostgreSQL both are
//!   the one pool);
//! - [`WriteTx`] is a write transaction on either backend. The statements that run inside one
//!   are its methods, defined next to the table they touch (`impl WriteTx` in `sessions.rs`,
//!   `account_tokens.rs`, `admin.rs`, `mfa.rs`, `resource_schema.rs`), and each of them uses
//!   [`in_tx!`]`(self, |conn| ...)`.
//!
//! The three macros take a closure-like body, which they expand once per backend, inside an async
//! block: a `?` or `return` in the body stays in it, as it would in a closure, so the macros never
//! return from their caller. (A real closure cannot be generic over the two connection types.)

use sqlx::{Postgres, Transaction};

use crate::db::Db;
use crate::db::sqlite_conns::SqliteTx;
use crate::{Store, StoreError};

/// Runs `|db| body` with `db` bound to the pool for reads, whichever the backend; evaluates to
/// the body's value.
macro_rules! on_read {
    ($store:expr, |$db:ident| $body:expr) => {
        match &$store.db {
            $crate::db::Db::Sqlite { read, .. } => match read.get().await {
                Ok(mut lent) => {
                    let $db = &mut *lent;
                    async { $body }.await
                }
                Err(e) => Err(e.into()),
            },
            $crate::db::Db::Postgres($db) => async { $body }.await,
        }
    };
}

/// Runs `|db| body` with `db` bound to the pool for writes (SQLite's single writer connection).
macro_rules! on_write {
    ($store:expr, |$db:ident| $body:expr) => {
        match &$store.db {
            $crate::db::Db::Sqlite { write, .. } => match write.lock().await {
                Ok(mut lent) => {
                    let $db = lent.conn();
                    async { $body }.await
                }
                Err(e) => Err(e.into()),
            },
            $crate::db::Db::Postgres($db) => async { $body }.await,
        }
    };
}

/// Runs `|conn| body` with `conn` bound to the connection of a `&mut WriteTx`.
macro_rules! in_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {
        match $tx {
            $crate::dialect::WriteTx::Sqlite(tx) => match tx.conn() {
                Ok($conn) => async { $body }.await,
                Err(e) => Err(e.into()),
            },
            $crate::dialect::WriteTx::Postgres(tx) => {
                let $conn = &mut **tx;
                async { $body }.await
            }
        }
    };
}

/// A write transaction, on SQLite's writer connection, a PostgreSQL pool connection, or the
/// migration connection of either. Dropped without [`WriteTx::commit`], it rolls back.
pub(crate) enum WriteTx<'c> {
    Sqlite(SqliteTx),
    Postgres(Transaction<'c, Postgres>),
}

impl Store {
    /// Begins a transaction on the writer.
    pub(crate) async fn begin_write(&self) -> Result<WriteTx<'static>, StoreError> {
        Ok(match &self.db {
            Db::Sqlite { write, .. } => WriteTx::Sqlite(write.begin().await?),
            Db::Postgres(pool) => WriteTx::Postgres(pool.begin().await?),
        })
    }
}

impl WriteTx<'_> {
    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        match self {
            WriteTx::Sqlite(tx) => tx.commit().await?,
            WriteTx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }

    pub(crate) async fn rollback(self) -> Result<(), StoreError> {
        match self {
            WriteTx::Sqlite(tx) => tx.rollback().await?,
            WriteTx::Postgres(tx) => tx.rollback().await?,
        }
        Ok(())
    }
}

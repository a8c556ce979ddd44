//! SQLite statements on the hottest paths, run on the calling thread (rusqlite): the reads and
//! writes of declared records, and the refresh token's read and rotation.
//!
//! sqlx runs each SQLite connection on a thread of its own: a statement is sent there and its
//! rows come back one by one through a channel, each a wake-up of the waiting task. For a page of
//! 50 records that is dozens of thread hand-offs, and on a busy two-core machine the scheduler,
//! not SQLite, was most of the cost (perf, issue 17: a third of the process's CPU time in the
//! kernel's task switching). A read of records from a warm page cache takes SQLite microseconds,
//! less than the hand-offs around it, so these reads run where they are asked for, on a
//! connection of this set, and the rows are decoded straight into [`Record`]s.
//!
//! The same holds for writes of records: the one writer (`sqlite_conns::Writer`) holds, beside
//! its sqlx connection, a rusqlite connection to the same file, and a record write runs on it,
//! synchronously, while the writer's lock is held. Both connections are behind that one lock, so
//! they never write at the same time (no `SQLITE_BUSY` between them), and a transaction on the
//! sqlx connection keeps record writes out until it ends.
//!
//! The readers are read-only (`SQLITE_OPEN_READ_ONLY`); readers and writer carry the same
//! authorizer as every other runtime connection, and the writer the same settings as the sqlx
//! writer. Every other statement still goes through sqlx; the record statements are the same
//! texts on both drivers (`records.rs`).
//!
//! A caller holds a connection only inside [`InlineReaders::read`], which never awaits: a
//! runtime thread holds at most one at a time. With at least as many connections as runtime
//! threads, a free one is found without waiting; if not (a `spawn_blocking` thread reading too),
//! the caller waits on the first connection's lock, for the length of one read.

use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::StoreError;
use crate::db::sqlite_conns::{ENABLE_RECURSIVE_TRIGGERS, READ_RECURSIVE_TRIGGERS, WRITER_AUTOCHECKPOINT};

/// Prepared statements kept per connection: the record statements differ by resource, filter
/// and sort, and each shape is prepared once.
const STATEMENT_CACHE: usize = 128;

pub(crate) struct InlineReaders {
    conns: Box<[Mutex<Connection>]>,
}

/// Settings of the inline writer that SQLite keeps per connection, as `db::sqlite_options` gives
/// the sqlx writer (SQLite's defaults are FULL, a sync per commit, and OFF). The writer's other
/// settings are the sqlx writer's own statements (`sqlite_conns`).
const WRITER_SETUP: &str = "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;";

/// Opens a rusqlite connection to the database file at `path` with the busy timeout, the
/// statement cache and, after `setup` (which may still write pragmas), the authorizer.
fn open(
    path: &Path,
    flags: OpenFlags,
    busy_timeout: Duration,
    setup: impl FnOnce(&Connection) -> Result<(), StoreError>,
) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(busy_timeout)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    setup(&conn)?;
    rampart_sqlite_guard::install_on(&conn).map_err(|e| sqlx::Error::Configuration(e.into()))?;
    Ok(conn)
}

/// Opens the writer's rusqlite connection to the database file at `path`: the sqlx writer's
/// settings (see `sqlite_conns::open_runtime`: `recursive_triggers`, read back, and the
/// checkpoint backstop), all set before the authorizer, which then refuses any pragma write.
pub(crate) fn open_writer(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    open(path, OpenFlags::SQLITE_OPEN_READ_WRITE, busy_timeout, |conn| {
        conn.execute_batch(WRITER_SETUP)?;
        conn.execute_batch(ENABLE_RECURSIVE_TRIGGERS)?;
        conn.execute_batch(WRITER_AUTOCHECKPOINT)?;
        let on: i64 = conn.query_row(READ_RECURSIVE_TRIGGERS, [], |r| r.get(0))?;
        if on != 1 {
            return Err(sqlx::Error::Configuration("SQLite refused PRAGMA recursive_triggers = ON".into()).into());
        }
        Ok(())
    })
}

impl InlineReaders {
    /// Opens `count` read-only connections to the database file at `path`, each with the
    /// authorizer and the busy timeout.
    pub(crate) fn open(path: &Path, count: usize, busy_timeout: Duration) -> Result<Self, StoreError> {
        let mut conns = Vec::with_capacity(count);
        for _ in 0..count.max(1) {
            conns.push(Mutex::new(open(path, OpenFlags::SQLITE_OPEN_READ_ONLY, busy_timeout, |_| Ok(()))?));
        }
        Ok(Self { conns: conns.into() })
    }

    /// Runs `read` on a free connection, on this thread.
    pub(crate) fn read<T>(&self, read: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        // A poisoned lock means a read panicked half-way; a read leaves nothing half-done on a
        // read-only connection, so the connection is still good.
        let free = self.conns.iter().find_map(|c| c.try_lock().ok());
        let conn = match free {
            Some(conn) => conn,
            None => match self.conns.first() {
                Some(first) => first.lock().unwrap_or_else(PoisonError::into_inner),
                None => return Err(StoreError::Unavailable(crate::error::Driver::Sqlx(sqlx::Error::PoolClosed))),
            },
        };
        read(&conn)
    }

    /// The one row or none that `sql` selects with `params`, decoded by `decode`, through the
    /// connection's statement cache.
    pub(crate) fn optional_row<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        decode: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, StoreError> {
        use rusqlite::OptionalExtension;
        self.read(|c| Ok(c.prepare_cached(sql)?.query_row(params, decode).optional()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_db::TempSqlite;

    fn readers(db: &TempSqlite) -> InlineReaders {
        let path = db.url.trim_start_matches("sqlite://");
        InlineReaders::open(Path::new(path), 2, Duration::from_secs(1)).unwrap()
    }

    /// The inline readers are runtime connections like the others: the authorizer refuses DDL,
    /// ATTACH, pragma writes and the file functions when the statement is compiled ("not
    /// authorized", where a connection without it would get as far as running them).
    #[tokio::test]
    async fn inline_readers_carry_the_authorizer() {
        let db = TempSqlite::migrated().await;
        let readers = readers(&db);
        for attack in [
            "DROP TABLE audit_log",
            "CREATE TABLE loot (x TEXT)",
            "ATTACH DATABASE '/tmp/x.db' AS x",
            "PRAGMA query_only = 0",
            "SELECT load_extension('x')",
        ] {
            let err = readers.read(|c| Ok(c.prepare(attack).map(drop))).unwrap().unwrap_err().to_string();
            assert!(err.contains("not authorized"), "{attack}: {err}");
        }
        let users: i64 = readers.read(|c| Ok(c.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?)).unwrap();
        assert_eq!(users, 0);
    }

    /// The record writer's connection is a runtime connection too: the authorizer, and the
    /// triggers that keep the audit log append-only even against a conflict-resolving REPLACE
    /// (which needs `recursive_triggers`); ordinary writes work.
    #[tokio::test]
    async fn the_inline_writer_carries_the_authorizer_and_the_triggers() {
        let db = TempSqlite::migrated().await;
        let conn = open_writer(Path::new(db.url.trim_start_matches("sqlite://")), Duration::from_secs(1)).unwrap();
        conn.execute("INSERT INTO audit_log (id, at, action, outcome) VALUES ('a1', 1, 'x', 'success')", []).unwrap();
        for attack in ["DROP TABLE audit_log", "DELETE FROM audit_log", "PRAGMA foreign_keys = OFF"] {
            let err = conn.prepare(attack).map(drop).unwrap_err().to_string();
            assert!(err.contains("not authorized"), "{attack}: {err}");
        }
        let replace = "REPLACE INTO audit_log (id, at, action, outcome) VALUES ('a1', 2, 'forged', 'success')";
        let err = conn.execute(replace, []).unwrap_err().to_string();
        assert!(err.contains("append-only") || err.contains("not authorized"), "{err}");
        let foreign_keys: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
        let synchronous: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        assert_eq!((foreign_keys, synchronous), (1, 1), "foreign keys on, synchronous NORMAL");
    }

    /// And they cannot write, whatever the authorizer allows.
    #[tokio::test]
    async fn inline_readers_are_read_only() {
        let db = TempSqlite::migrated().await;
        let readers = readers(&db);
        let err = readers
            .read(|c| {
                Ok(c.execute("INSERT INTO audit_log (id, at, action, outcome) VALUES ('x', 1, 'x', 'success')", []))
            })
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(err.contains("readonly"), "{err}");
    }
}

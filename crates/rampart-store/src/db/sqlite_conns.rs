//! SQLite connections held by the store itself, not by an sqlx pool.
//!
//! sqlx runs each SQLite connection on a thread of its own, so every statement is a round trip
//! between the request's thread and the connection's. Its pool adds two more per statement: it
//! pings a connection when it lends it out and again when it takes it back (on a task spawned
//! for the purpose), so one query through a pool was three round trips, and on the single writer
//! the two pings sat inside the serialized section (issue 17). The pings exist to catch a server
//! that hung up; a connection to a local file cannot go stale, so here they bought nothing.
//!
//! The store opens its connections once, at start, and lends them directly: [`Readers`] (a fixed
//! set, lent one per statement) and [`Writer`] (the one connection every write goes through, in
//! turn). Every connection is opened by [`open_runtime`], so none serves without the authorizer.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};
use tokio::sync::{OwnedMappedMutexGuard, OwnedMutexGuard, Semaphore, SemaphorePermit};

use crate::StoreError;

statements! {
    ENABLE_RECURSIVE_TRIGGERS [Sqlite] = "PRAGMA recursive_triggers = ON";
    READ_RECURSIVE_TRIGGERS [Sqlite] = "PRAGMA recursive_triggers";
    /// The writer's own checkpoints, only as a backstop (see [`Checkpointer`]): 10 000 pages,
    /// 40 MB of WAL at the default page size, instead of SQLite's 1 000.
    WRITER_AUTOCHECKPOINT [Sqlite] = "PRAGMA wal_autocheckpoint = 10000";
    /// A PASSIVE checkpoint (the default mode): copies what it can without waiting for readers
    /// or the writer. Written without an argument: the authorizer refuses pragmas that set.
    CHECKPOINT [SqliteRuntime] = "PRAGMA wal_checkpoint";
    /// IMMEDIATE takes the write lock at once: a transaction that reads and then writes cannot
    /// fail half-way because another process (a CLI command) wrote in between; it waits for the
    /// busy timeout at its start instead.
    BEGIN_IMMEDIATE [SqliteRuntime] = "BEGIN IMMEDIATE";
    COMMIT [SqliteRuntime] = "COMMIT";
    ROLLBACK [SqliteRuntime] = "ROLLBACK";
}

/// Opens a runtime connection: the authorizer installed (see `rampart-sqlite-guard`), so no DDL,
/// no ATTACH, no rewriting of the audit log. Only `migrate` opens a connection without it.
///
/// `recursive_triggers` first: `REPLACE INTO` / `INSERT OR REPLACE` (and `UPDATE OR REPLACE`)
/// resolve a conflict by deleting the old row, which the authorizer is told about only as an
/// INSERT, and SQLite fires delete triggers for such a deletion only with this pragma on. With it,
/// the audit log's append-only delete trigger refuses the rewrite. It is set before the authorizer
/// is installed (which then refuses every pragma write, so the runtime cannot turn it off again),
/// and read back, so that a connection without it never serves.
pub(crate) async fn open_runtime(options: &SqliteConnectOptions, role: Role) -> Result<SqliteConnection, StoreError> {
    let mut conn = SqliteConnection::connect_with(options).await?;
    sqlx::query(ENABLE_RECURSIVE_TRIGGERS).execute(&mut conn).await?;
    if role == Role::Writer {
        sqlx::query(WRITER_AUTOCHECKPOINT).execute(&mut conn).await?;
    }
    let (on,): (i64,) = sqlx::query_as(READ_RECURSIVE_TRIGGERS).fetch_one(&mut conn).await?;
    if on != 1 {
        return Err(sqlx::Error::Configuration("SQLite refused PRAGMA recursive_triggers = ON".into()).into());
    }
    let mut handle = conn.lock_handle().await?;
    rampart_sqlite_guard::install(&mut handle).map_err(|e| sqlx::Error::Configuration(e.into()))?;
    drop(handle);
    Ok(conn)
}

/// What a runtime connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Reader,
    Writer,
    Checkpointer,
}

/// Checkpoints the WAL after writes, on a connection and a task of its own.
///
/// By default SQLite checkpoints in the connection that commits, once the WAL holds 1 000 pages:
/// the writer then copies the WAL's pages into the database file and fsyncs it, inside whatever
/// write came at that moment, with every other write queued behind it (a few hundred record
/// creates apart, under load: see docs/performance.md). Here the writer leaves that to this task,
/// which checkpoints when there were writes, at most every [`CHECKPOINT_SPACING`]. A PASSIVE
/// checkpoint runs beside the writer and the readers without blocking them. If it falls behind
/// or fails, the writer's own checkpoint at 10 000 pages still bounds the WAL.
pub(crate) struct Checkpointer(tokio::task::JoinHandle<()>);

/// At most this often: a checkpoint per write would do the same copying more times.
const CHECKPOINT_SPACING: std::time::Duration = std::time::Duration::from_millis(50);

impl Checkpointer {
    pub(crate) fn start(mut conn: SqliteConnection, writer: &Writer) -> Self {
        let written = writer.written.clone();
        Self(tokio::spawn(async move {
            loop {
                written.notified().await;
                // An error (the disk is full, say) leaves the WAL to the writer's backstop; the
                // writes themselves report such errors where they happen.
                let _ = sqlx::query(CHECKPOINT).execute(&mut conn).await;
                tokio::time::sleep(CHECKPOINT_SPACING).await;
            }
        }))
    }

    pub(crate) fn stop(&self) {
        self.0.abort();
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A fixed set of reader connections (WAL: they read beside the writer), each lent to one
/// statement at a time. A permit stands for a free connection, so the scan for an unlocked one
/// always finds one; it starts at the first, so the first connections (whose page caches are the
/// warmest) serve most.
pub(crate) struct Readers {
    conns: Box<[tokio::sync::Mutex<SqliteConnection>]>,
    available: Semaphore,
}

impl Readers {
    pub(crate) fn new(conns: Vec<SqliteConnection>) -> Self {
        let available = Semaphore::new(conns.len());
        Self { conns: conns.into_iter().map(tokio::sync::Mutex::new).collect(), available }
    }

    /// Waits for a free connection. Fails only after [`Readers::close`].
    pub(crate) async fn get(&self) -> Result<Reader<'_>, sqlx::Error> {
        let permit = self.available.acquire().await.map_err(|_| sqlx::Error::PoolClosed)?;
        // With the permit, at most `len - 1` others hold a connection: one is unlocked.
        let conn = self.conns.iter().find_map(|c| c.try_lock().ok()).ok_or(sqlx::Error::PoolClosed)?;
        Ok(Reader { conn, _permit: permit })
    }

    /// Refuses further statements (at shutdown). The connections close when the store is dropped.
    pub(crate) fn close(&self) {
        self.available.close();
    }
}

/// A reader connection, lent until dropped. If the statement it ran was cancelled half-way (the
/// request was dropped), the connection still goes back: sqlx's connection thread finishes or
/// abandons that statement before it takes the next one, and a reader holds no transaction.
pub(crate) struct Reader<'a> {
    conn: tokio::sync::MutexGuard<'a, SqliteConnection>,
    _permit: SemaphorePermit<'a>,
}

impl Deref for Reader<'_> {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.conn
    }
}

impl DerefMut for Reader<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }
}

/// The writer connection and whether a transaction may be open on it.
pub(crate) struct WriterConn {
    conn: SqliteConnection,
    /// The record writes' connection to the same file (see `db/inline.rs`), behind the same
    /// lock. `None` on the migration connection, which writes no records.
    inline: Option<rusqlite::Connection>,
    /// Set before `BEGIN` is sent, cleared after `COMMIT` or `ROLLBACK` succeeded: while set, a
    /// transaction may be open (its owner may have been dropped half-way), and whoever takes the
    /// writer next rolls it back first, so that nobody's statements land in someone else's
    /// transaction.
    in_transaction: bool,
    /// A group commit of record writes left open for the writes queued behind it (see
    /// `group_commit`). Whoever takes the writer for anything else commits it first.
    batch: Option<Arc<Batch>>,
}

/// A group commit: record writes that share one transaction, each answered once it committed.
#[derive(Default)]
pub(crate) struct Batch {
    outcome: OnceLock<Result<(), Failure>>,
    done: tokio::sync::Notify,
}

/// Why a group commit did not commit, kept so that each of its writers gets the error.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    code: rusqlite::ffi::Error,
    message: String,
}

impl Failure {
    fn of(e: &rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::SqliteFailure(code, message) => {
                Self { code: *code, message: message.clone().unwrap_or_default() }
            }
            // SQLITE_ERROR, with the driver's own words.
            other => Self { code: rusqlite::ffi::Error::new(1), message: other.to_string() },
        }
    }

    /// The error, as the store reports SQLite errors (busy: unavailable; else a fault).
    fn error(&self) -> StoreError {
        rusqlite::Error::SqliteFailure(self.code, Some(self.message.clone())).into()
    }
}

impl Batch {
    fn finish(&self, outcome: Result<(), Failure>) {
        let _ = self.outcome.set(outcome);
        self.done.notify_waiters();
    }

    /// The outcome once finished, or `None`.
    pub(crate) fn outcome(&self) -> Option<Result<(), StoreError>> {
        self.outcome.get().map(|o| match o {
            Ok(()) => Ok(()),
            Err(failure) => Err(failure.error()),
        })
    }

    pub(crate) fn finished(&self) -> tokio::sync::futures::Notified<'_> {
        self.done.notified()
    }
}

/// The one connection every write goes through, in turn. SQLite admits one writer at a time
/// anyway; connections racing for its lock would only add SQLITE_BUSY retries, whose back-off
/// sleeps for milliseconds. Queued here (a fair lock), writes run back to back.
#[derive(Clone)]
pub(crate) struct Writer {
    conn: Arc<tokio::sync::Mutex<Option<WriterConn>>>,
    /// Signalled when a write is done, for the [`Checkpointer`].
    written: Arc<tokio::sync::Notify>,
    /// Callers waiting for the writer (for `group_commit`: is anyone behind me?).
    queued: Arc<AtomicUsize>,
}

/// The writer, held until dropped. Only made by [`Writer::lock_as_is`], which never hands out a
/// closed writer.
pub(crate) struct WriterGuard(OwnedMappedMutexGuard<Option<WriterConn>, WriterConn>, Arc<tokio::sync::Notify>);

impl Writer {
    pub(crate) fn new(conn: SqliteConnection, inline: Option<rusqlite::Connection>) -> Self {
        Self {
            conn: Arc::new(tokio::sync::Mutex::new(Some(WriterConn {
                conn,
                inline,
                in_transaction: false,
                batch: None,
            }))),
            written: Arc::new(tokio::sync::Notify::new()),
            queued: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Callers waiting for the writer right now.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Waits for the writer, counted in [`Writer::queued`] while waiting; rolls back first
    /// whatever a dropped transaction left open. An open group commit stays open (for
    /// `group_commit`, which joins it). `PoolClosed` after [`Writer::close`].
    pub(crate) async fn lock_as_is(&self) -> Result<WriterGuard, sqlx::Error> {
        struct Queued<'a>(&'a AtomicUsize);
        impl Drop for Queued<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        self.queued.fetch_add(1, Ordering::AcqRel);
        let queued = Queued(&self.queued);
        let open = self.conn.clone().lock_owned().await;
        drop(queued);
        let mut guard = WriterGuard(
            OwnedMutexGuard::try_map(open, Option::as_mut).map_err(|_| sqlx::Error::PoolClosed)?,
            self.written.clone(),
        );
        let w = &mut *guard.0;
        if w.in_transaction {
            // "No transaction is active" is the answer when the dropped owner's BEGIN never ran;
            // the state is then what it should be, so that error is not one.
            match sqlx::query(ROLLBACK).execute(&mut w.conn).await {
                Ok(_) => {}
                Err(sqlx::Error::Database(e)) if e.message().contains("no transaction is active") => {}
                Err(e) => return Err(e),
            }
            w.in_transaction = false;
        }
        Ok(guard)
    }

    /// [`Writer::lock_as_is`], and an open group commit committed first: for everything but the
    /// record writes that join it.
    pub(crate) async fn lock(&self) -> Result<WriterGuard, sqlx::Error> {
        let mut guard = self.lock_as_is().await?;
        guard.commit_batch();
        Ok(guard)
    }

    /// Begins a transaction on the writer, which it holds until commit, rollback or drop.
    pub(crate) async fn begin(&self) -> Result<SqliteTx, sqlx::Error> {
        let mut guard = self.lock().await?;
        guard.0.in_transaction = true;
        sqlx::query(BEGIN_IMMEDIATE).execute(guard.conn()).await?;
        Ok(SqliteTx { guard: Some(guard) })
    }

    /// Closes the connection (at shutdown), after the writes queued before. Later uses fail with
    /// `PoolClosed`.
    pub(crate) async fn close(&self) {
        drop(self.lock().await);
        if let Some(w) = self.conn.lock().await.take() {
            let _ = w.conn.close().await;
        }
    }
}

impl WriterGuard {
    pub(crate) fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.0.conn
    }

    /// The rusqlite connection for record writes, run on this thread while the guard is held.
    pub(crate) fn inline(&self) -> Result<&rusqlite::Connection, StoreError> {
        self.0.inline.as_ref().ok_or(StoreError::Unavailable(crate::error::Driver::Sqlx(sqlx::Error::PoolClosed)))
    }

    /// The open group commit, if any.
    pub(crate) fn batch(&self) -> Option<&Arc<Batch>> {
        self.0.batch.as_ref()
    }

    /// Opens a group commit on the inline connection.
    pub(crate) fn open_batch(&mut self) -> Result<Arc<Batch>, StoreError> {
        self.inline()?.execute_batch(BEGIN_IMMEDIATE)?;
        let batch = Arc::new(Batch::default());
        self.0.batch = Some(batch.clone());
        Ok(batch)
    }

    /// Commits the open group commit, if any, and tells its writers how it went. A failed
    /// COMMIT leaves the transaction open: it is rolled back, and the writers are told.
    pub(crate) fn commit_batch(&mut self) {
        let Some(batch) = self.0.batch.take() else { return };
        let Some(conn) = self.0.inline.as_ref() else { return };
        let outcome = conn.execute_batch(COMMIT).map_err(|e| {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch(ROLLBACK);
            }
            Failure::of(&e)
        });
        batch.finish(outcome);
    }

    /// Ends the open group commit without a COMMIT: SQLite already rolled it back (a write
    /// failed with an error that ends the transaction, such as a full disk).
    pub(crate) fn abandon_batch(&mut self, cause: &rusqlite::Error) {
        if let Some(batch) = self.0.batch.take() {
            batch.finish(Err(Failure::of(cause)));
        }
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        self.1.notify_one();
    }
}

impl Deref for WriterGuard {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.0.conn
    }
}

impl DerefMut for WriterGuard {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.conn()
    }
}

/// A write transaction on the writer. Dropped without [`SqliteTx::commit`], it rolls back: at
/// once on a task of its own, which holds the writer until the rollback is done; without a
/// runtime to run it (at shutdown), by the next [`Writer::lock`].
pub(crate) struct SqliteTx {
    guard: Option<WriterGuard>,
}

impl SqliteTx {
    /// The connection; holds the writer from `begin` until the transaction ends.
    pub(crate) fn conn(&mut self) -> Result<&mut SqliteConnection, sqlx::Error> {
        Ok(self.guard.as_mut().ok_or(sqlx::Error::PoolClosed)?.conn())
    }

    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        self.end(COMMIT).await
    }

    pub(crate) async fn rollback(mut self) -> Result<(), sqlx::Error> {
        self.end(ROLLBACK).await
    }

    async fn end(&mut self, statement: &'static str) -> Result<(), sqlx::Error> {
        let Some(mut guard) = self.guard.take() else { return Ok(()) };
        sqlx::query(statement).execute(guard.conn()).await?;
        guard.0.in_transaction = false;
        Ok(())
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        let Some(guard) = self.guard.take() else { return };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let mut tx = SqliteTx { guard: Some(guard) };
                // A failure leaves `in_transaction` set: the next lock tries again.
                let _ = tx.end(ROLLBACK).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn temp_writer(dir: &tempfile::TempDir) -> (Writer, SqliteConnectOptions) {
        temp_writer_with(dir, false).await
    }

    /// A writer on a fresh database with one table `t`; with `inline`, with its rusqlite
    /// connection too (for record writes), which gives up after 200 ms busy.
    async fn temp_writer_with(dir: &tempfile::TempDir, inline: bool) -> (Writer, SqliteConnectOptions) {
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("w.db"))
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
        let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
        sqlx::query("CREATE TABLE t (x INTEGER)").execute(&mut conn).await.unwrap();
        let inline = inline.then(|| {
            let inline = rusqlite::Connection::open(dir.path().join("w.db")).unwrap();
            inline.busy_timeout(Duration::from_millis(200)).unwrap();
            inline
        });
        (Writer::new(conn, inline), options)
    }

    /// What another connection sees: only committed rows.
    async fn committed(options: &SqliteConnectOptions) -> i64 {
        let mut other = SqliteConnection::connect_with(options).await.unwrap();
        sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM t").fetch_one(&mut other).await.unwrap().0
    }

    /// A transaction whose owner is gone (a dropped request) must not stay open on the shared
    /// writer: the next caller's statements would land in it, and be lost or committed with it.
    #[tokio::test]
    async fn a_dropped_transaction_is_rolled_back_before_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, options) = temp_writer(&dir).await;

        let mut tx = writer.begin().await.unwrap();
        sqlx::query("INSERT INTO t VALUES (1)").execute(tx.conn().unwrap()).await.unwrap();
        drop(tx);

        // Cancelled half-way, like a request future dropped while it waits on something else.
        let cancelled = tokio::time::timeout(Duration::from_millis(50), async {
            let mut tx = writer.begin().await.unwrap();
            sqlx::query("INSERT INTO t VALUES (2)").execute(tx.conn().unwrap()).await.unwrap();
            std::future::pending::<()>().await;
        })
        .await;
        assert!(cancelled.is_err());

        // The next write, in autocommit, is visible to others at once: it did not land in a
        // transaction left open by either of the two above.
        sqlx::query("INSERT INTO t VALUES (3)").execute(writer.lock().await.unwrap().conn()).await.unwrap();
        assert_eq!(committed(&options).await, 1);

        let mut tx = writer.begin().await.unwrap();
        sqlx::query("INSERT INTO t VALUES (4)").execute(tx.conn().unwrap()).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(committed(&options).await, 2);
    }

    /// The flag alone (no task to roll back, as at shutdown) is enough: the next lock rolls back.
    #[tokio::test]
    async fn an_open_transaction_flag_is_rolled_back_by_the_next_lock() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, options) = temp_writer(&dir).await;
        let mut tx = writer.begin().await.unwrap();
        sqlx::query("INSERT INTO t VALUES (1)").execute(tx.conn().unwrap()).await.unwrap();
        // Give the guard up without ending the transaction and without the rollback task.
        drop(tx.guard.take());
        drop(tx);
        sqlx::query("INSERT INTO t VALUES (2)").execute(writer.lock().await.unwrap().conn()).await.unwrap();
        assert_eq!(committed(&options).await, 1);
    }

    /// Writes reach the database file without the writer checkpointing (its own threshold, as
    /// here, is far away): the checkpointer does it after them.
    #[tokio::test]
    async fn the_checkpointer_moves_writes_into_the_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, options) = temp_writer(&dir).await;
        let file = dir.path().join("w.db");
        let size = || std::fs::metadata(&file).unwrap().len();
        let before = size();
        let conn = SqliteConnection::connect_with(&options).await.unwrap();
        let _checkpointer = Checkpointer::start(conn, &writer);
        for _ in 0..100 {
            sqlx::query("INSERT INTO t VALUES (zeroblob(1000))")
                .execute(writer.lock().await.unwrap().conn())
                .await
                .unwrap();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        // The checkpointer may run after the first writes and again after the rest.
        while size() <= before + 50_000 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(size() > before + 50_000, "the database file stayed at {} bytes", size());
    }

    /// A record write (which takes the writer without committing an open group) still rolls
    /// back a transaction its dropped owner left open on the sqlx connection: otherwise that
    /// transaction's write lock would keep the record write busy, and its rows would linger.
    #[tokio::test]
    async fn a_record_write_after_a_dropped_transaction_rolls_it_back_first() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, options) = temp_writer_with(&dir, true).await;
        let mut tx = writer.begin().await.unwrap();
        sqlx::query("INSERT INTO t VALUES (1)").execute(tx.conn().unwrap()).await.unwrap();
        // Give the guard up without ending the transaction and without the rollback task.
        drop(tx.guard.take());
        drop(tx);
        let written =
            crate::db::group_commit::record_write(&writer, |c| Ok(c.execute("INSERT INTO t VALUES (2)", [])?));
        assert_eq!(written.await.unwrap(), 1);
        assert_eq!(committed(&options).await, 1);
    }

    #[tokio::test]
    async fn a_closed_store_refuses_statements() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, options) = temp_writer(&dir).await;
        let readers = Readers::new(vec![SqliteConnection::connect_with(&options).await.unwrap()]);
        writer.close().await;
        readers.close();
        assert!(matches!(writer.lock().await, Err(sqlx::Error::PoolClosed)));
        assert!(matches!(readers.get().await, Err(sqlx::Error::PoolClosed)));
    }
}

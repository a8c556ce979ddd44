//! Group commit of record writes on SQLite.
//!
//! Every record write runs on the writer's rusqlite connection while the writer's lock is held
//! (see `inline.rs`). When a write finds others queued behind it, it does not commit alone: it
//! opens a transaction (or joins the one left open), runs its statement, and leaves the
//! transaction to the writes behind it; the last write of the queue commits, and every write of
//! the group is answered only once that commit is done, with its outcome. A write that finds
//! nobody behind it commits at once, as a statement on its own. Under load, a commit (and the
//! pages it writes to the WAL) is shared by the group instead of paid by each write.
//!
//! What keeps a group from staying open:
//! - a write that waits for its group's outcome also queues for the writer again: if the group is
//!   still open when it gets the writer (the writes it counted on were cancelled), it commits it;
//! - whoever takes the writer for anything else (sqlx statements and transactions) commits an open
//!   group first (`Writer::lock`), so those never run inside it.
//!
//! A statement that fails (a constraint) undoes only itself, and its caller gets the error once the
//! group has committed (the row it conflicted with may belong to the group); the group goes on. An error after which SQLite has rolled the whole transaction back (a full disk,
//! an I/O error) ends the group: every write in it gets that error.

use rusqlite::Connection;

use crate::StoreError;
use crate::db::sqlite_conns::Writer;

/// Runs `write` (one statement) on the writer's rusqlite connection, in a group commit when
/// others are queued; answers after its commit.
pub(crate) async fn record_write<T>(
    writer: &Writer,
    write: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut guard = writer.lock_as_is().await?;
    let batch = match guard.batch().cloned() {
        Some(batch) => batch,
        // Nobody behind: a statement on its own, committed as it runs.
        None if writer.queued() == 0 => return write(guard.inline()?),
        None => guard.open_batch()?,
    };
    let conn = guard.inline()?;
    let result = write(conn);
    if conn.is_autocommit() {
        // The statement's error ended the transaction: the group's earlier writes are gone too.
        if let Err(StoreError::Other(crate::Fault::Driver(crate::error::Driver::Sqlite(e)))) = &result {
            guard.abandon_batch(e);
        } else {
            guard.abandon_batch(&rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(1), None));
        }
        return result;
    }
    if writer.queued() == 0 {
        guard.commit_batch();
        return batch.outcome().unwrap_or(Ok(())).and(result);
    }
    // Others are queued: they carry the group on. Listen for its end before letting go.
    let finished = batch.finished();
    tokio::pin!(finished);
    finished.as_mut().enable();
    drop(guard);
    let outcome = tokio::select! {
        () = &mut finished => batch.outcome(),
        again = writer.lock_as_is() => {
            let mut again = again?;
            if again.batch().is_some_and(|open| std::sync::Arc::ptr_eq(open, &batch)) {
                again.commit_batch();
            }
            batch.outcome()
        }
    };
    // Not finished is impossible here (it was finished, or committed just now); say so if it is.
    // A failed statement is answered after the group too: its caller may read next what made it
    // fail (a row written by another write of the group, as a raced refresh rotation does).
    outcome.unwrap_or_else(|| Err(sqlx::Error::PoolClosed.into())).and(result)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{Connection as _, SqliteConnection};

    use super::*;

    async fn writer(dir: &tempfile::TempDir) -> (Writer, SqliteConnectOptions) {
        let path = dir.path().join("g.db");
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
        let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
        sqlx::query("CREATE TABLE t (x INTEGER PRIMARY KEY)").execute(&mut conn).await.unwrap();
        let inline = rusqlite::Connection::open(&path).unwrap();
        (Writer::new(conn, Some(inline)), options)
    }

    async fn committed(options: &SqliteConnectOptions, x: i64) -> bool {
        let mut other = SqliteConnection::connect_with(options).await.unwrap();
        sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM t WHERE x = $1")
            .bind(x)
            .fetch_one(&mut other)
            .await
            .unwrap()
            .0
            == 1
    }

    fn insert(x: i64) -> impl FnOnce(&Connection) -> Result<usize, StoreError> {
        move |c| Ok(c.execute("INSERT INTO t VALUES (?1)", [x])?)
    }

    /// Under concurrency every write is answered only once it is committed: what the caller was
    /// told succeeded is visible to another connection at once. A duplicate key fails alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_write_is_answered_after_its_commit() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, options) = writer(&dir).await;
        let mut tasks = Vec::new();
        for x in 0..64_i64 {
            let (writer, options) = (writer.clone(), options.clone());
            tasks.push(tokio::spawn(async move {
                // Every eighth write repeats a key written before it (or beside it).
                let key = if x % 8 == 7 { x - 1 } else { x };
                let result = record_write(&writer, insert(key)).await;
                if result.is_ok() {
                    assert!(committed(&options, key).await, "{key} answered before its commit");
                }
                result.is_ok()
            }));
        }
        let mut ok = 0;
        for t in tasks {
            ok += usize::from(t.await.unwrap());
        }
        assert_eq!(ok, 56, "every write but the eight duplicates");
        for x in (0..64).filter(|x| x % 8 != 7) {
            assert!(committed(&options, x).await);
        }
    }

    /// A group whose later writes are cancelled is still committed, by a write of the group
    /// that takes the writer again, and that write is answered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_whose_followers_are_cancelled_still_commits() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, options) = writer(&dir).await;
        let held = writer.lock_as_is().await.unwrap();
        let first = tokio::spawn({
            let writer = writer.clone();
            async move { record_write(&writer, insert(1)).await }
        });
        let second = tokio::spawn({
            let writer = writer.clone();
            async move { record_write(&writer, insert(2)).await }
        });
        while writer.queued() < 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        drop(held);
        second.abort();
        let answered = tokio::time::timeout(Duration::from_secs(10), first).await.expect("answered").unwrap();
        assert_eq!(answered.unwrap(), 1);
        assert!(committed(&options, 1).await);
    }

    /// Anything else that takes the writer commits an open group first: sqlx statements never
    /// run inside it, and its writes are not left waiting.
    #[tokio::test]
    async fn another_writer_commits_an_open_group_first() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, options) = writer(&dir).await;
        let mut guard = writer.lock_as_is().await.unwrap();
        let batch = guard.open_batch().unwrap();
        guard.inline().unwrap().execute("INSERT INTO t VALUES (5)", []).unwrap();
        drop(guard);
        assert!(!committed(&options, 5).await);
        let mut other = writer.lock().await.unwrap();
        assert!(committed(&options, 5).await);
        assert!(matches!(batch.outcome(), Some(Ok(()))));
        sqlx::query("INSERT INTO t VALUES (6)").execute(other.conn()).await.unwrap();
        drop(other);
        assert!(committed(&options, 6).await);
    }
}

//! The runtime connections the server uses cannot change the schema or rewrite the audit log: each
//! attack is tried through `Store::connect`'s own connections (a reader and the writer) and refused, while
//! the migration path and ordinary writes still work. The rewrites include the ones the
//! authorizer sees only as an INSERT: `REPLACE INTO` / `INSERT OR REPLACE` (which delete the
//! conflicting row) and upserts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::time::Duration;

use rampart_core::resources::Registry;
use rampart_store::{Store, StoreOptions};

#[tokio::test]
async fn runtime_connections_refuse_ddl_and_audit_rewrites() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/guard.db", dir.path().display());
    let opts = StoreOptions { url: &url, max_connections: 2, busy_timeout: Duration::from_secs(1) };
    Store::migrate(&opts, &Registry::default(), None).await.unwrap();
    let store = Store::connect(&opts).await.unwrap();
    let mut originals = Vec::new();
    for (i, mut conn) in store.sqlite_runtime_connections().await.unwrap().into_iter().enumerate() {
        let conn = &mut **conn;
        // Ordinary work is allowed.
        let id = format!("original-{i}");
        let (seq,): (i64,) = sqlx::query_as(
            "INSERT INTO audit_log (id, at, action, outcome) VALUES ($1, 1, 'x', 'success') RETURNING seq",
        )
        .bind(&id)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        originals.push((seq, id.clone(), "x".to_owned()));
        sqlx::query("SELECT COUNT(*) FROM users").execute(&mut *conn).await.unwrap();
        // Rewrites of that row that SQLite's authorizer only reports as an INSERT: the conflict
        // on `seq` or `id` would delete the original and put a forged row in its place.
        let rewrites = [
            format!(
                "REPLACE INTO audit_log (seq, id, at, action, outcome) VALUES ({seq}, 'forged', 2, 'nothing', 'success')"
            ),
            format!(
                "INSERT OR REPLACE INTO audit_log (seq, id, at, action, outcome) VALUES ({seq}, 'forged', 2, 'nothing', 'success')"
            ),
            format!(
                "INSERT OR REPLACE INTO audit_log (id, at, action, outcome) VALUES ('{id}', 2, 'nothing', 'success')"
            ),
            format!(
                "REPLACE INTO audit_log (id, at, action, outcome) SELECT id, 2, 'nothing', outcome FROM audit_log WHERE seq = {seq}"
            ),
            format!(
                "INSERT INTO audit_log (id, at, action, outcome) VALUES ('{id}', 2, 'nothing', 'success') ON CONFLICT(id) DO UPDATE SET action = excluded.action"
            ),
            format!(
                "INSERT INTO audit_log (seq, id, at, action, outcome) VALUES ({seq}, 'forged', 2, 'nothing', 'success') ON CONFLICT DO UPDATE SET action = 'nothing'"
            ),
            format!("UPDATE OR REPLACE audit_log SET action = 'nothing' WHERE seq = {seq}"),
        ];
        for attack in &rewrites {
            let err = sqlx::query(attack).execute(&mut *conn).await.expect_err(attack).to_string();
            assert!(err.contains("not authorized") || err.contains("append-only"), "{attack}: {err}");
        }
        for attack in [
            "DROP TABLE users",
            "DROP TABLE audit_log",
            "ALTER TABLE users ADD COLUMN pwned TEXT",
            "CREATE TABLE loot (x TEXT)",
            "DROP TRIGGER audit_log_no_delete",
            "CREATE TRIGGER t AFTER INSERT ON users BEGIN DELETE FROM sessions; END",
            "DELETE FROM audit_log",
            "UPDATE audit_log SET action = 'nothing'",
            "DELETE FROM _sqlx_migrations",
            "ATTACH DATABASE '/tmp/x.db' AS x",
            "PRAGMA foreign_keys = OFF",
            "PRAGMA writable_schema = ON",
            "CREATE INDEX i ON users(email)",
            "SELECT load_extension('x')",
        ] {
            let err = sqlx::query(attack).execute(&mut *conn).await.expect_err(attack).to_string();
            assert!(err.contains("not authorized") || err.contains("prohibited"), "{attack}: {err}");
        }
    }
    let rows: Vec<(i64, String, String)> = sqlx::query_as("SELECT seq, id, action FROM audit_log ORDER BY seq")
        .fetch_all(&mut **store.sqlite_runtime_connections().await.unwrap().swap_remove(0))
        .await
        .unwrap();
    assert_eq!(rows, originals, "audit rows untouched: same seq, id and action, nothing forged");
    // The migration path is not affected: migrating again works.
    Store::migrate(&opts, &Registry::default(), None).await.unwrap();
}

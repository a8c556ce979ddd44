//! The runtime pools the server uses cannot change the schema or rewrite the audit log: each
//! attack is tried through `Store::connect`'s own pools (readers and writer) and refused, while
//! the migration path and ordinary writes still work.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

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
    for pool in store.sqlite_pools() {
        // Ordinary work is allowed.
        sqlx::query(
            "INSERT INTO audit_log (id, at, action, outcome) VALUES (lower(hex(randomblob(16))), 1, 'x', 'success')",
        )
        .execute(pool)
        .await
        .unwrap();
        sqlx::query("SELECT COUNT(*) FROM users").execute(pool).await.unwrap();
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
            let err = sqlx::query(attack).execute(pool).await.expect_err(attack).to_string();
            assert!(err.contains("not authorized") || err.contains("prohibited"), "{attack}: {err}");
        }
    }
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM audit_log").fetch_one(store.sqlite_pools()[0]).await.unwrap();
    assert_eq!(n, 2, "audit rows untouched");
    // The migration path is not affected: migrating again works.
    Store::migrate(&opts, &Registry::default(), None).await.unwrap();
}

//! On PostgreSQL the runtime role is the least-privilege boundary: `Store::migrate`, run as the
//! owner, grants it only what the server needs. Each attack is tried through `Store::connect`'s
//! own pool, as the server would run it, and refused by the database; ordinary work still runs.
//!
//! Needs `RAMPART_TEST_POSTGRES_URL` (an admin URL; `.ci/run` sets it): without it the test passes
//! without running, and says so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::time::Duration;

use rampart_core::resources::Registry;
use rampart_store::{Store, StoreOptions};
use sqlx::Connection;

const ROLE: &str = "rampart_test_app";

/// Two declared resources: one whose policy allows deletes, one whose policy does not.
const RESOURCES: &str = r#"
[resources.notes]
owner = "user_id"
fields.text = { type = "string", max_len = 100 }
access.read = "owner"
access.create = "authenticated"
access.delete = "owner"

[resources.ledger]
owner = "user_id"
fields.amount = { type = "integer" }
access.read = "owner"
access.create = "authenticated"
"#;

fn registry() -> Registry {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.toml");
    std::fs::write(&path, RESOURCES).unwrap();
    let loaded = rampart_core::config::load(Some(&path), Vec::<(String, String)>::new()).unwrap();
    rampart_core::config::check(loaded).accept(|_| false).unwrap().settings.resources
}

fn on_db(url: &str, db: &str, user: Option<&str>) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h).split('/').next().unwrap();
    let user = user.map_or_else(|| rest.rsplit_once('@').map_or("postgres", |(u, _)| u).to_owned(), str::to_owned);
    format!("{scheme}://{user}@{host}/{db}")
}

#[tokio::test]
async fn the_runtime_role_cannot_change_the_schema_or_rewrite_the_audit_log() {
    let Some(admin) = std::env::var("RAMPART_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty()) else {
        eprintln!("RAMPART_TEST_POSTGRES_URL is not set: the PostgreSQL privilege test did not run");
        return;
    };
    let name = format!("rampart_priv_{}", uuid::Uuid::new_v4().simple());
    let mut server = sqlx::PgConnection::connect(&admin).await.unwrap();
    let _ = sqlx::query(&format!("CREATE ROLE {ROLE} LOGIN")).execute(&mut server).await;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut server).await.unwrap();

    let owner_url = on_db(&admin, &name, None);
    let runtime_url = on_db(&admin, &name, Some(ROLE));
    let opts = |url| StoreOptions { url, max_connections: 2, busy_timeout: Duration::from_secs(1) };
    let resources = registry();
    Store::migrate(&opts(&owner_url), &resources, Some(ROLE)).await.unwrap();
    let store = Store::connect(&opts(&runtime_url)).await.unwrap();
    assert_eq!(store.runtime_role_owns_schema().await.unwrap(), Some(false));
    let pool = store.postgres_pool().unwrap();

    // Ordinary work is allowed.
    for ok in [
        "INSERT INTO audit_log (id, at, action, outcome) VALUES (md5(random()::text), 1, 'x', 'success')",
        "SELECT COUNT(*) FROM users",
        "SELECT COUNT(*) FROM audit_log",
        "DELETE FROM sessions WHERE expires_at < 0",
        "DELETE FROM res_notes WHERE created_at < 0",
        "UPDATE users SET display_name = NULL WHERE id = 'nobody'",
    ] {
        sqlx::query(ok).execute(pool).await.unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for attack in [
        "DROP TABLE users",
        "DROP TABLE audit_log",
        "ALTER TABLE users ADD COLUMN pwned TEXT",
        "ALTER TABLE audit_log DISABLE TRIGGER ALL",
        "TRUNCATE users",
        "TRUNCATE audit_log",
        "UPDATE audit_log SET action = 'nothing'",
        "DELETE FROM audit_log",
        "CREATE TABLE loot (x TEXT)",
        "CREATE INDEX i ON users(email)",
        "DELETE FROM _sqlx_migrations",
        "DELETE FROM res_ledger",
        "DROP TRIGGER audit_log_no_update_delete ON audit_log",
        // An upsert needs UPDATE on the conflicting row, which the runtime role does not have.
        "INSERT INTO audit_log (id, at, action, outcome) SELECT id, 2, 'nothing', outcome FROM audit_log \
         ON CONFLICT (id) DO UPDATE SET action = excluded.action",
    ] {
        let err = sqlx::query(attack).execute(pool).await.expect_err(attack).to_string();
        assert!(err.contains("permission denied") || err.contains("must be owner"), "{attack}: {err}");
    }
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_log").fetch_one(pool).await.unwrap();
    assert_eq!(n, 1, "audit rows untouched");
    store.close().await;

    // Migrating again (as the owner) works, and a runtime role that owns the schema is detected.
    Store::migrate(&opts(&owner_url), &resources, Some(ROLE)).await.unwrap();
    let as_owner = Store::connect(&opts(&owner_url)).await.unwrap();
    assert_eq!(as_owner.runtime_role_owns_schema().await.unwrap(), Some(true));
    as_owner.close().await;

    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)")).execute(&mut server).await.unwrap();
}

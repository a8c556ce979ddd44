//! Every declared statement compiles against freshly migrated databases: a typo, a column the
//! schema does not have, a construct one dialect lacks, or (on SQLite) a statement the runtime
//! authorizer refuses, fails here rather than in a request.

use std::collections::HashMap;

use sqlx::{Connection, Executor};

use super::{ALL, Declared, Runs};
use crate::Store;
use crate::test_db::{TempPostgres, TempSqlite, options};

fn declared() -> impl Iterator<Item = &'static Declared> {
    ALL.iter().flat_map(|module| module.iter())
}

fn report(backend: &str, failures: &[String]) {
    assert!(failures.is_empty(), "statements that do not prepare on {backend}:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn every_statement_prepares_on_sqlite() {
    let db = TempSqlite::migrated().await;
    let store = Store::connect(&options(&db.url)).await.unwrap();
    // Runtime statements on the runtime pool, so the authorizer judges them as it will in use.
    let mut runtime = store.sqlite_runtime_connections().await.unwrap().into_iter().next().unwrap();
    let mut migration = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    let mut failures = Vec::new();
    for s in declared() {
        let prepared = match s.runs {
            Runs::Runtime | Runs::SqliteRuntime => Executor::prepare(&mut **runtime, s.text).await.map(drop),
            Runs::Migration | Runs::Sqlite => Executor::prepare(&mut migration, s.text).await.map(drop),
            Runs::Postgres => continue,
        };
        if let Err(e) = prepared {
            failures.push(format!("{}: {e}", s.name));
        }
    }
    drop(runtime);
    store.close().await;
    report("SQLite", &failures);
}

#[tokio::test]
async fn every_statement_prepares_on_postgres() {
    let Some(db) = TempPostgres::migrated("every_statement_prepares_on_postgres").await else {
        return;
    };
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut failures = Vec::new();
    for s in declared().filter(|s| !matches!(s.runs, Runs::Sqlite | Runs::SqliteRuntime)) {
        if let Err(e) = Executor::prepare(&mut conn, s.text).await {
            failures.push(format!("{}: {e}", s.name));
        }
    }
    conn.close().await.unwrap();
    db.remove().await;
    report("PostgreSQL", &failures);
}

/// One text, one name: a statement written twice would drift.
#[test]
fn no_statement_is_declared_twice() {
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for s in declared() {
        if let Some(first) = seen.insert(s.text, s.name) {
            panic!("{} repeats {first}", s.name);
        }
    }
}

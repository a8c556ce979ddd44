//! The two migration sets describe one schema: after migrating, SQLite and PostgreSQL have the
//! same tables with the same columns, and each column is nullable in both or in neither. (Types
//! are left out: the dialects name them differently, and every statement is checked against
//! both schemas by the prepare test in `sql`.)

use std::collections::BTreeMap;

use sqlx::Connection;

use crate::test_db::{TempPostgres, TempSqlite};

/// `(table, column)` → NOT NULL.
type Columns = BTreeMap<(String, String), bool>;

async fn sqlite_columns(url: &str) -> Columns {
    let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
    // An INTEGER PRIMARY KEY is the rowid, which cannot be NULL whatever `notnull` says.
    let rows: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT m.name, p.name, p.\"notnull\" = 1 OR (p.pk = 1 AND upper(p.type) = 'INTEGER') \
         FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    rows.into_iter().map(|(t, c, not_null)| ((t, c), not_null)).collect()
}

async fn postgres_columns(url: &str) -> Columns {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let rows: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, is_nullable = 'NO' FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    rows.into_iter().map(|(t, c, not_null)| ((t, c), not_null)).collect()
}

#[tokio::test]
async fn both_migrations_make_the_same_tables_and_columns() {
    let sqlite = TempSqlite::migrated().await;
    let sqlite_cols = sqlite_columns(&sqlite.url).await;
    assert!(sqlite_cols.contains_key(&("users".into(), "email_normalized".into())), "{sqlite_cols:?}");
    let Some(postgres) = TempPostgres::migrated("both_migrations_make_the_same_tables_and_columns").await else {
        return;
    };
    let postgres_cols = postgres_columns(&postgres.url).await;
    postgres.remove().await;

    let mut differences = Vec::new();
    for ((table, column), not_null) in &sqlite_cols {
        match postgres_cols.get(&(table.clone(), column.clone())) {
            None => differences.push(format!("{table}.{column}: only on SQLite")),
            Some(pg) if pg != not_null => differences.push(format!(
                "{table}.{column}: NOT NULL on {}",
                if *not_null { "SQLite only" } else { "PostgreSQL only" }
            )),
            Some(_) => {}
        }
    }
    for (table, column) in postgres_cols.keys() {
        if !sqlite_cols.contains_key(&(table.clone(), column.clone())) {
            differences.push(format!("{table}.{column}: only on PostgreSQL"));
        }
    }
    assert!(differences.is_empty(), "the migrations disagree:\n{}", differences.join("\n"));
}

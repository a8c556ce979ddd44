//! Freshly migrated databases for the store's own tests: a SQLite file in a temp dir, and a
//! PostgreSQL database of its own when `RAMPART_TEST_POSTGRES_URL` (an admin URL) is set.

use std::time::Duration;

use rampart_core::resources::Registry;
use sqlx::Connection;

use crate::{Store, StoreOptions};

pub(crate) fn options(url: &str) -> StoreOptions<'_> {
    StoreOptions { url, max_connections: 2, busy_timeout: Duration::from_secs(5) }
}

/// A migrated SQLite database, removed with the value.
pub(crate) struct TempSqlite {
    _dir: tempfile::TempDir,
    pub(crate) url: String,
}

impl TempSqlite {
    pub(crate) async fn migrated() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/test.db", dir.path().display());
        Store::migrate(&options(&url), &Registry::default(), None).await.unwrap();
        Self { _dir: dir, url }
    }
}

/// A migrated PostgreSQL database of its own; [`TempPostgres::remove`] drops it.
pub(crate) struct TempPostgres {
    admin: String,
    name: String,
    pub(crate) url: String,
}

impl TempPostgres {
    /// `None` (and a line saying so) when `RAMPART_TEST_POSTGRES_URL` is not set.
    pub(crate) async fn migrated(test: &str) -> Option<Self> {
        let Some(admin) = std::env::var("RAMPART_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty()) else {
            eprintln!("RAMPART_TEST_POSTGRES_URL is not set: {test} did not run on PostgreSQL");
            return None;
        };
        let name = format!("rampart_store_{}", uuid::Uuid::new_v4().simple());
        let mut server = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut server).await.unwrap();
        server.close().await.unwrap();
        // The same URL with the new database's name as its path, query kept.
        let (base, query) = admin.split_once('?').map_or((admin.as_str(), None), |(b, q)| (b, Some(q)));
        let (scheme, rest) = base.split_once("://").unwrap();
        let authority = rest.split_once('/').map_or(rest, |(a, _)| a);
        let url = match query {
            Some(q) => format!("{scheme}://{authority}/{name}?{q}"),
            None => format!("{scheme}://{authority}/{name}"),
        };
        Store::migrate(&options(&url), &Registry::default(), None).await.unwrap();
        Some(Self { admin, name, url })
    }

    pub(crate) async fn remove(self) {
        let mut server = sqlx::PgConnection::connect(&self.admin).await.unwrap();
        sqlx::query(&format!("DROP DATABASE {} WITH (FORCE)", self.name)).execute(&mut server).await.unwrap();
    }
}

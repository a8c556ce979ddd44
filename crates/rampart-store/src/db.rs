//! Opening the database: the runtime pool and the separate migration connection.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqlitePool};

use crate::StoreError;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The handle every request uses. Cheap to clone.
///
/// Two pools on SQLite: `pool` for reads (WAL lets them run beside a writer), and `writer`, one
/// connection that every write goes through. SQLite admits one writer at a time anyway; letting
/// several connections race for the lock only adds SQLITE_BUSY retries, whose back-off sleeps
/// for milliseconds. Queued on one connection, writes run back to back.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: SqlitePool,
    pub(crate) writer: SqlitePool,
    pub(crate) users: std::sync::Arc<crate::users::UserCache>,
}

pub struct StoreOptions<'a> {
    pub url: &'a str,
    pub max_connections: u32,
    pub busy_timeout: Duration,
}

impl Store {
    /// Applies pending migrations over a dedicated connection, separate from the runtime pool.
    /// Also creates or migrates the tables of the declared resources (see `resource_schema`).
    pub async fn migrate(
        opts: &StoreOptions<'_>,
        resources: &rampart_core::resources::Registry,
    ) -> Result<(), StoreError> {
        let options = sqlite_options(opts)?;
        let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
        restrict_file(options.get_filename())?;
        SQLITE_MIGRATIONS.run(&mut conn).await.map_err(|e| StoreError::Other(e.to_string()))?;
        crate::resource_schema::ensure(&mut conn, resources).await?;
        conn.close().await?;
        Ok(())
    }

    /// Opens the runtime pool: WAL (readers never wait for the writer), foreign keys enforced,
    /// and a busy timeout so concurrent writers queue instead of failing at once.
    pub async fn connect(opts: &StoreOptions<'_>) -> Result<Self, StoreError> {
        let options = sqlite_options(opts)?;
        let pool = runtime_pool(opts.max_connections.max(1)).connect_with(options.clone()).await?;
        let writer = runtime_pool(1).connect_with(options).await?;
        Ok(Self { pool, writer, users: std::sync::Arc::new(crate::users::UserCache::new()) })
    }

    /// Readiness: one round trip.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }

    /// The runtime pools (readers, writer), for tests that attack them directly.
    pub fn sqlite_pools(&self) -> [&SqlitePool; 2] {
        [&self.pool, &self.writer]
    }
}

/// Runtime connections carry the authorizer (see `rampart-sqlite-guard`): no DDL, no ATTACH, no
/// rewriting of the audit log. Only `migrate` opens a connection without it.
fn runtime_pool(max: u32) -> SqlitePoolOptions {
    SqlitePoolOptions::new().max_connections(max).acquire_timeout(Duration::from_secs(5)).after_connect(|conn, _| {
        Box::pin(async move {
            let mut handle = conn.lock_handle().await?;
            rampart_sqlite_guard::install(&mut handle).map_err(|e| sqlx::Error::Configuration(e.into()))
        })
    })
}

/// The database holds password and token hashes: readable by its owner only (0600), whatever
/// the umask was when SQLite created it. WAL side files are created with the database's mode.
#[cfg(unix)]
fn restrict_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(m) if m.permissions().mode() & 0o077 != 0 => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| StoreError::Other(format!("cannot restrict {}: {e}", path.display())))
        }
        _ => Ok(()),
    }
}

#[cfg(not(unix))]
fn restrict_file(_: &Path) -> Result<(), StoreError> {
    Ok(())
}

fn sqlite_options(opts: &StoreOptions<'_>) -> Result<SqliteConnectOptions, StoreError> {
    let url = opts.url;
    if !url.starts_with("sqlite:") {
        return Err(StoreError::Other("database.url: only sqlite:// URLs are supported by this build".into()));
    }
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|_| StoreError::Other("database.url is not a valid sqlite:// URL".into()))?;
    if let Some(parent) = Path::new(options.get_filename()).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .map_err(|e| StoreError::Other(format!("cannot create {}: {e}", parent.display())))?;
    }
    Ok(options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(opts.busy_timeout))
}

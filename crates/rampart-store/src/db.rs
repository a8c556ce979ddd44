//! Opening the database: the runtime pools and the separate migration connection, on SQLite or
//! PostgreSQL, chosen by the URL's scheme. How statements then run on either is in `dialect`.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, PgPool};

pub(crate) use self::inline::InlineReaders;
pub(crate) use self::sqlite_conns::{Checkpointer, Readers, Role, Writer};
use crate::dialect::WriteTx;
use crate::{Fault, StoreError};

statements! {
    /// Readiness: one round trip.
    SELECT_ONE = "SELECT 1";
    /// Instances starting together migrate one at a time: sqlx locks only its own files, not the
    /// resource tables and grants that follow. The key is Rampart's own.
    LOCK_MIGRATIONS [Postgres] = "SELECT pg_advisory_lock(7263158)";
    /// Whether migrations ever ran here (before, the bookkeeping table does not exist).
    MIGRATIONS_TABLE_SQLITE [Sqlite] =
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'";
    MIGRATIONS_TABLE_POSTGRES [Postgres] = "SELECT COUNT(*) FROM pg_tables \
         WHERE schemaname = current_schema() AND tablename = '_sqlx_migrations'";
    /// The migrations applied, read by the runtime (`database.migrate_on_start = false`) to
    /// refuse a schema older than its binary.
    SELECT_APPLIED_MIGRATIONS = "SELECT version FROM _sqlx_migrations WHERE success";
    SELECT_RECORDED_RESOURCES = "SELECT resource FROM rampart_resources";
    SELECT_RECORDED_RESOURCE_FIELDS = "SELECT resource, field, kind, optional FROM rampart_resource_fields";
}

pub(crate) static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A PostgreSQL connection idle this long is pinged before it is lent (see `Store::connect`).
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// The connections behind a [`Store`].
#[derive(Clone)]
pub(crate) enum Db {
    /// On SQLite, connections the store holds itself (see `sqlite_conns`): `read`, a fixed set of
    /// readers (WAL lets them run beside a writer), and `write`, the one connection that every
    /// write goes through.
    /// `checkpointer` moves the WAL into the database file off the writer's path.
    /// `inline` reads declared records and refresh tokens on the calling thread (see `inline`).
    Sqlite { read: Arc<Readers>, write: Writer, checkpointer: Arc<Checkpointer>, inline: Arc<InlineReaders> },
    /// One pool: PostgreSQL handles concurrent writers itself.
    Postgres(PgPool),
}

/// The handle every request uses. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) db: Db,
    pub(crate) users: std::sync::Arc<crate::users::UserCache>,
}

pub struct StoreOptions<'a> {
    pub url: &'a str,
    pub max_connections: u32,
    pub busy_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(Fault::Url("database.url must start with sqlite:// or postgres://").into())
        }
    }
}

/// The role a `postgres://` URL connects as (the runtime role, for `migrate`'s grants).
pub fn postgres_user(url: &str) -> Option<String> {
    PgConnectOptions::from_str(url).ok().map(|o| o.get_username().to_owned())
}

impl Store {
    /// Applies pending migrations over a dedicated connection, separate from the runtime pools,
    /// and creates or migrates the tables of the declared resources (see `resource_schema`). On
    /// PostgreSQL, when `runtime_role` is another role than the one migrating, it is then granted
    /// exactly what the server needs (see `grants`).
    pub async fn migrate(
        opts: &StoreOptions<'_>,
        resources: &rampart_core::resources::Registry,
        runtime_role: Option<&str>,
    ) -> Result<(), StoreError> {
        match Backend::of(opts.url)? {
            Backend::Sqlite => {
                let options = sqlite_options(opts)?;
                let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
                restrict_file(options.get_filename())?;
                SQLITE_MIGRATIONS.run(&mut conn).await.map_err(Fault::Migration)?;
                // The same transaction type as at run time, on this connection (no authorizer).
                let writer = Writer::new(conn, None);
                crate::resource_schema::ensure(WriteTx::Sqlite(writer.begin().await?), resources).await?;
                writer.close().await;
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect_with(&pg_options(opts)?).await?;
                sqlx::query(LOCK_MIGRATIONS).execute(&mut conn).await?;
                let done = async {
                    POSTGRES_MIGRATIONS.run(&mut conn).await.map_err(Fault::Migration)?;
                    crate::resource_schema::ensure(WriteTx::Postgres(conn.begin().await?), resources).await?;
                    if let Some(role) = runtime_role {
                        crate::grants::apply(&mut conn, role, resources).await?;
                    }
                    Ok::<_, StoreError>(())
                }
                .await;
                // Closing the connection releases the lock too, whatever happened.
                conn.close().await?;
                done?;
            }
        }
        Ok(())
    }

    /// Opens the runtime pools. SQLite: WAL (readers never wait for the writer), foreign keys
    /// enforced, a busy timeout so concurrent writers queue instead of failing at once, and the
    /// authorizer on every connection. PostgreSQL: one pool as the runtime role, whose grants
    /// are its least privilege.
    pub async fn connect(opts: &StoreOptions<'_>) -> Result<Self, StoreError> {
        let users = std::sync::Arc::new(crate::users::UserCache::new());
        let db = match Backend::of(opts.url)? {
            Backend::Sqlite => {
                let options = sqlite_options(opts)?;
                let mut readers = Vec::new();
                for _ in 0..opts.max_connections.max(1) {
                    readers.push(sqlite_conns::open_runtime(&options, Role::Reader).await?);
                }
                let file = Path::new(options.get_filename());
                let write = Writer::new(
                    sqlite_conns::open_runtime(&options, Role::Writer).await?,
                    Some(inline::open_writer(file, opts.busy_timeout)?),
                );
                let checkpointer =
                    Checkpointer::start(sqlite_conns::open_runtime(&options, Role::Checkpointer).await?, &write);
                let inline = InlineReaders::open(file, opts.max_connections as usize, opts.busy_timeout)?;
                Db::Sqlite {
                    read: Arc::new(Readers::new(readers)),
                    write,
                    checkpointer: Arc::new(checkpointer),
                    inline: Arc::new(inline),
                }
            }
            Backend::Postgres => Db::Postgres(
                PgPoolOptions::new()
                    .max_connections(opts.max_connections.max(1))
                    .acquire_timeout(Duration::from_secs(5))
                    // sqlx pings every connection it lends (a round trip to the server) unless
                    // told not to. Under load a connection was in use a moment ago; only one
                    // that sat idle for a while (through an outage, say) is worth a ping, so
                    // that it is replaced rather than failing a request. (sqlx still pings on
                    // the way back: a connection that failed its query is dropped then.)
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| {
                        Box::pin(async move {
                            if meta.idle_for >= PING_AFTER_IDLE {
                                conn.ping().await?;
                            }
                            Ok(true)
                        })
                    })
                    .connect_with(pg_options(opts)?)
                    .await?,
            ),
        };
        Ok(Self { db, users })
    }

    /// What `rampart migrate` would still change, read over the runtime pools (which may read
    /// the bookkeeping, never write it): each line names a migration of this binary that the
    /// database lacks, or a declared resource whose table is missing or older than its
    /// declaration. Empty when the schema is current.
    pub async fn schema_behind(
        &self,
        resources: &rampart_core::resources::Registry,
    ) -> Result<Vec<String>, StoreError> {
        let (tables,): (i64,) = match &self.db {
            Db::Sqlite { read, .. } => {
                sqlx::query_as(MIGRATIONS_TABLE_SQLITE).fetch_one(&mut *read.get().await?).await?
            }
            Db::Postgres(pool) => sqlx::query_as(MIGRATIONS_TABLE_POSTGRES).fetch_one(pool).await?,
        };
        let migrator = match self.backend() {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        let ours = migrator.iter().filter(|m| !m.migration_type.is_down_migration());
        if tables == 0 {
            return Ok(ours.map(|m| format!("migration {} ({})", m.version, m.description)).collect());
        }
        let applied: Vec<(i64,)> = on_read!(self, |db| sqlx::query_as(SELECT_APPLIED_MIGRATIONS).fetch_all(db).await)?;
        let mut behind: Vec<String> = ours
            .filter(|m| !applied.iter().any(|(v,)| *v == m.version))
            .map(|m| format!("migration {} ({})", m.version, m.description))
            .collect();
        if !behind.is_empty() {
            // The resource bookkeeping may not exist yet either; the migrations come first anyway.
            return Ok(behind);
        }
        let recorded: Vec<(String,)> =
            on_read!(self, |db| sqlx::query_as(SELECT_RECORDED_RESOURCES).fetch_all(db).await)?;
        let fields: Vec<(String, String, String, bool)> =
            on_read!(self, |db| sqlx::query_as(SELECT_RECORDED_RESOURCE_FIELDS).fetch_all(db).await)?;
        for res in resources.0.values() {
            if !recorded.iter().any(|(r,)| *r == res.name) {
                behind.push(format!("resource `{}` (no table yet)", res.name));
                continue;
            }
            for f in &res.fields {
                let known = fields.iter().find(|(r, n, _, _)| *r == res.name && *n == f.name);
                let current =
                    known.is_some_and(|(_, _, kind, optional)| kind == f.kind.name() && *optional == f.optional);
                if !current {
                    behind.push(format!("resource `{}` field `{}`", res.name, f.name));
                }
            }
        }
        Ok(behind)
    }

    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite { .. } => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Readiness: one round trip.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_read!(self, |db| sqlx::query(SELECT_ONE).execute(db).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn close(&self) {
        match &self.db {
            Db::Sqlite { read, write, checkpointer, .. } => {
                checkpointer.stop();
                read.close();
                write.close().await;
            }
            Db::Postgres(p) => p.close().await,
        }
    }

    /// On PostgreSQL, whether the runtime role owns the schema or a table in it (it could then
    /// alter or drop them whatever it was granted). `None` on SQLite, which has no roles.
    pub async fn runtime_role_owns_schema(&self) -> Result<Option<bool>, StoreError> {
        match &self.db {
            Db::Sqlite { .. } => Ok(None),
            Db::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                crate::grants::runtime_role_owns_schema(&mut conn).await.map(Some)
            }
        }
    }

    /// A SQLite reader and the writer, as the server uses them, for tests that attack them
    /// directly. Empty on PostgreSQL.
    pub async fn sqlite_runtime_connections(
        &self,
    ) -> Result<Vec<Box<dyn std::ops::DerefMut<Target = sqlx::SqliteConnection> + Send + '_>>, StoreError> {
        match &self.db {
            Db::Sqlite { read, write, .. } => Ok(vec![Box::new(read.get().await?), Box::new(write.lock().await?)]),
            Db::Postgres(_) => Ok(Vec::new()),
        }
    }

    /// The PostgreSQL runtime pool, for tests that attack it directly.
    pub fn postgres_pool(&self) -> Option<&PgPool> {
        match &self.db {
            Db::Postgres(p) => Some(p),
            Db::Sqlite { .. } => None,
        }
    }
}

/// The database holds password and token hashes: readable by its owner only (0600), whatever
/// the umask was when SQLite created it. WAL side files are created with the database's mode.
#[cfg(unix)]
fn restrict_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(m) if m.permissions().mode() & 0o077 != 0 => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(|source| Fault::File { action: "restrict", path: path.to_owned(), source }.into())
        }
        _ => Ok(()),
    }
}

#[cfg(not(unix))]
fn restrict_file(_: &Path) -> Result<(), StoreError> {
    Ok(())
}

fn sqlite_options(opts: &StoreOptions<'_>) -> Result<SqliteConnectOptions, StoreError> {
    let options = SqliteConnectOptions::from_str(opts.url)
        .map_err(|_| Fault::Url("database.url is not a valid sqlite:// URL"))?;
    if let Some(parent) = Path::new(options.get_filename()).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|source| Fault::File {
            action: "create",
            path: parent.to_owned(),
            source,
        })?;
    }
    Ok(options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(opts.busy_timeout))
}

fn pg_options(opts: &StoreOptions<'_>) -> Result<PgConnectOptions, StoreError> {
    // The parse error could quote the URL, password included: say only what is wrong.
    let options =
        PgConnectOptions::from_str(opts.url).map_err(|_| Fault::Url("database URL is not a valid postgres:// URL"))?;
    // A statement that runs longer than this is cancelled by the server: a slow query must not
    // hold a connection (and a request) forever.
    Ok(options.options([("statement_timeout", "15000")]).application_name("rampart"))
}

pub(crate) mod group_commit;
mod inline;
#[cfg(test)]
mod schema_parity;
pub(crate) mod sqlite_conns;

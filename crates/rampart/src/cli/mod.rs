//! The commands, one module each, sharing config loading and store opening.

pub mod backup;
pub mod check;
pub mod data_key;
pub mod keys;
pub mod migrate;
pub mod serve;
pub mod user;

use std::path::Path;

use rampart_core::config::{self, Accepted, Level, Settings};
use rampart_store::{Store, StoreOptions};

use crate::Failure;

/// Loads and checks the config into its settings. Errors (and, in production, unsafe settings)
/// stop here with exit code 2; warnings are returned for the caller to log.
pub fn load_checked(path: Option<&Path>) -> Result<Accepted, Failure> {
    load_checked_except(path, |_| false)
}

/// For `keys generate` / `keys rotate`, whose whole point is to fix a missing key.
pub fn load_checked_allowing_missing_keys(path: Option<&Path>) -> Result<Accepted, Failure> {
    load_checked_except(path, |p| p.key == "auth.keys_dir")
}

fn load_checked_except(path: Option<&Path>, waive: impl Fn(&config::Problem) -> bool) -> Result<Accepted, Failure> {
    let loaded = config::load(path, std::env::vars()).map_err(|e| Failure::config(e.to_string()))?;
    let errors = match config::check(loaded).accept(waive) {
        Ok(accepted) => return Ok(accepted),
        Err(errors) => errors,
    };
    // One line per problem, all of them in order, so an operator fixes everything in one pass.
    let mut lines = errors.iter().map(ToString::to_string);
    let last = lines.next_back().unwrap_or_else(|| "config refused".to_owned());
    for e in lines {
        eprintln!("rampart: {e}");
    }
    Err(Failure::config(last))
}

pub fn store_options(c: &Settings) -> StoreOptions<'_> {
    let sqlite = matches!(rampart_store::Backend::of(c.database.url.expose()), Ok(rampart_store::Backend::Sqlite));
    StoreOptions {
        url: c.database.url.expose(),
        max_connections: c.database.max_connections_for(sqlite),
        busy_timeout: c.database.busy_timeout,
    }
}

/// What only the database can tell: on PostgreSQL, a runtime role that owns the schema (or a
/// table in it) is refused in production and warned about in dev; a database that cannot be
/// reached is a warning (`check` may run where the database is not reachable).
pub async fn database_problems(c: &Settings) -> Vec<config::Problem> {
    let production = c.profile == config::Profile::Production;
    let problem = |level, message: String, fix: &str| config::Problem {
        level,
        key: "database.url".into(),
        message,
        fix: fix.into(),
    };
    if !matches!(rampart_store::Backend::of(c.database.url.expose()), Ok(rampart_store::Backend::Postgres)) {
        return Vec::new();
    }
    let opts = StoreOptions { max_connections: 1, ..store_options(c) };
    let owns = match Store::connect(&opts).await {
        Ok(store) => {
            let owns = store.runtime_role_owns_schema().await;
            store.close().await;
            owns
        }
        Err(e) => Err(e),
    };
    match owns {
        Ok(Some(true)) => vec![problem(
            if production { Level::Error } else { Level::Warning },
            "the runtime role owns the schema or a table in it, so it could alter or drop them whatever it is granted"
                .into(),
            "run the server as a role that owns nothing, and set database.migrate_url to the owner: `rampart migrate` grants the runtime role only what it needs",
        )],
        Ok(_) => Vec::new(),
        Err(e) => vec![problem(
            Level::Warning,
            format!("could not connect to check the runtime role's privileges: {e}"),
            "run `rampart check` where the database is reachable",
        )],
    }
}

/// The role `migrate` grants to: on PostgreSQL with a separate migration URL, the user of
/// `database.url`. (Without one, the server migrates as itself and there is nothing to grant.)
pub fn runtime_role(c: &Settings) -> Option<String> {
    let postgres = matches!(rampart_store::Backend::of(c.database.url.expose()), Ok(rampart_store::Backend::Postgres));
    c.database
        .migrate_url
        .as_ref()
        .filter(|_| postgres)
        .and_then(|_| rampart_store::postgres_user(c.database.url.expose()))
}

/// Opens the runtime pool, migrating first (with the migration URL when there is one) when
/// `database.migrate_on_start` is on. When it is off, the migration URL is never opened, and a
/// schema older than this binary (or than the declared resources) is refused with exit 1: the
/// server would otherwise fail on its first request that touches what is missing.
pub async fn open_store(c: &Settings) -> Result<Store, Failure> {
    if c.migrate_on_start() {
        let migrate_url = c.database.migrate_url.as_ref().unwrap_or(&c.database.url);
        let migrate = StoreOptions { url: migrate_url.expose(), ..store_options(c) };
        Store::migrate(&migrate, &c.resources, runtime_role(c).as_deref())
            .await
            .map_err(|e| Failure::runtime(format!("database {}: migration failed: {e}", migrate_url.redacted())))?;
    }
    let store = Store::connect(&store_options(c))
        .await
        .map_err(|e| Failure::runtime(format!("database {}: {e}", c.database.url.redacted())))?;
    if !c.migrate_on_start() {
        let behind = match store.schema_behind(&c.resources).await {
            Ok(behind) => behind,
            Err(e) => {
                store.close().await;
                return Err(Failure::runtime(format!(
                    "database {}: cannot read the schema version: {e}",
                    c.database.url.redacted()
                )));
            }
        };
        if let Some(first) = behind.first() {
            store.close().await;
            return Err(Failure::runtime(format!(
                "database {}: the schema is older than this binary ({} pending, first: {first}); run `rampart migrate` first (database.migrate_on_start is off)",
                c.database.url.redacted(),
                behind.len()
            )));
        }
    }
    Ok(store)
}

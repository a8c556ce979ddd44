//! `rampart backup` and `rampart restore` (SQLite; PostgreSQL has `pg_dump` and `pg_restore`),
//! and the lock that keeps a restore away from a running server.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use rampart_core::config::Settings;
use rampart_store::Backend;

use crate::Failure;

const PG_DUMP: &str = "on PostgreSQL, back up with `pg_dump --format=custom --file=FILE \"$DATABASE_URL\"` as the schema owner (database.migrate_url), and restore into a stopped deployment with `pg_restore --clean --if-exists --no-owner --dbname=\"$DATABASE_URL\" FILE`, then run `rampart migrate`";

fn sqlite_only(c: &Settings) -> Result<PathBuf, Failure> {
    match Backend::of(c.database.url.expose()) {
        Ok(Backend::Sqlite) => rampart_store::backup::sqlite_path(c.database.url.expose())
            .map_err(|e| Failure::config(format!("config key `database.url`: {e}"))),
        Ok(Backend::Postgres) => Err(Failure::config(PG_DUMP)),
        Err(e) => Err(Failure::config(format!("config key `database.url`: {e}"))),
    }
}

/// The lock file beside a SQLite database: a running server holds it shared, a restore
/// exclusively, so neither starts while the other runs. (SQLite's own locks cannot tell: a
/// server whose pool has no open connection holds none of them.)
fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".rampart-lock");
    PathBuf::from(name)
}

fn open_lock(db: &Path) -> Result<File, Failure> {
    let path = lock_path(db);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Failure::runtime(format!("cannot create {}: {e}", dir.display())))?;
    }
    let mut open = std::fs::OpenOptions::new();
    open.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    open.open(&path).map_err(|e| Failure::runtime(format!("cannot open {}: {e}", path.display())))
}

/// For `serve` on SQLite: holds the database's lock (shared: several servers may run on one
/// database) until the returned file is dropped. `None` on PostgreSQL.
pub fn hold_database(c: &Settings) -> Result<Option<File>, Failure> {
    let Ok(Backend::Sqlite) = Backend::of(c.database.url.expose()) else {
        return Ok(None);
    };
    let db = rampart_store::backup::sqlite_path(c.database.url.expose())
        .map_err(|e| Failure::config(format!("config key `database.url`: {e}")))?;
    let lock = open_lock(&db)?;
    match lock.try_lock_shared() {
        Ok(()) => Ok(Some(lock)),
        Err(TryLockError::WouldBlock) => {
            Err(Failure::runtime(format!("database {}: a restore is running; start the server after it", db.display())))
        }
        Err(TryLockError::Error(e)) => Err(Failure::runtime(format!("cannot lock {}: {e}", lock_path(&db).display()))),
    }
}

pub async fn backup(path: Option<&Path>, to: &Path) -> Result<(), Failure> {
    let c = super::load_checked(path)?.settings;
    let db = sqlite_only(&c)?;
    if to.exists() {
        return Err(Failure::runtime(format!("{} exists; a backup never overwrites a file", to.display())));
    }
    rampart_store::backup::backup(&super::store_options(&c), to)
        .await
        .map_err(|e| Failure::runtime(format!("backup of {} failed: {e}", db.display())))?;
    println!("backed up {} to {}", db.display(), to.display());
    Ok(())
}

pub async fn restore(path: Option<&Path>, from: &Path) -> Result<(), Failure> {
    let c = super::load_checked(path)?.settings;
    let db = sqlite_only(&c)?;
    let lock = open_lock(&db)?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(Failure::runtime(format!(
                "database {}: a server is running on it; stop it before restoring",
                db.display()
            )));
        }
        Err(TryLockError::Error(e)) => {
            return Err(Failure::runtime(format!("cannot lock {}: {e}", lock_path(&db).display())));
        }
    }
    rampart_store::backup::restore(&super::store_options(&c), from)
        .await
        .map_err(|e| Failure::runtime(format!("restore into {} refused: {e}", db.display())))?;
    drop(lock);
    println!(
        "restored {} from {}; start the server (or run `rampart migrate`) to bring its schema up to date",
        db.display(),
        from.display()
    );
    Ok(())
}

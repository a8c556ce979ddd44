//! SQLite backups (`rampart backup`) and restores (`rampart restore`). PostgreSQL has its own
//! tools (`pg_dump`, `pg_restore`), which the commands point to instead.
//!
//! A backup is `VACUUM INTO` over a connection of its own: one read transaction, so the copy is
//! the database as of one moment, taken beside a running server (WAL lets the server keep
//! writing meanwhile). The runtime connections cannot run it: their authorizer refuses
//! `VACUUM` (see `rampart-sqlite-guard`), as it writes a file.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::Connection;
use sqlx::sqlite::SqliteConnectOptions;

use crate::db::{MIGRATIONS_TABLE_SQLITE, SELECT_APPLIED_MIGRATIONS, SQLITE_MIGRATIONS};
use crate::{Fault, StoreError, StoreOptions};

statements! {
    /// The copy, into a file that is empty (created 0600 beforehand, see `backup`).
    VACUUM_INTO [Sqlite] = "VACUUM INTO $1";
    QUICK_CHECK [Sqlite] = "PRAGMA quick_check";
}

/// The file of a `sqlite://` URL.
pub fn sqlite_path(url: &str) -> Result<PathBuf, StoreError> {
    let options =
        SqliteConnectOptions::from_str(url).map_err(|_| Fault::Url("database.url is not a valid sqlite:// URL"))?;
    Ok(options.get_filename().to_owned())
}

fn file_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_owned();
    move |source| Fault::File { action, path, source }.into()
}

/// Creates `path` empty with mode 0600 (it will hold password and token hashes), refusing one
/// that exists: a backup never overwrites anything.
fn create_private(path: &Path) -> Result<std::fs::File, StoreError> {
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    open.open(path).map_err(file_error("create", path))
}

/// Writes a consistent copy of the SQLite database of `opts.url` to `to`, a file that must not
/// exist yet. On failure nothing is left at `to`.
pub async fn backup(opts: &StoreOptions<'_>, to: &Path) -> Result<(), StoreError> {
    let from = sqlite_path(opts.url)?;
    if !from.is_file() {
        return Err(Fault::NotABackup(format!("there is no database at {}", from.display())).into());
    }
    let target = to.to_str().ok_or(Fault::Url("the backup path is not valid UTF-8"))?;
    // Without `create_if_missing` and without setting a journal mode: this connection reads.
    let options = SqliteConnectOptions::from_str(opts.url)
        .map_err(|_| Fault::Url("database.url is not a valid sqlite:// URL"))?
        .busy_timeout(opts.busy_timeout);
    create_private(to)?;
    let copied = async {
        let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
        let done = sqlx::query(VACUUM_INTO).bind(target).execute(&mut conn).await;
        conn.close().await?;
        done?;
        // VACUUM INTO does not sync the copy; a backup that a power cut can truncate is no backup.
        std::fs::File::open(to).and_then(|f| f.sync_all()).map_err(file_error("sync", to))
    }
    .await;
    if copied.is_err() {
        let _ = std::fs::remove_file(to);
    }
    copied
}

/// Whether `path` is a SQLite database with Rampart's schema that this binary can run on: the
/// file header, SQLite's own consistency check, and the migrations it records (none unknown to
/// this binary: a backup of a newer version would not fit its code). Opened read-only and
/// immutable, so the file is not touched.
pub async fn verify(path: &Path) -> Result<(), StoreError> {
    use std::io::Read;
    let not_a_backup = |why: &str| -> StoreError { Fault::NotABackup(format!("{}: {why}", path.display())).into() };
    let mut header = [0u8; 16];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut header)).map_err(file_error("read", path))?;
    if &header != b"SQLite format 3\0" {
        return Err(not_a_backup("not a SQLite database"));
    }
    let options = SqliteConnectOptions::new().filename(path).read_only(true).immutable(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
    let checked = async {
        let (check,): (String,) = sqlx::query_as(QUICK_CHECK).fetch_one(&mut conn).await?;
        if check != "ok" {
            return Err(not_a_backup(&format!("SQLite reports it damaged ({check})")));
        }
        let (tables,): (i64,) = sqlx::query_as(MIGRATIONS_TABLE_SQLITE).fetch_one(&mut conn).await?;
        if tables == 0 {
            return Err(not_a_backup("not a Rampart database (no migrations recorded)"));
        }
        let applied: Vec<(i64,)> = sqlx::query_as(SELECT_APPLIED_MIGRATIONS).fetch_all(&mut conn).await?;
        if applied.is_empty() {
            return Err(not_a_backup("not a Rampart database (no migrations recorded)"));
        }
        if let Some((v,)) = applied.iter().find(|(v,)| !SQLITE_MIGRATIONS.iter().any(|m| m.version == *v)) {
            return Err(not_a_backup(&format!("made by a newer Rampart (migration {v} is unknown to this binary)")));
        }
        Ok(())
    }
    .await;
    conn.close().await?;
    checked
}

/// Replaces the SQLite database of `opts.url` with the backup `from`, after [`verify`]. The
/// caller makes sure no server uses the database meanwhile. The copy is written beside the
/// database (0600) and renamed over it, so a crash leaves either database whole; the old
/// database's WAL and shared-memory files are removed first, since SQLite would otherwise
/// replay the old WAL onto the restored file.
pub async fn restore(opts: &StoreOptions<'_>, from: &Path) -> Result<(), StoreError> {
    let target = sqlite_path(opts.url)?;
    verify(from).await?;
    if let (Ok(a), Ok(b)) = (from.canonicalize(), target.canonicalize())
        && a == b
    {
        return Err(Fault::NotABackup(format!("{} is the database itself", from.display())).into());
    }
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(file_error("create", &dir))?;
    let mut tmp_name = target.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".restoring");
    let tmp = dir.join(tmp_name);
    // A leftover of an interrupted restore is only ever a partial copy.
    let _ = std::fs::remove_file(&tmp);
    let copied = (|| {
        let mut out = create_private(&tmp)?;
        let mut input = std::fs::File::open(from).map_err(file_error("read", from))?;
        std::io::copy(&mut input, &mut out).map_err(file_error("write", &tmp))?;
        out.sync_all().map_err(file_error("sync", &tmp))
    })();
    if copied.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return copied;
    }
    for suffix in ["-wal", "-shm"] {
        let mut side = target.as_os_str().to_owned();
        side.push(suffix);
        match std::fs::remove_file(&side) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(file_error("remove", Path::new(&side))(e));
            }
            _ => {}
        }
    }
    std::fs::rename(&tmp, &target).map_err(file_error("replace", &target))?;
    // The rename itself is durable once the directory is synced.
    std::fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(file_error("sync", &dir))
}

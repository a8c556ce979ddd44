//! Operations: `database.migrate_on_start` (a runtime without the owner's credentials) and
//! `rampart backup` / `rampart restore`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::*;

const NOTES: &str = "[resources.notes]\nowner = \"user_id\"\nfields.text = { type = \"string\", max_len = 100 }\naccess.list = \"owner\"\naccess.read = \"owner\"\naccess.create = \"authenticated\"\n";

/// A config of its own for the database of `dir` (as `TestApp` would use it).
fn config(dir: &Path, name: &str, database: &str, extra: &str) -> String {
    let d = dir.display();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0\"\n[database]\n{database}\n[auth]\npassword_hash = {{ algorithm = \"argon2id\", memory_kib = 1024, iterations = 1, parallelism = 1 }}\nkeys_dir = \"{d}/keys\"\n{extra}"
    );
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// `rampart serve`, killed if it is still running after `wait` (it then started, which these
/// tests expect it not to): Some((exit code, stderr)) when it exited by itself.
fn serve_exit(cfg: &str, dir: &Path, wait: Duration) -> Option<(i32, String)> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rampart"));
    cmd.args(["serve", "--config", cfg]).current_dir(dir).stdout(Stdio::null()).stderr(Stdio::piped());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("RAMPART_")) {
        cmd.env_remove(k);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + wait;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    Some((out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned()))
}

#[tokio::test]
async fn without_migrate_on_start_serve_refuses_an_old_schema_and_never_opens_migrate_url() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let d = dir.path();
    let (database, pg) = database_for(d, None);
    // A migration URL that must never be opened: on PostgreSQL nothing listens there, on SQLite
    // opening it would create the file.
    let unused = match &pg {
        Some(_) => "postgres://rampart_owner@127.0.0.1:1/nowhere".to_owned(),
        None => format!("sqlite://{}/owner-only.db", d.display()),
    };
    let url = database.lines().next().unwrap();
    let off = format!("{url}\nmigrate_url = \"{unused}\"\nmigrate_on_start = false");
    let cfg_off = config(d, "off.toml", &off, "");

    let Some((code, err)) = serve_exit(&cfg_off, d, Duration::from_secs(20)) else {
        panic!("the server started on an unmigrated database");
    };
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("`rampart migrate`"), "{err}");
    assert!(err.contains("older than this binary"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(!err.contains("migration failed"), "migrate_url was opened: {err}");
    assert!(!d.join("owner-only.db").exists(), "migrate_url was opened");

    // The deploy step, with the owner's URL; then the server starts without it.
    let cfg_migrate = config(d, "migrate.toml", &database, "");
    let (code, out, err) = run_cli(&["migrate", "--config", &cfg_migrate], None, d, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let app = TestApp::builder()
        .in_dir(Arc::clone(&dir))
        .env("DATABASE__MIGRATE_ON_START", "false")
        .env("DATABASE__MIGRATE_URL", &unused)
        .spawn()
        .await;
    assert_eq!(app.register(&unique_email(), STRONG_PASSWORD).await.status, 201);
    assert!(!d.join("owner-only.db").exists(), "migrate_url was opened");
    drop(app);

    // A resource declared after the last migration is behind too.
    let cfg_notes = config(d, "notes.toml", &off, NOTES);
    let Some((code, err)) = serve_exit(&cfg_notes, d, Duration::from_secs(20)) else {
        panic!("the server started without the table of a declared resource");
    };
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("`rampart migrate`") && err.contains("notes"), "{err}");
    drop(pg);
}

#[tokio::test]
async fn with_migrate_on_start_the_server_migrates_itself() {
    let app = TestApp::builder().env("DATABASE__MIGRATE_ON_START", "true").toml(NOTES).spawn().await;
    let tables = app.table_names().await;
    for t in ["users", "sessions", "audit_log", "res_notes"] {
        assert!(tables.iter().any(|n| n == t), "{t} missing: {tables:?}");
    }
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn backup_under_write_load_then_restore_keeps_every_acknowledged_write() {
    let app = Arc::new(TestApp::spawn().await);
    let d = app.dir.path().to_owned();
    let cfg = app.config_path.display().to_string();
    let backups = tempfile::tempdir().unwrap();
    let backup: PathBuf = backups.path().join("rampart.backup");
    let to = backup.display().to_string();
    if app.on_postgres() {
        for args in [["backup", "--config", &cfg, "--to", &to], ["restore", "--config", &cfg, "--from", &to]] {
            let (code, _, err) = run_cli(&args, None, &d, &[]);
            assert_eq!(code, 2, "{err}");
            assert!(err.contains("pg_dump") && err.contains("pg_restore"), "{err}");
        }
        return;
    }

    // Writers register users until told to stop; each acknowledged write is noted with when.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<(Instant, String)>::new()));
    let writers: Vec<_> = (0..3)
        .map(|_| {
            let (app, stop, acked) = (Arc::clone(&app), Arc::clone(&stop), Arc::clone(&acked));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let email = unique_email();
                    if app.register(&email, STRONG_PASSWORD).await.status == 201 {
                        acked.lock().unwrap().push((Instant::now(), email));
                    }
                }
            })
        })
        .collect();
    while acked.lock().unwrap().len() < 20 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let args = ["backup".to_owned(), "--config".into(), cfg.clone(), "--to".into(), to.clone()];
    let dir = d.clone();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_cli(&args, None, &dir, &[])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    let during = acked.lock().unwrap().len();
    // The server kept taking writes after the backup.
    while acked.lock().unwrap().len() < during + 5 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    #[cfg(unix)]
    assert_eq!(mode(&backup), 0o600, "backup file mode {:o}", mode(&backup));
    let before: Vec<String> =
        acked.lock().unwrap().iter().filter(|(at, _)| *at < started).map(|(_, e)| e.clone()).collect();
    assert!(before.len() >= 20);

    // Never over an existing file.
    let size = std::fs::metadata(&backup).unwrap().len();
    let (code, _, err) = run_cli(&["backup", "--config", &cfg, "--to", &to], None, &d, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("exists") && err.trim_end().lines().count() == 1, "{err}");
    assert_eq!(std::fs::metadata(&backup).unwrap().len(), size);

    // Not into the database of a running server.
    let users = app.count("users").await;
    let (code, _, err) = run_cli(&["restore", "--config", &cfg, "--from", &to], None, &d, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("server is running"), "{err}");
    assert_eq!(app.count("users").await, users);
    assert_eq!(app.register(&unique_email(), STRONG_PASSWORD).await.status, 201);

    // Into a stopped (here: new) data directory, then a server on it has every write that was
    // acknowledged before the backup started.
    let restored = Arc::new(tempfile::tempdir().unwrap());
    let r = restored.path();
    let cfg_r = config(r, "restore.toml", &format!("url = \"sqlite://{}/rampart.db\"", r.display()), "");
    let (code, out, err) = run_cli(&["restore", "--config", &cfg_r, "--from", &to], None, r, &[]);
    assert_eq!(code, 0, "{out}{err}");
    #[cfg(unix)]
    assert_eq!(mode(&r.join("rampart.db")), 0o600);
    let app2 = TestApp::builder().in_dir(Arc::clone(&restored)).spawn().await;
    let pool = app2.db().await;
    let emails: Vec<(String,)> = sqlx::query_as("SELECT email FROM users").fetch_all(&pool).await.unwrap();
    pool.close().await;
    let missing: Vec<&String> = before.iter().filter(|e| !emails.iter().any(|(x,)| x == *e)).collect();
    assert!(missing.is_empty(), "{} acknowledged writes lost: {missing:?}", missing.len());
    let (r2, _) = app2.login(&before[0], STRONG_PASSWORD).await;
    assert_eq!(r2.status, 200, "{}", r2.text());

    // Over the database of a stopped server, whose WAL still holds later writes: the restored
    // database is the backup, not the backup with the old WAL replayed onto it.
    let late = unique_email();
    assert_eq!(app.register(&late, STRONG_PASSWORD).await.status, 201);
    let mut app = Arc::try_unwrap(app).ok().expect("the writers are done");
    app.stop();
    let (code, out, err) = run_cli(&["restore", "--config", &cfg, "--from", &to], None, &d, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let app3 = TestApp::builder().in_dir(Arc::clone(&app.dir)).spawn().await;
    let pool = app3.db().await;
    let emails: Vec<(String,)> = sqlx::query_as("SELECT email FROM users").fetch_all(&pool).await.unwrap();
    let (check,): (String,) = sqlx::query_as("PRAGMA integrity_check").fetch_one(&pool).await.unwrap();
    pool.close().await;
    assert_eq!(check, "ok");
    assert!(before.iter().all(|e| emails.iter().any(|(x,)| x == e)));
    assert!(!emails.iter().any(|(x,)| *x == late), "a write made after the backup came back");
}

#[tokio::test]
async fn restore_refuses_what_is_not_a_rampart_database() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    if postgres_admin_url().is_some() {
        return; // SQLite only; the PostgreSQL answer is checked in the backup test.
    }
    let cfg = config(d, "r.toml", &format!("url = \"sqlite://{}/rampart.db\"", d.display()), "");
    let (code, out, err) = run_cli(&["migrate", "--config", &cfg], None, d, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let original = std::fs::read(d.join("rampart.db")).unwrap();

    let junk = d.join("junk.bin");
    std::fs::write(&junk, vec![0x42u8; 8192]).unwrap();
    let other = d.join("other.db");
    let pool = any_pool(&format!("sqlite://{}?mode=rwc", other.display())).await;
    sqlx::query("CREATE TABLE t (x INTEGER)").execute(&pool).await.unwrap();
    pool.close().await;
    let cases =
        [(junk, "not a SQLite database"), (other, "not a Rampart database"), (d.join("absent.db"), "absent.db")];
    for (file, why) in cases {
        let from = file.display().to_string();
        let (code, _, err) = run_cli(&["restore", "--config", &cfg, "--from", &from], None, d, &[]);
        assert_eq!(code, 1, "{from}: {err}");
        assert!(err.contains(why), "{from}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert_eq!(std::fs::read(d.join("rampart.db")).unwrap(), original, "{from} was restored");
    }
}

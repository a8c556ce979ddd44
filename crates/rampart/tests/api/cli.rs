//! The command line: exit codes, one-line errors naming the key, `check`, `user create`.

use serde_json::json;

use crate::helpers::*;

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn base_config(dir: &std::path::Path) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[database]\nurl = \"sqlite://{}/cli.db\"\n[auth]\npassword_hash = {{ algorithm = \"argon2id\", memory_kib = 1024, iterations = 1, parallelism = 1 }}\n",
        dir.display()
    )
}

#[test]
fn help_lists_the_commands() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run_cli(&["--help"], None, dir.path(), &[]);
    assert_eq!(code, 0);
    for cmd in ["serve", "migrate", "user", "check"] {
        assert!(out.contains(cmd), "{out}");
    }
    let (code, _, _) = run_cli(&["frobnicate"], None, dir.path(), &[]);
    assert_eq!(code, 2);
}

#[test]
fn a_malformed_config_is_one_line_naming_the_key_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("unknown.toml", "[server]\nlisen = \"x\"\n", "lisen"),
        ("type.toml", "[rate_limit]\nlogin_per_ip_per_minute = \"ten\"\n", "rate_limit.login_per_ip_per_minute"),
        ("ttl.toml", "[auth]\naccess_token_ttl = \"1h\"\n", "auth.access_token_ttl"),
        ("syntax.toml", "[server\n", "syntax.toml"),
    ];
    for (name, text, key) in cases {
        let cfg = write(dir.path(), name, text);
        for cmd in ["serve", "check"] {
            let (code, _, err) = run_cli(&[cmd, "--config", &cfg], None, dir.path(), &[]);
            assert_eq!(code, 2, "{cmd} {name}: {err}");
            assert!(err.contains(key), "{cmd} {name}: error does not name {key}: {err}");
            assert_eq!(err.trim_end().lines().count(), 1, "{cmd} {name}: not one line: {err}");
            assert!(!err.contains("panicked") && !err.contains("backtrace"), "{err}");
        }
    }
    let (code, _, err) = run_cli(&["serve", "--config", "/nonexistent/rampart.toml"], None, dir.path(), &[]);
    assert_eq!(code, 2, "{err}");
    // Environment overrides are checked the same way and named.
    let cfg = write(dir.path(), "ok.toml", &base_config(dir.path()));
    let (code, _, err) = run_cli(&["check", "--config", &cfg], None, dir.path(), &[("RAMPART_SERVER__NOPE", "1")]);
    assert_eq!(code, 2);
    assert!(err.contains("RAMPART_SERVER__NOPE"), "{err}");
}

#[test]
fn check_passes_the_example_and_refuses_unsafe_production() {
    let dir = tempfile::tempdir().unwrap();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/rampart.example.toml");
    let (code, out, err) = run_cli(&["check", "--config", example], None, dir.path(), &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ok: dev profile, 1 resource"), "{out}");

    let cfg =
        write(dir.path(), "prod.toml", "profile = \"production\"\ndata_key = \"aW5saW5l\"\n[log]\nlevel = \"debug\"\n");
    let (code, out, err) = run_cli(&["check", "--config", &cfg], None, dir.path(), &[]);
    assert_ne!(code, 0);
    for key in
        ["data_key", "server.public_url", "server.trusted_proxies", "log.level", "auth.require_email_verification"]
    {
        assert!(out.contains(&format!("`{key}`")), "{key} not reported: {out}");
    }
    assert!(out.contains("fix:"), "{out}");
    assert!(!out.contains("aW5saW5l") && !err.contains("aW5saW5l"), "the secret was printed");
    // The production server refuses to start with the same config.
    let (code, _, err) = run_cli(&["serve", "--config", &cfg], None, dir.path(), &[]);
    assert_eq!(code, 2, "{err}");
}

#[tokio::test]
async fn user_create_reads_the_password_from_stdin_and_sets_the_role() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    let cfg = app.config_path.display().to_string();
    let (code, out, err) = run_cli(
        &["user", "create", "--config", &cfg, "--email", &email, "--role", "admin"],
        Some(&format!("{STRONG_PASSWORD}\n")),
        app.dir.path(),
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains(STRONG_PASSWORD) && !err.contains(STRONG_PASSWORD));
    let (r, s) = app.login(&email, STRONG_PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(app.get_as("/auth/me", &s.unwrap()).await.json()["roles"], json!(["user", "admin"]));

    // A weak password, an unknown role, a duplicate: refused, nothing created.
    let users = app.count("users").await;
    let (code, _, err) = run_cli(
        &["user", "create", "--config", &cfg, "--email", &unique_email()],
        Some("password\n"),
        app.dir.path(),
        &[],
    );
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run_cli(
        &["user", "create", "--config", &cfg, "--email", &unique_email(), "--role", "root"],
        Some(STRONG_PASSWORD),
        app.dir.path(),
        &[],
    );
    assert_eq!(code, 2, "{err}");
    let (code, _, err) =
        run_cli(&["user", "create", "--config", &cfg, "--email", &email], Some(STRONG_PASSWORD), app.dir.path(), &[]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(app.count("users").await, users);
}

#[tokio::test]
async fn migrate_creates_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "m.toml", &base_config(dir.path()));
    let (code, out, err) = run_cli(&["migrate", "--config", &cfg], None, dir.path(), &[]);
    assert_eq!(code, 0, "{out}{err}");
    let pool = db_at(&dir.path().join("cli.db")).await;
    let tables: Vec<(String,)> = sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .fetch_all(&pool)
        .await
        .unwrap();
    let names: Vec<&str> = tables.iter().map(|t| t.0.as_str()).collect();
    for t in ["audit_log", "sessions", "users"] {
        assert!(names.contains(&t), "{names:?}");
    }
    let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode").fetch_one(&pool).await.unwrap();
    assert_eq!(mode, "wal");
    // Password and token hashes live in this file: owner-only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("cli.db")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "database file mode {:o}", mode & 0o777);
    }
}

//! `rampart check` (and `serve`, which runs the same checks) against configurations that are
//! valid TOML but unsafe: access policies that do not say what they mean, a proxy list that
//! trusts everyone, passwords hidden in a URL's query string.

use crate::helpers::*;

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

const DATA_KEY: (&str, &str) = ("RAMPART_DATA_KEY", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=");

/// A dev config with nothing to say but what `extra` adds.
fn dev(dir: &std::path::Path, extra: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[database]\nurl = \"sqlite://{d}/lint.db\"\n[auth]\nkeys_dir = \"{d}/keys\"\n{extra}",
        d = dir.display()
    )
}

/// A production config that `check` accepts (https behind a proxy, a generated key, the data key
/// from the environment), with `server` keys and further sections added.
fn production(dir: &std::path::Path, server: &str, extra: &str) -> String {
    let keys = dir.join("keys");
    if !keys.exists() {
        let cfg = write(dir, "keys.toml", &format!("[auth]\nkeys_dir = \"{}\"\n", keys.display()));
        let (code, out, err) = run_cli(&["keys", "generate", "--config", &cfg], None, dir, &[]);
        assert_eq!(code, 0, "{out}{err}");
    }
    format!(
        "profile = \"production\"\n[server]\npublic_url = \"https://auth.example.com\"\n{server}\n[database]\nurl = \"sqlite://{d}/lint.db\"\n[auth]\nrequire_email_verification = false\nkeys_dir = \"{k}\"\n{extra}",
        d = dir.display(),
        k = keys.display()
    )
}

const PROXY: &str = "trusted_proxies = [\"10.0.0.0/8\"]";

/// `check --config` on this text: (exit code, stdout, stderr).
fn check(dir: &std::path::Path, text: &str) -> (i32, String, String) {
    let cfg = write(dir, &format!("{}.toml", uuid::Uuid::new_v4().simple()), text);
    run_cli(&["check", "--config", &cfg], None, dir, &[DATA_KEY])
}

/// The line `check` printed for `key` at `level`, if any.
fn line<'a>(out: &'a str, level: &str, key: &str) -> Option<&'a str> {
    out.lines().find(|l| l.starts_with(&format!("{level}: `{key}`:")))
}

fn resource(owner: bool, rules: &[(&str, &str)], more: &str) -> String {
    let mut t = String::from("[resources.notes]\n");
    if owner {
        t.push_str("owner = \"user_id\"\n");
    }
    t.push_str("fields.text = { type = \"string\", max_len = 100 }\n");
    t.push_str(more);
    for (action, rule) in rules {
        t.push_str(&format!("access.{action} = \"{rule}\"\n"));
    }
    t
}

/// Rules that pass every lint: the shape of the example's `orders`.
const SOUND: [(&str, &str); 5] = [
    ("list", "owner | role:admin"),
    ("read", "owner | role:admin"),
    ("create", "authenticated"),
    ("update", "owner | role:admin"),
    ("delete", "role:admin"),
];

fn with(changes: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    SOUND.iter().map(|(a, r)| changes.iter().find(|(c, _)| c == a).copied().unwrap_or((*a, *r))).collect()
}

/// Each policy lint: a warning with its fix in dev (exit 0), an error in production (exit 2),
/// except `list` broader than `read`, which is advice in both.
#[test]
fn check_lints_the_access_policy_with_a_fix_for_each() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // (what, resource text, key, a word of the message, a word of the fix, refused in production)
    let cases: Vec<(&str, String, &str, &str, &str, bool)> = vec![
        (
            "authenticated on update of an owned resource",
            resource(true, &with(&[("update", "owner | authenticated")]), ""),
            "resources.notes.access.update",
            "owner scoping",
            "owner | role:admin",
            true,
        ),
        (
            "public on delete of an owned resource",
            resource(true, &with(&[("delete", "public")]), ""),
            "resources.notes.access.delete",
            "owner scoping",
            "owner | role:admin",
            true,
        ),
        (
            "public create without public_writes",
            resource(true, &with(&[("create", "public")]), ""),
            "resources.notes.access.create",
            "anonymous",
            "public_writes = true",
            true,
        ),
        (
            "list broader than read",
            resource(true, &with(&[("list", "authenticated"), ("read", "owner")]), ""),
            "resources.notes.access.list",
            "broader than read",
            "at most as broad",
            false,
        ),
    ];
    for (what, text, key, message, fix, refused) in &cases {
        // The line for `key` at `level` that says `message`, with its fix.
        let said = |out: &str, level: &str| {
            out.lines().any(|l| {
                l.starts_with(&format!("{level}: `{key}`:"))
                    && l.contains(message)
                    && l.contains("(fix: ")
                    && l.contains(fix)
            })
        };
        let (code, out, err) = check(d, &dev(d, text));
        assert_eq!(code, 0, "dev, {what}: {out}{err}");
        assert!(said(&out, "warning"), "dev, {what}: no warning for {key}: {out}");

        let (code, out, err) = check(d, &production(d, PROXY, text));
        if *refused {
            assert_eq!(code, 2, "production, {what}: {out}{err}");
            assert!(said(&out, "error"), "production, {what}: no error for {key}: {out}");
        } else {
            assert_eq!(code, 0, "production, {what}: {out}{err}");
            assert!(said(&out, "warning"), "production, {what}: {out}");
        }
    }

    // The production server refuses to start on the same policy, naming the key.
    let cfg = write(d, "serve.toml", &production(d, PROXY, &cases[0].1));
    let (code, _, err) = run_cli(&["serve", "--config", &cfg], None, d, &[DATA_KEY]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("resources.notes.access.update"), "{err}");

    // A role that is neither built in nor declared grants nobody: refused in both profiles, with
    // the fix.
    let text = resource(true, &with(&[("read", "owner | role:auditor")]), "");
    for config in [dev(d, &text), production(d, PROXY, &text)] {
        let (code, out, err) = check(d, &config);
        assert_eq!(code, 2, "{out}{err}");
        let l = line(&out, "error", "resources.notes.access.read").unwrap_or_else(|| panic!("{out}"));
        assert!(l.contains("unknown role `auditor`") && l.contains("add \"auditor\" to roles.declared"), "{l}");
    }
    // Declared, it is fine.
    let (code, out, err) = check(d, &production(d, PROXY, &format!("[roles]\ndeclared = [\"auditor\"]\n{text}")));
    assert_eq!(code, 0, "{out}{err}");
}

/// A policy that says what it means has nothing to report: the example's `orders`, the dev
/// profile's default (the same resource), and public writes with their explicit opt-in.
#[test]
fn a_sound_policy_passes_without_a_word() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/rampart.example.toml")).unwrap();
    let orders = &example[example.find("[roles]").unwrap()..];
    let guestbook = resource(
        false,
        &[
            ("list", "public"),
            ("read", "public"),
            ("create", "public"),
            ("update", "role:admin"),
            ("delete", "role:admin"),
        ],
        "public_writes = true\n",
    );
    for text in [orders.to_owned(), resource(true, &SOUND, ""), guestbook] {
        for config in [dev(d, &text), production(d, PROXY, &text)] {
            let (code, out, err) = check(d, &config);
            assert_eq!(code, 0, "{out}{err}");
            assert!(!out.contains("`resources."), "{out}");
        }
    }
    // The dev profile with no config at all: the built-in example, with its orders resource.
    let (code, out, err) = run_cli(&["check"], None, d, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ok: dev profile, 1 resource") && !out.contains("`resources."), "{out}");
}

/// `0.0.0.0/0` or `::/0` among the trusted proxies lets any client write its own address into
/// the forwarding header: a warning in dev, refused in production by `check` and `serve`.
#[tokio::test]
async fn trusting_every_address_is_a_warning_in_dev_and_refused_in_production() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for net in ["0.0.0.0/0", "::/0"] {
        let server = format!("trusted_proxies = [\"10.0.0.1\", \"{net}\"]");
        let (code, out, err) = check(d, &dev(d, "").replacen("[server]\n", &format!("[server]\n{server}\n"), 1));
        assert_eq!(code, 0, "{out}{err}");
        let l = line(&out, "warning", "server.trusted_proxies[1]").unwrap_or_else(|| panic!("{net}: {out}"));
        assert!(l.contains("trusts every address") && l.contains("fix: list only the addresses"), "{l}");

        let config = production(d, &server, "");
        let (code, out, err) = check(d, &config);
        assert_eq!(code, 2, "{out}{err}");
        assert!(line(&out, "error", "server.trusted_proxies[1]").is_some(), "{net}: {out}");
        let cfg = write(d, "serve.toml", &config);
        let (code, _, err) = run_cli(&["serve", "--config", &cfg], None, d, &[DATA_KEY]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("server.trusted_proxies[1]") && err.contains("trusts every address"), "{err}");
    }
    // A dev server starts, and says so in its log.
    let app = TestApp::builder().env("SERVER__TRUSTED_PROXIES", r#"["0.0.0.0/0"]"#).spawn().await;
    let logs = app.logs_when(|l| l.contains("server.trusted_proxies[0]")).await;
    let warned = logs.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).any(|v| {
        v["level"] == "WARN"
            && v["key"] == "server.trusted_proxies[0]"
            && v["message"].as_str().is_some_and(|m| m.contains("trusts every address"))
    });
    assert!(warned, "{logs}");
}

/// `?password=` / `?pass=` (any case) in a database or Redis URL is a password like
/// `user:password@`: an inline secret refused in production, and redacted wherever the URL is
/// printed.
#[test]
fn a_password_in_a_url_query_is_an_inline_secret_and_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let secrets = ["Db-Query-Secret-1", "Redis-Query-Secret-2", "Migrate-Query-Secret-3"];
    let text = production(d, PROXY, "")
        .replace(
            &format!("url = \"sqlite://{}/lint.db\"", d.display()),
            &format!(
                "url = \"postgres://rampart_app@db.internal/app?sslmode=disable&PASSWORD={}\"\nmigrate_url = \"postgres://owner@db.internal/app?Pass={}\"",
                secrets[0], secrets[2]
            ),
        )
        + &format!("[redis]\nurl = \"redis://redis.internal:6379/0?password={}\"\n", secrets[1]);
    let (code, out, err) = check(d, &text);
    assert_eq!(code, 2, "{out}{err}");
    for key in ["database.url", "database.migrate_url", "redis.url"] {
        let l = line(&out, "error", key).unwrap_or_else(|| panic!("{key} not refused: {out}"));
        assert!(l.contains("a secret is written in the config file"), "{l}");
    }
    for s in secrets {
        assert!(!out.contains(s) && !err.contains(s), "{s} printed: {out}{err}");
    }

    // `serve` prints the URLs it uses (the dev banner, a database or Redis it cannot use): with
    // the password replaced.
    let database = format!("sqlite://{}/q.db?password={}", d.display(), secrets[0]);
    let cfg = write(d, "serve-db.toml", &dev(d, "").replace(&format!("sqlite://{}/lint.db", d.display()), &database));
    let (code, out, err) = run_cli(&["serve", "--config", &cfg], None, d, &[]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(!out.contains(secrets[0]) && !err.contains(secrets[0]), "{out}{err}");
    assert!(format!("{out}{err}").contains("password=***"), "the URL is not shown at all: {out}{err}");

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let redis = format!("redis://127.0.0.1:{port}/?pass={}", secrets[1]);
    let cfg = write(d, "serve-redis.toml", &dev(d, &format!("[redis]\nurl = \"{redis}\"\n")));
    let (code, out, err) = run_cli(&["serve", "--config", &cfg], None, d, &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(!out.contains(secrets[1]) && !err.contains(secrets[1]), "{out}{err}");
    assert!(err.contains("redis") && err.contains("pass=***"), "{err}");
}

/// `server.trusted_header` names the one header the proxies write; anything but the two headers
/// Rampart can read stops `check` and `serve` with one line naming the key and the fix (a silent
/// fallback would read a header the client controls).
#[test]
fn an_unknown_trusted_header_is_refused_with_its_fix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let with =
        |header: &str| dev(d, "").replacen("[server]\n", &format!("[server]\ntrusted_header = \"{header}\"\n"), 1);
    for header in ["x-real-ip", "x-forwarded-for, forwarded", ""] {
        let cfg = write(d, "h.toml", &with(header));
        for cmd in ["check", "serve"] {
            let (code, out, err) = run_cli(&[cmd, "--config", &cfg], None, d, &[]);
            assert_eq!(code, 2, "{cmd} {header:?}: {out}{err}");
            assert_eq!(err.trim_end().lines().count(), 1, "{err}");
            assert!(
                err.contains("server.trusted_header")
                    && err.contains("fix:")
                    && err.contains("\"x-forwarded-for\" or \"forwarded\""),
                "{cmd} {header:?}: {err}"
            );
        }
    }
    let cfg = write(d, "ok.toml", &dev(d, ""));
    let (code, _, err) =
        run_cli(&["check", "--config", &cfg], None, d, &[("RAMPART_SERVER__TRUSTED_HEADER", "X-Real-IP")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("RAMPART_SERVER__TRUSTED_HEADER"), "{err}");
    for header in ["forwarded", "X-Forwarded-For", "Forwarded"] {
        let (code, out, err) = check(d, &with(header));
        assert_eq!(code, 0, "{header}: {out}{err}");
    }
}

//! The pages in a real browser: runs `tests/browser/pages.mjs` (the account pages),
//! `tests/browser/admin.mjs` (the admin console) and `tests/browser/passkeys.mjs` (passkeys with
//! Chromium's virtual authenticator), playwright-core driving Debian's headless
//! Chromium, each against a server of its own started by the harness, with a mail sink for the
//! mailed links. Each script's checks are listed in its header; a test passes when its script
//! exits 0 and prints the script's output either way.
//!
//! Needs `/usr/bin/chromium` and `tests/browser/node_modules` (`npm ci`); `scripts/test` installs
//! both. Without them the test fails under CI or when `RAMPART_TEST_BROWSER` is set (as
//! `scripts/test` does), and otherwise skips with a loud message.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::helpers::*;
use crate::mail_sink::MailSink;

const CHROMIUM: &str = "/usr/bin/chromium";

fn repo_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// Whether the browser suite can run here; if not, whether that is a failure.
fn ready() -> bool {
    let modules = repo_root().join("tests/browser/node_modules/playwright-core");
    let node = Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if Path::new(CHROMIUM).exists() && modules.exists() && node {
        return true;
    }
    let required = std::env::var_os("CI").is_some() || std::env::var_os("RAMPART_TEST_BROWSER").is_some();
    let missing = format!(
        "chromium at {CHROMIUM}: {}, node: {node}, tests/browser/node_modules: {} (run scripts/test, or apt-get install chromium and npm ci in tests/browser)",
        Path::new(CHROMIUM).exists(),
        modules.exists()
    );
    assert!(!required, "the browser suite cannot run: {missing}");
    eprintln!("\n!!!!! SKIPPED browser tests: {missing} !!!!!\n");
    false
}

/// A port that was free a moment ago: the server's public URL must name the port the browser
/// uses (its `Origin`), so it cannot be port 0.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_in_chromium() {
    run_in_chromium("pages.mjs", "", |_| Vec::new()).await;
}

/// The admin console (`tests/browser/admin.mjs`): an admin and a plain user made the way an
/// operator makes them, the `orders` resource declared so the records pages have a table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_console_in_chromium() {
    run_in_chromium("admin.mjs", crate::resources::RESOURCES, |app| {
        vec![
            ("RAMPART_ADMIN_EMAIL", app.create_user_with_role("admin")),
            ("RAMPART_USER_EMAIL", app.create_user_with_role("user")),
            ("RAMPART_PASSWORD", STRONG_PASSWORD.to_owned()),
        ]
    })
    .await;
}

/// Passkeys (`tests/browser/passkeys.mjs`): a user made by the operator, who enrols, signs in
/// with the passkey alone, uses it as the second factor, is refused with another authenticator
/// or without user verification, and removes it. The public URL is `http://localhost:<port>`
/// (see `run_in_chromium`): WebAuthn's rp id is its host, the one the browser opens. Each view
/// of the sign-in page starts a conditional-mediation ceremony, which spends the per-IP login
/// budget like any login attempt: the script signs in a dozen times within a minute from one
/// address, so that budget is raised here (only here) to keep the script from being throttled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkeys_in_chromium() {
    let toml = "[rate_limit]\nlogin_per_ip_per_minute = 1000\nlogin_global_per_minute = 1000\n";
    run_in_chromium("passkeys.mjs", toml, |app| {
        vec![
            ("RAMPART_USER_EMAIL", app.create_user_with_role("user")),
            ("RAMPART_PASSWORD", STRONG_PASSWORD.to_owned()),
        ]
    })
    .await;
}

/// Starts a server (with `extra_toml`, a mail sink, and a public URL on the port the browser
/// uses), lets `prepare` make what the script needs and name it in env vars, then runs
/// `node <script>` in tests/browser and fails with its output (and the server's logs) unless it
/// exits 0. The script also gets `RAMPART_BASE_URL`, `RAMPART_MAIL_FILE` (the mails sent so far,
/// rewritten as they arrive) and `RAMPART_SCREENSHOTS`.
async fn run_in_chromium(
    script: &str,
    extra_toml: &str,
    prepare: impl FnOnce(&TestApp) -> Vec<(&'static str, String)>,
) {
    if !ready() {
        return;
    }
    let sink = MailSink::start();
    let port = free_port();
    let base = format!("http://localhost:{port}");
    let app = sink
        .configure(TestApp::builder())
        .toml(extra_toml)
        .env("SERVER__LISTEN", &format!("127.0.0.1:{port}"))
        .env("SERVER__PUBLIC_URL", &base)
        .spawn()
        .await;
    let env = prepare(&app);
    let mail_file = app.dir.path().join("mail.json");
    let shots = repo_root().join("target/browser-screenshots");

    // The mails, rewritten for the script as they arrive (renamed into place: never half-written).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, file) = (stop.clone(), mail_file.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mails: Vec<_> = sink
                    .messages()
                    .into_iter()
                    .map(|m| json!({ "to": m.to, "subject": m.subject, "body": m.body }))
                    .collect();
                let tmp = file.with_extension("tmp");
                std::fs::write(&tmp, serde_json::to_vec(&mails).unwrap()).unwrap();
                std::fs::rename(&tmp, &file).unwrap();
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    let script_name = script.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(&script_name)
            .current_dir(repo_root().join("tests/browser"))
            .env("RAMPART_BASE_URL", &base)
            .env("RAMPART_MAIL_FILE", &mail_file)
            .env("RAMPART_SCREENSHOTS", &shots)
            .envs(env)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = writer.join();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("--- node tests/browser/{script} ---\n{stdout}\n{stderr}");
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}\nserver logs:\n{}", app.logs());
}

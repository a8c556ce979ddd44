//! Several instances on one PostgreSQL and one Redis: what must be shared is shared (login
//! limits, lockouts, revocations, refresh-token single use), a Redis or database outage is
//! survived the documented way, and everything comes back by itself.
//!
//! These need the suite's PostgreSQL and Redis (`RAMPART_TEST_POSTGRES_URL`,
//! `RAMPART_TEST_REDIS_URL`, set by `.ci/run`); without them they pass without running, and the
//! SQLite pass says so on stderr.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

fn scaled_out() -> bool {
    let on = postgres_admin_url().is_some() && redis_url().is_some();
    if !on {
        eprintln!("scale tests need {POSTGRES_ENV} and {REDIS_ENV}; not run in this pass");
    }
    on
}

const PROXY: &str = r#"["127.0.0.1/32"]"#;

/// Two instances on one data directory: the same database and the same Redis prefix.
async fn pair(env: &[(&str, &str)], redis: Option<&str>) -> (TestApp, TestApp) {
    let build = |dir: Option<Arc<tempfile::TempDir>>| {
        let mut b = TestApp::builder().env("SERVER__TRUSTED_PROXIES", PROXY);
        for (k, v) in env {
            b = b.env(k, v);
        }
        if let Some(url) = redis {
            b = b.redis(url);
        }
        match dir {
            Some(d) => b.in_dir(d),
            None => b,
        }
    };
    let a = build(None).spawn().await;
    let b = build(Some(a.dir.clone())).spawn().await;
    (a, b)
}

async fn login_as(app: &TestApp, ip: &str, email: &str, password: &str) -> Resp {
    let rb = app
        .request(Method::POST, "/auth/login")
        .header("x-forwarded-for", ip)
        .json(&json!({ "email": email, "password": password }));
    TestApp::send(rb).await
}

async fn me(app: &TestApp, access: &str) -> u16 {
    TestApp::send(app.request(Method::GET, "/auth/me").bearer_auth(access)).await.status
}

async fn refresh(app: &TestApp, token: &str, ua: &str) -> Resp {
    let rb = app
        .request(Method::POST, "/auth/token")
        .header("user-agent", ua)
        .json(&json!({ "grant_type": "refresh_token", "refresh_token": token }));
    TestApp::send(rb).await
}

/// Attempts from one client alternate between the instances until one is refused; returns how
/// many were answered before that (at most `max`).
async fn attempts_until_429(apps: [&TestApp; 2], ip: &str, max: usize) -> usize {
    for i in 0..max {
        let r = login_as(apps[i % 2], ip, &unique_email(), OTHER_STRONG_PASSWORD).await;
        if r.status == 429 {
            return i;
        }
        assert_eq!(r.status, 401, "{}", r.text());
    }
    max
}

#[tokio::test]
async fn the_login_limit_is_shared_across_instances() {
    if !scaled_out() {
        return;
    }
    let (a, b) = pair(&[("RATE_LIMIT__LOGIN_PER_IP_PER_MINUTE", "4")], None).await;
    // Four attempts spread over both instances spend one budget: the fifth is refused, on either.
    assert_eq!(attempts_until_429([&a, &b], "198.51.100.7", 10).await, 4);
    let r = login_as(&a, "198.51.100.7", &unique_email(), OTHER_STRONG_PASSWORD).await;
    assert_eq!(r.status, 429);
    // Another client is not affected.
    assert_eq!(login_as(&b, "198.51.100.8", &unique_email(), OTHER_STRONG_PASSWORD).await.status, 401);
}

#[tokio::test]
async fn lockouts_are_shared_across_instances() {
    if !scaled_out() {
        return;
    }
    let (a, b) = pair(&[("RATE_LIMIT__LOCKOUT_AFTER_FAILURES", "3")], None).await;
    let email = unique_email();
    assert_eq!(a.register(&email, STRONG_PASSWORD).await.status, 201);
    let unknown = unique_email();
    for (i, target) in [&email, &unknown].into_iter().enumerate() {
        let ip = format!("198.51.100.{}", 20 + i);
        for app in [&a, &b, &a] {
            assert_eq!(login_as(app, &ip, target, OTHER_STRONG_PASSWORD).await.status, 401);
        }
        // Locked on the other instance too, even with the right password; for an unknown email
        // exactly alike (both counts live in the shared database).
        let r = login_as(&b, &ip, target, STRONG_PASSWORD).await;
        r.assert_problem(423);
        assert!(r.header("retry-after").is_some());
    }
}

#[tokio::test]
async fn a_logout_on_one_instance_ends_the_token_on_the_other_at_once() {
    if !scaled_out() {
        return;
    }
    let (a, b) = pair(&[], None).await;
    let email = unique_email();
    assert_eq!(a.register(&email, STRONG_PASSWORD).await.status, 201);
    let (access, refresh_token) = a.password_grant(&email).await;
    assert_eq!(me(&b, &access).await, 200);
    let out = TestApp::send(a.request(Method::POST, "/auth/logout").bearer_auth(&access)).await;
    assert_eq!(out.status, 204);
    assert_eq!(me(&b, &access).await, 401, "the other instance still accepted a logged-out token");
    assert_eq!(refresh(&b, &refresh_token, "ua").await.status, 401);
}

#[tokio::test]
async fn a_refresh_token_used_on_one_instance_cannot_be_reused_on_the_other() {
    if !scaled_out() {
        return;
    }
    let (a, b) = pair(&[], None).await;
    let email = unique_email();
    assert_eq!(a.register(&email, STRONG_PASSWORD).await.status, 201);
    let (_, first) = a.password_grant(&email).await;
    let rotated = refresh(&a, &first, "client-on-a").await;
    assert_eq!(rotated.status, 200, "{}", rotated.text());
    let (new_access, new_refresh) = (
        rotated.json()["access_token"].as_str().unwrap().to_owned(),
        rotated.json()["refresh_token"].as_str().unwrap().to_owned(),
    );
    // Replayed elsewhere: refused, and the whole login is revoked, on both instances.
    refresh(&b, &first, "thief-on-b").await.assert_problem(401);
    assert_eq!(refresh(&a, &new_refresh, "client-on-a").await.status, 401);
    assert_eq!(me(&a, &new_access).await, 401);
    assert_eq!(me(&b, &new_access).await, 401);
}

/// A Redis of the test's own, to stop and start.
struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    fn start_on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { port, child: Some(child) }
    }
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Self::start_on(port)
    }
    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
    /// Freezes the server (SIGSTOP): connections stay open, nothing is answered or executed.
    fn pause(&self) {
        let pid = self.child.as_ref().expect("a running redis-server").id().to_string();
        let status = Command::new("kill").args(["-STOP", &pid]).status().expect("kill");
        assert!(status.success(), "could not pause redis-server");
    }
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn wait_ready(app: &TestApp, want: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = app.get("/readyz").await;
        if r.status == want {
            if want == 503 {
                r.assert_problem(503);
            }
            return;
        }
        assert!(Instant::now() < deadline, "readyz stayed {} ({})", r.status, r.text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The documented behaviour: without Redis each instance limits on its own (never unlimited),
/// revocations still hold (the database decides), readiness says 503; when Redis is back the
/// limits are shared again, without a restart.
#[tokio::test]
async fn redis_down_limits_stay_per_instance_and_come_back_shared() {
    if !scaled_out() {
        return;
    }
    let mut redis = PrivateRedis::start();
    let (a, b) = pair(&[("RATE_LIMIT__LOGIN_PER_IP_PER_MINUTE", "3")], Some(&redis.url())).await;
    let email = unique_email();
    assert_eq!(a.register(&email, STRONG_PASSWORD).await.status, 201);
    let (access, _) = a.password_grant(&email).await;
    wait_ready(&a, 200).await;
    assert_eq!(attempts_until_429([&a, &b], "203.0.113.1", 10).await, 3, "shared while Redis is up");

    redis.stop();
    wait_ready(&a, 503).await;
    wait_ready(&b, 503).await;
    // Each instance now counts alone: at most its own quota each, so never more than 6 in all.
    let answered = attempts_until_429([&a, &b], "203.0.113.2", 20).await;
    assert!((3..=6).contains(&answered), "{answered} attempts before a refusal without Redis");
    for app in [&a, &b] {
        let r = login_as(app, "203.0.113.2", &unique_email(), OTHER_STRONG_PASSWORD).await;
        assert_eq!(r.status, 429, "an instance without Redis stopped limiting");
    }
    // A logout on one instance still ends the token on the other at once.
    assert_eq!(me(&b, &access).await, 200);
    assert_eq!(TestApp::send(a.request(Method::POST, "/auth/logout").bearer_auth(&access)).await.status, 204);
    assert_eq!(me(&b, &access).await, 401, "a revocation was lost while Redis was down");

    let _redis = PrivateRedis::start_on(redis.port);
    wait_ready(&a, 200).await;
    wait_ready(&b, 200).await;
    assert_eq!(attempts_until_429([&a, &b], "203.0.113.3", 10).await, 3, "shared again once Redis is back");
    assert_eq!(me(&b, &access).await, 401);
}

/// Polls `app` with a logged-out token until it is refused, within `within`.
async fn refused_within(app: &TestApp, access: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let status = me(app, access).await;
        if status == 401 {
            return;
        }
        assert_eq!(status, 200);
        assert!(Instant::now() < deadline, "a logged-out token was still accepted after {within:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A revocation whose Redis write is lost for good still reaches the other instance. Redis is
/// frozen during a bearer logout on A, so A's `SET` times out and A keeps the revocation to itself
/// (to write back when Redis answers again); then A dies, and Redis restarts empty, as an
/// unpersisted Redis does after a crash. Nothing in Redis or in any live process's memory says
/// the login ended: only the database does, and B must still refuse the token, within seconds.
#[tokio::test]
async fn a_revocation_lost_in_a_redis_hiccup_still_reaches_every_instance() {
    if !scaled_out() {
        return;
    }
    let mut redis = PrivateRedis::start();
    let (mut a, b) = pair(&[], Some(&redis.url())).await;
    let email = unique_email();
    assert_eq!(a.register(&email, STRONG_PASSWORD).await.status, 201);
    let (access, _) = a.password_grant(&email).await;
    assert_eq!(me(&b, &access).await, 200);

    redis.pause();
    assert_eq!(TestApp::send(a.request(Method::POST, "/auth/logout").bearer_auth(&access)).await.status, 204);
    refused_within(&b, &access, Duration::from_secs(10)).await;

    a.stop();
    redis.stop(); // the frozen server dies with A's SET unread
    let _redis = PrivateRedis::start_on(redis.port);
    wait_ready(&b, 200).await;
    refused_within(&b, &access, Duration::from_secs(5)).await;
    // And it stays refused: B answers from what it read, not from the empty Redis.
    for _ in 0..5 {
        assert_eq!(me(&b, &access).await, 401, "the revocation was lost with Redis and instance A");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Without Redis (the SQLite pass; on the PostgreSQL pass the suite's Redis is used as well),
/// instances share nothing but the database: a logout on one still ends the token on the other
/// within seconds, not at its `exp`.
#[tokio::test]
async fn a_logout_reaches_the_other_instance_through_the_database() {
    let (a, b) = pair(&[], None).await;
    let email = unique_email();
    assert_eq!(a.register(&email, STRONG_PASSWORD).await.status, 201);
    let (access, refresh_token) = a.password_grant(&email).await;
    assert_eq!(me(&b, &access).await, 200);
    assert_eq!(TestApp::send(a.request(Method::POST, "/auth/logout").bearer_auth(&access)).await.status, 204);
    refused_within(&b, &access, Duration::from_secs(5)).await;
    assert_eq!(refresh(&b, &refresh_token, "ua").await.status, 401);
}

/// A TCP relay to the suite's PostgreSQL that the test can cut and restore.
struct Relay {
    port: u16,
    down: Arc<AtomicBool>,
    generation: Arc<std::sync::atomic::AtomicU64>,
}

impl Relay {
    async fn start(target: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let generation = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (d, g) = (Arc::clone(&down), Arc::clone(&generation));
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { return };
                if d.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is closed at once
                }
                let (target, d, g) = (target.clone(), Arc::clone(&d), Arc::clone(&g));
                let born = g.load(Ordering::SeqCst);
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else { return };
                    let copy = tokio::io::copy_bidirectional(&mut client, &mut server);
                    let cut = async {
                        while !d.load(Ordering::SeqCst) && g.load(Ordering::SeqCst) == born {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    };
                    tokio::select! { _ = copy => {}, () = cut => {} }
                });
            }
        });
        Self { port, down, generation }
    }
    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

/// The database goes away under a running server: readiness and requests answer 503 problem+json
/// (never a 500, never the driver's words), and the server recovers by itself when it is back.
/// (Multi-threaded: the relay must keep running while the harness blocks waiting for the server.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_503_and_the_server_recovers() {
    if !scaled_out() {
        return;
    }
    let admin = postgres_admin_url().unwrap();
    let hostport = admin.split_once("://").unwrap().1.rsplit_once('@').map_or("", |(_, h)| h);
    let relay = Relay::start(hostport.split('/').next().unwrap().to_owned()).await;
    let app = TestApp::builder().postgres_port(relay.port).spawn().await;
    let email = unique_email();
    assert_eq!(app.register(&email, STRONG_PASSWORD).await.status, 201);
    wait_ready(&app, 200).await;

    relay.cut();
    wait_ready(&app, 503).await;
    for r in [app.login(&email, STRONG_PASSWORD).await.0, app.get("/readyz").await] {
        let body = r.assert_problem(503);
        let text = r.text().to_lowercase();
        for leak in ["postgres", "sqlx", "connection", "127.0.0.1", "refused", "io error"] {
            assert!(!text.contains(leak), "the 503 body says {leak:?}: {text}");
        }
        assert!(body["request_id"].is_string(), "{body}");
    }
    // The cause is logged once, by the context layer, under the request's id.
    let r = app.login(&email, STRONG_PASSWORD).await.0;
    let id = r.assert_problem(503)["request_id"].as_str().unwrap().to_owned();
    let line = |l: &str| l.contains("\"service unavailable\"") && l.contains(&id);
    app.logs_when(line).await;
    let logs = app.logs_settled().await;
    assert_eq!(logs.lines().filter(|l| line(l)).count(), 1, "{logs}");

    relay.restore();
    wait_ready(&app, 200).await;
    assert_eq!(app.login(&email, STRONG_PASSWORD).await.0.status, 200);
}

/// A production config that is clean but for what a test changes: https behind a proxy, keys
/// generated, a data key from the environment, mail not needed.
fn production_config(dir: &std::path::Path, database: &str, redis: &str) -> String {
    let keys = dir.join("keys");
    let (code, out, err) = run_cli(
        &[
            "keys",
            "generate",
            "--config",
            &write_config(dir, "keys.toml", &format!("[auth]\nkeys_dir = \"{}\"\n", keys.display())),
        ],
        None,
        dir,
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    write_config(
        dir,
        "production.toml",
        &format!(
            "profile = \"production\"\n[server]\npublic_url = \"https://auth.example.com\"\ntrusted_proxies = [\"10.0.0.0/8\"]\n\
             [database]\n{database}\n[redis]\n{redis}\n[auth]\nrequire_email_verification = false\nkeys_dir = \"{}\"\n",
            keys.display()
        ),
    )
}

fn write_config(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

const DATA_KEY: (&str, &str) = ("RAMPART_DATA_KEY", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=");

/// Production refuses a runtime role that owns the schema (it could alter or drop it whatever it
/// is granted), in `check` and in `serve`; the same deployment with a role that owns nothing and
/// the owner as `migrate_url` is accepted.
#[tokio::test]
async fn production_refuses_a_runtime_role_that_owns_the_schema() {
    if !scaled_out() {
        return;
    }
    // A server creates the database and runs migrate's grants; then it stops.
    let mut app = TestApp::spawn().await;
    app.stop();
    let pg = app.pg.clone().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let redis = format!("url = \"{}\"", redis_url().unwrap());

    let owner = production_config(dir.path(), &format!("url = \"{}\"", pg.admin_url), &redis);
    let (code, out, err) = run_cli(&["check", "--config", &owner], None, dir.path(), &[DATA_KEY]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("runtime role owns the schema"), "{out}{err}");
    let (code, _, err) = run_cli(&["serve", "--config", &owner], None, dir.path(), &[DATA_KEY]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("runtime role owns the schema"), "{err}");

    let runtime = production_config(
        dir.path(),
        &format!("url = \"{}\"\nmigrate_url = \"{}\"", pg.runtime_url, pg.admin_url),
        &redis,
    );
    let (code, out, err) = run_cli(&["check", "--config", &runtime], None, dir.path(), &[DATA_KEY]);
    assert_eq!(code, 0, "{out}{err}");
}

/// A Redis that cannot be reached at start-up is an error, not a silent switch to per-instance
/// limits; the message hides the URL's password.
#[tokio::test]
async fn serve_refuses_to_start_without_its_redis() {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cfg = write_config(
        dir.path(),
        "r.toml",
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[database]\nurl = \"sqlite://{d}/r.db\"\n[auth]\nkeys_dir = \"{d}/keys\"\n",
            d = dir.path().display()
        ),
    );
    let url = format!("redis://rampart:hunter2-secret@127.0.0.1:{port}");
    let (code, _, err) = run_cli(&["serve", "--config", &cfg], None, dir.path(), &[("RAMPART_REDIS__URL", &url)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("redis") && !err.contains("hunter2-secret"), "{err}");
}

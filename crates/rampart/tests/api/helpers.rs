//! `TestApp`: spawns the real server binary and talks to it over HTTP.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::{Value, json};

pub const STRONG_PASSWORD: &str = "correct horse battery staple";
pub const OTHER_STRONG_PASSWORD: &str = "violet umbrella galaxy tractor";

pub fn unique_email() -> String {
    format!("user-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// Rate limits for tests that are not about them: high enough never to be reached.
pub const RELAXED_LIMITS: &[(&str, &str)] = &[
    ("RATE_LIMIT__LOGIN_PER_IP_PER_MINUTE", "100000"),
    ("RATE_LIMIT__LOGIN_GLOBAL_PER_MINUTE", "100000"),
    ("RATE_LIMIT__LOCKOUT_AFTER_FAILURES", "100000"),
    ("RATE_LIMIT__API_PER_IP_PER_MINUTE", "1000000"),
    ("RATE_LIMIT__API_PER_USER_PER_MINUTE", "1000000"),
    ("RATE_LIMIT__API_PER_KEY_PER_MINUTE", "1000000"),
];

/// How to start a server.
pub struct Builder {
    env: Vec<(String, String)>,
    extra_toml: String,
    dir: Option<Arc<tempfile::TempDir>>,
    redis: Option<String>,
    postgres_port: Option<u16>,
}

impl Builder {
    /// `RAMPART_{key}` = value, e.g. `env("AUTH__SESSION_IDLE_TIMEOUT", "2s")`.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((format!("RAMPART_{key}"), value.to_owned()));
        self
    }
    /// TOML appended to the generated config (only for sections the base does not have).
    pub fn toml(mut self, extra: &str) -> Self {
        self.extra_toml.push_str(extra);
        self.extra_toml.push('\n');
        self
    }
    /// Reuse the data directory (and so the database) of an earlier server.
    pub fn in_dir(mut self, dir: Arc<tempfile::TempDir>) -> Self {
        self.dir = Some(dir);
        self
    }
    /// Use this Redis instead of the suite's (e.g. a private one the test stops and restarts).
    pub fn redis(mut self, url: &str) -> Self {
        self.redis = Some(url.to_owned());
        self
    }
    /// On PostgreSQL: the server reaches its database through this port on 127.0.0.1 (e.g. a
    /// proxy the test can cut) instead of the server's own; migrations still go direct.
    pub fn postgres_port(mut self, port: u16) -> Self {
        self.postgres_port = Some(port);
        self
    }
    pub async fn spawn(self) -> TestApp {
        TestApp::start(self)
    }
}

/// The PostgreSQL server the suite runs against instead of SQLite, when set: an admin URL such as
/// `postgres://postgres@127.0.0.1:5432/test`. Each server (or each chain of servers sharing a data
/// directory) gets its own database, created from here and dropped after.
pub const POSTGRES_ENV: &str = "RAMPART_TEST_POSTGRES_URL";
/// The role the servers run as on PostgreSQL: it owns nothing, and gets only `migrate`'s grants.
pub const RUNTIME_ROLE: &str = "rampart_test_app";

/// The Redis the servers share their limits and revocations through, when set (e.g.
/// `redis://127.0.0.1:6379`). Each data directory gets its own key prefix, so tests running at
/// once do not share counters.
pub const REDIS_ENV: &str = "RAMPART_TEST_REDIS_URL";

pub fn redis_url() -> Option<String> {
    std::env::var(REDIS_ENV).ok().filter(|u| !u.is_empty())
}

/// A key prefix of the data directory's own.
pub fn redis_prefix(dir: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut h);
    format!("t{:016x}", h.finish())
}

pub fn postgres_admin_url() -> Option<String> {
    std::env::var(POSTGRES_ENV).ok().filter(|u| !u.is_empty())
}

/// One test database on PostgreSQL, dropped when the last server using it is gone.
pub struct PgDatabase {
    pub name: String,
    /// Admin URL of this database (the owner role, which also migrates).
    pub admin_url: String,
    /// URL of this database as the runtime role.
    pub runtime_url: String,
    server_url: String,
}

fn with_url_db(url: &str, db: &str) -> String {
    let base = url.rsplit_once('/').map_or(url, |(b, _)| b);
    format!("{base}/{db}")
}

fn with_url_host(url: &str, hostport: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (user, after) = rest.split_once('@').unwrap();
    let db = after.split_once('/').map_or("", |(_, d)| d);
    format!("{scheme}://{user}@{hostport}/{db}")
}

fn with_url_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{user}@{host}")
}

/// Runs an async block to completion on a runtime of its own (from sync code, or from a `Drop`).
pub fn block_on<F: std::future::Future + Send>(f: F) -> F::Output
where
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f))
            .join()
            .unwrap()
    })
}

impl PgDatabase {
    fn create(server_url: &str) -> Self {
        let name = format!("rampart_t_{}", uuid::Uuid::new_v4().simple());
        let admin_url = with_url_db(server_url, &name);
        let runtime_url = with_url_user(&admin_url, RUNTIME_ROLE);
        block_on(async {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(server_url).await.expect("the PostgreSQL test server answers");
            // Roles are cluster-wide: created once, by whichever test gets here first.
            let _ = sqlx::query(&format!("CREATE ROLE {RUNTIME_ROLE} LOGIN")).execute(&mut c).await;
            sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut c).await.unwrap();
            c.close().await.unwrap();
        });
        Self { name, admin_url, runtime_url, server_url: server_url.to_owned() }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server_url.clone(), self.name.clone());
        block_on(async move {
            use sqlx::Connection;
            if let Ok(mut c) = sqlx::PgConnection::connect(&server).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut c).await;
                let _ = c.close().await;
            }
        });
    }
}

/// The test database of a data directory, shared by the servers that reuse the directory.
fn pg_database_for(dir: &Path, server_url: &str) -> Arc<PgDatabase> {
    static DATABASES: Mutex<Vec<(PathBuf, std::sync::Weak<PgDatabase>)>> = Mutex::new(Vec::new());
    let mut all = DATABASES.lock().unwrap();
    all.retain(|(_, w)| w.strong_count() > 0);
    if let Some(db) = all.iter().find(|(d, _)| d == dir).and_then(|(_, w)| w.upgrade()) {
        return db;
    }
    let db = Arc::new(PgDatabase::create(server_url));
    all.push((dir.to_owned(), Arc::downgrade(&db)));
    db
}

/// The `[database]` keys of the servers of a data directory (`url`, and `migrate_url` on
/// PostgreSQL), and its PostgreSQL database, which stays while the returned handle lives. For
/// tests that write their own config for the same database as a `TestApp` in that directory.
pub fn database_for(dir: &Path, postgres_port: Option<u16>) -> (String, Option<Arc<PgDatabase>>) {
    let pg = postgres_admin_url().map(|server| pg_database_for(dir, &server));
    let database = match &pg {
        Some(db) => {
            let runtime = match postgres_port {
                Some(port) => with_url_host(&db.runtime_url, &format!("127.0.0.1:{port}")),
                None => db.runtime_url.clone(),
            };
            format!("url = \"{runtime}\"\nmigrate_url = \"{}\"", db.admin_url)
        }
        None => format!("url = \"sqlite://{}/rampart.db\"", dir.display()),
    };
    (database, pg)
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub dir: Arc<tempfile::TempDir>,
    pub config_path: PathBuf,
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    /// The PostgreSQL database, when the suite runs on PostgreSQL.
    pub pg: Option<Arc<PgDatabase>>,
    /// The metrics listener (`server.metrics_listen`), once the server logged it.
    metrics: Arc<Mutex<Option<SocketAddr>>>,
}

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Asserts an RFC 9457 problem with this status.
    pub fn assert_problem(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.text());
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "not problem+json: {}", self.text());
        let body = self.json();
        assert_eq!(body["status"], json!(status), "{body}");
        assert!(body["title"].is_string(), "{body}");
        body
    }
    /// The field names in a validation problem's `errors[]`.
    pub fn error_fields(&self) -> Vec<String> {
        self.json()["errors"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e["field"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }
}

/// A browser-like cookie session.
#[derive(Debug, Clone)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
    pub set_cookie: String,
}

impl Session {
    pub fn cookie_header(&self) -> String {
        format!("__Host-rampart_session={}", self.cookie)
    }
}

impl TestApp {
    pub fn builder() -> Builder {
        Builder { env: Vec::new(), extra_toml: String::new(), dir: None, redis: None, postgres_port: None }
    }

    pub async fn spawn() -> Self {
        Self::builder().spawn().await
    }

    fn start(b: Builder) -> Self {
        let dir = b.dir.unwrap_or_else(|| Arc::new(tempfile::tempdir().unwrap()));
        let d = dir.path().display().to_string();
        let (database, pg) = database_for(dir.path(), b.postgres_port);
        let redis = match b.redis.clone().or_else(redis_url) {
            Some(url) => format!("[redis]\nurl = \"{url}\"\nkey_prefix = \"{}\"", redis_prefix(dir.path())),
            None => String::new(),
        };
        let config = format!(
            r#"profile = "dev"
{redis}
[server]
listen = "127.0.0.1:0"
public_url = "http://localhost"
metrics_listen = "127.0.0.1:0"
[database]
{database}
[auth]
password_hash = {{ algorithm = "argon2id", memory_kib = 1024, iterations = 1, parallelism = 1 }}
keys_dir = "{d}/keys"
[roles]
declared = ["manager"]
{}"#,
            b.extra_toml
        );
        let config_path = dir.path().join(format!("rampart-{}.toml", uuid::Uuid::new_v4().simple()));
        std::fs::write(&config_path, config).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rampart"));
        cmd.arg("serve").arg("--config").arg(&config_path).current_dir(dir.path());
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("RAMPART_")) {
            cmd.env_remove(k);
        }
        // Most tests log in far more often than the production limits allow from one address;
        // the limits and lockout tests set their own (a later `Builder::env` wins, since
        // `Command::env` replaces an earlier value of the same variable).
        cmd.envs(RELAXED_LIMITS.iter().map(|(k, v)| (format!("RAMPART_{k}"), *v)));
        cmd.envs(b.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null()).spawn().unwrap();

        let stdout = Arc::new(Mutex::new(Vec::new()));
        let metrics = Arc::new(Mutex::new(None));
        let metrics_seen = Arc::clone(&metrics);
        let (tx, rx) = mpsc::channel::<SocketAddr>();
        let out = child.stdout.take().unwrap();
        let lines = Arc::clone(&stdout);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["event"] == "listening"
                    && let Some(addr) = v["addr"].as_str().and_then(|a| a.parse().ok())
                {
                    let _ = tx.send(addr);
                }
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["event"] == "metrics_listening"
                {
                    *metrics_seen.lock().unwrap() = v["addr"].as_str().and_then(|a| a.parse::<SocketAddr>().ok());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let err = child.stderr.take().unwrap();
        let errs = Arc::new(Mutex::new(String::new()));
        let errs2 = Arc::clone(&errs);
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                errs2.lock().unwrap().push_str(&line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!("server did not start. stderr: {} stdout: {:?}", errs.lock().unwrap(), stdout.lock().unwrap());
            }
        };
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        TestApp { addr, base: format!("http://{addr}"), client, dir, config_path, child, stdout, pg, metrics }
    }

    /// The Prometheus text from the metrics listener.
    pub async fn metrics(&self) -> String {
        let addr = self.metrics.lock().unwrap().expect("the server logged its metrics listener");
        let r = self.client.get(format!("http://{addr}/metrics")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        r.text().await.unwrap()
    }

    /// Everything the server has logged so far.
    pub fn logs(&self) -> String {
        self.stdout.lock().unwrap().join("\n")
    }

    /// The server's log once a line satisfies `pred` (or after 10 s, to fail on what there is):
    /// lines go through a background writer and land a moment after the response.
    pub async fn logs_when(&self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let logs = self.logs();
            if logs.lines().any(&pred) || std::time::Instant::now() > deadline {
                return logs;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The server's log once it has stopped growing (no new line for 200 ms, at most 5 s): for
    /// checks that something is absent, which an unflushed line would pass vacuously.
    pub async fn logs_settled(&self) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut last = self.logs();
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = self.logs();
            if now.len() == last.len() || std::time::Instant::now() > deadline {
                return now;
            }
            last = now;
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("rampart.db")
    }

    /// A separate connection to the server's database (as its owner on PostgreSQL), for checking
    /// what was stored. Statements use `$N` placeholders, which both backends accept.
    pub async fn db(&self) -> sqlx::AnyPool {
        match &self.pg {
            Some(pg) => any_pool(&pg.admin_url).await,
            None => db_at(&self.db_path()).await,
        }
    }

    pub fn on_postgres(&self) -> bool {
        self.pg.is_some()
    }

    /// The names of the tables in the server's database.
    pub async fn table_names(&self) -> Vec<String> {
        let sql = if self.on_postgres() {
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        } else {
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        };
        let pool = self.db().await;
        let rows: Vec<(String,)> = sqlx::query_as(sql).fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows.into_iter().map(|(n,)| n).collect()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    pub async fn send(rb: reqwest::RequestBuilder) -> Resp {
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.bytes().await.unwrap().to_vec();
        Resp { status, headers, body }
    }

    pub async fn get(&self, path: &str) -> Resp {
        Self::send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Resp {
        Self::send(self.request(reqwest::Method::POST, path).json(body)).await
    }

    /// GET with a cookie session.
    pub async fn get_as(&self, path: &str, s: &Session) -> Resp {
        Self::send(self.request(reqwest::Method::GET, path).header("cookie", s.cookie_header())).await
    }

    /// An unsafe method with a cookie session and its CSRF token, as a browser page would send it.
    pub async fn send_as(&self, method: reqwest::Method, path: &str, s: &Session, body: Option<&Value>) -> Resp {
        let mut rb = self.request(method, path).header("cookie", s.cookie_header()).header("x-csrf-token", &s.csrf);
        if let Some(b) = body {
            rb = rb.json(b);
        }
        Self::send(rb).await
    }

    /// GET with a bearer access token.
    pub async fn get_bearer(&self, path: &str, token: &str) -> Resp {
        Self::send(self.request(reqwest::Method::GET, path).bearer_auth(token)).await
    }

    pub async fn register(&self, email: &str, password: &str) -> Resp {
        self.post_json("/auth/register", &json!({ "email": email, "password": password })).await
    }

    pub async fn login(&self, email: &str, password: &str) -> (Resp, Option<Session>) {
        let r = self.post_json("/auth/login", &json!({ "email": email, "password": password })).await;
        let session = session_from(&r);
        (r, session)
    }

    /// A password grant for an existing user: (access token, refresh token).
    pub async fn password_grant(&self, email: &str) -> (String, String) {
        let r = self
            .post_json("/auth/token", &json!({ "grant_type": "password", "email": email, "password": STRONG_PASSWORD }))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let b = r.json();
        (b["access_token"].as_str().unwrap().to_owned(), b["refresh_token"].as_str().unwrap().to_owned())
    }

    /// A user created the way an operator does (`rampart user create --role ROLE`), signed in.
    pub async fn user_with_role(&self, role: &str) -> TestUser {
        let email = self.create_user_with_role(role);
        self.sign_in(&email).await
    }

    /// Creates a user with `rampart user create --role ROLE` (password `STRONG_PASSWORD`); returns
    /// the email.
    pub fn create_user_with_role(&self, role: &str) -> String {
        let email = unique_email();
        let cfg = self.config_path.display().to_string();
        let (code, out, err) = run_cli(
            &["user", "create", "--config", &cfg, "--email", &email, "--role", role],
            Some(&format!("{STRONG_PASSWORD}\n")),
            self.dir.path(),
            &[],
        );
        assert_eq!(code, 0, "{out}{err}");
        email
    }

    /// A plain user, registered over HTTP, signed in.
    pub async fn registered_user(&self) -> TestUser {
        let email = unique_email();
        let r = self.register(&email, STRONG_PASSWORD).await;
        assert_eq!(r.status, 201, "{}", r.text());
        self.sign_in(&email).await
    }

    /// Signs an existing user (password `STRONG_PASSWORD`) in both ways: a cookie session and a
    /// token login.
    pub async fn sign_in(&self, email: &str) -> TestUser {
        let (r, session) = self.login(email, STRONG_PASSWORD).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let id = r.json()["user"]["id"].as_str().unwrap().to_owned();
        let (token, refresh) = self.password_grant(email).await;
        TestUser { id, email: email.to_owned(), session: session.unwrap(), token, refresh }
    }

    /// Registers a fresh user and logs in.
    pub async fn user(&self) -> (String, Session) {
        let email = unique_email();
        let r = self.register(&email, STRONG_PASSWORD).await;
        assert_eq!(r.status, 201, "{}", r.text());
        let (r, s) = self.login(&email, STRONG_PASSWORD).await;
        assert_eq!(r.status, 200, "{}", r.text());
        (email, s.unwrap())
    }

    pub async fn count(&self, table: &str) -> i64 {
        let pool = self.db().await;
        let n: (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n.0
    }

    /// How many audit events with this action were written.
    pub async fn audit_count(&self, action: &str) -> i64 {
        self.audit_count_with(action, None).await
    }

    /// Audit events with this action and, when given, this outcome (`success`, `failure`, `denied`).
    pub async fn audit_count_with(&self, action: &str, outcome: Option<&str>) -> i64 {
        let pool = self.db().await;
        let n: (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM audit_log WHERE action = $1 AND ($2 IS NULL OR outcome = $2)")
                .bind(action)
                .bind(outcome)
                .fetch_one(&pool)
                .await
                .unwrap();
        pool.close().await;
        n.0
    }

    /// The raw bytes of the database file and its write-ahead log: what a stolen copy would hold.
    /// Everything the database holds, as bytes: the SQLite file and its WAL, or on PostgreSQL the
    /// text of every row of every table. What is not in here is not stored in clear.
    pub async fn db_file_bytes(&self) -> Vec<u8> {
        if !self.on_postgres() {
            let mut bytes = std::fs::read(self.db_path()).unwrap();
            bytes.extend(std::fs::read(self.dir.path().join("rampart.db-wal")).unwrap_or_default());
            return bytes;
        }
        let pool = self.db().await;
        let mut bytes = Vec::new();
        for table in self.table_names().await {
            let rows: Vec<(String,)> =
                sqlx::query_as(&format!("SELECT t::text FROM \"{table}\" t")).fetch_all(&pool).await.unwrap();
            for (r,) in rows {
                bytes.extend(r.into_bytes());
                bytes.push(b'\n');
            }
        }
        pool.close().await;
        bytes
    }

    /// Asks the server to shut down (SIGTERM) and waits until it has exited, at most 20 s.
    pub fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().unwrap().is_none() {
            assert!(std::time::Instant::now() < deadline, "the server did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (the data directory stays for a successor).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Someone the tests act as, signed in both ways: their id, email, a cookie session and a token
/// login (access and refresh token). Made by [`TestApp::registered_user`],
/// [`TestApp::user_with_role`] or [`TestApp::sign_in`].
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub session: Session,
    pub token: String,
    pub refresh: String,
}

pub fn session_from(r: &Resp) -> Option<Session> {
    let set_cookie = r
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("__Host-rampart_session="))?;
    let cookie = set_cookie.split(';').next()?.split_once('=')?.1.to_owned();
    let csrf = r.json()["csrf_token"].as_str()?.to_owned();
    Some(Session { cookie, csrf, set_cookie: set_cookie.to_owned() })
}

/// Whether `needle` occurs anywhere in `haystack`.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// A connection to a SQLite file (with a busy timeout, beside a running server).
pub async fn db_at(path: &Path) -> sqlx::AnyPool {
    any_pool(&format!("sqlite://{}?mode=rw", path.display())).await
}

pub async fn any_pool(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .after_connect(|conn, _| {
            Box::pin(async move {
                // SQLite only: wait for the server's writer instead of failing at once.
                if conn.backend_name() == "SQLite" {
                    sqlx::query("PRAGMA busy_timeout = 5000").execute(&mut *conn).await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await
        .unwrap()
}

/// Runs the binary with arguments and stdin; returns (exit code, stdout, stderr).
pub fn run_cli(args: &[&str], stdin: Option<&str>, dir: &Path, env: &[(&str, &str)]) -> (i32, String, String) {
    use std::io::Write;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rampart"));
    cmd.args(args).current_dir(dir).stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::piped());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("RAMPART_")) {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        // A command refused before it reads its input (a usage error) may already have exited:
        // its closed pipe is then no failure of the harness.
        if let Err(e) = child.stdin.take().unwrap().write_all(input.as_bytes()) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "writing the command's stdin: {e}");
        }
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

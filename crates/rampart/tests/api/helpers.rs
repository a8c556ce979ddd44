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
];

/// How to start a server.
pub struct Builder {
    env: Vec<(String, String)>,
    extra_toml: String,
    dir: Option<Arc<tempfile::TempDir>>,
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
    pub async fn spawn(self) -> TestApp {
        TestApp::start(self)
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub dir: Arc<tempfile::TempDir>,
    pub config_path: PathBuf,
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
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
        Builder { env: Vec::new(), extra_toml: String::new(), dir: None }
    }

    pub async fn spawn() -> Self {
        Self::builder().spawn().await
    }

    fn start(b: Builder) -> Self {
        let dir = b.dir.unwrap_or_else(|| Arc::new(tempfile::tempdir().unwrap()));
        let d = dir.path().display().to_string();
        let config = format!(
            r#"profile = "dev"
[server]
listen = "127.0.0.1:0"
public_url = "http://localhost"
[database]
url = "sqlite://{d}/rampart.db"
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
        let (tx, rx) = mpsc::channel::<SocketAddr>();
        let out = child.stdout.take().unwrap();
        let lines = Arc::clone(&stdout);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["message"] == "listening"
                    && let Some(addr) = v["addr"].as_str().and_then(|a| a.parse().ok())
                {
                    let _ = tx.send(addr);
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
        TestApp { addr, base: format!("http://{addr}"), client, dir, config_path, child, stdout }
    }

    /// Everything the server has logged so far.
    pub fn logs(&self) -> String {
        self.stdout.lock().unwrap().join("\n")
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("rampart.db")
    }

    /// A separate connection to the server's database file, for checking what was stored.
    pub async fn db(&self) -> sqlx::SqlitePool {
        db_at(&self.db_path()).await
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
    pub fn db_file_bytes(&self) -> Vec<u8> {
        let mut bytes = std::fs::read(self.db_path()).unwrap();
        bytes.extend(std::fs::read(self.dir.path().join("rampart.db-wal")).unwrap_or_default());
        bytes
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

pub async fn db_at(path: &Path) -> sqlx::SqlitePool {
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(path).busy_timeout(Duration::from_secs(5));
    sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect_with(opts).await.unwrap()
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
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
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

//! TLS served by Rampart (`server.tls_cert_file` / `server.tls_key_file`) and the plain-HTTP
//! redirect listener: a CA and certificates made here with rcgen, clients that trust only that
//! CA, a certificate swapped while the server runs, old protocols and plain HTTP refused, and
//! testssl.sh rating the whole.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CrlDistributionPoint, DnType, IsCa, KeyPair, SerialNumber};

use crate::helpers::*;

/// A certificate authority made for one test.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A leaf certificate and its key, PEM, and the certificate's DER (what a client sees).
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

fn validity(params: &mut CertificateParams) {
    // Short-lived like a real one (testssl rates a validity past 398 days, or an expired one).
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(90);
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        validity(&mut params);
        let cert = params.self_signed(&key).unwrap();
        Self { cert, key }
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A server certificate for localhost and 127.0.0.1 with this serial.
    pub fn leaf(&self, serial: u64) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, format!("rampart test {serial}"));
        params.serial_number = Some(SerialNumber::from(serial));
        // Where revocation would be published, as on any real certificate (testssl rates a
        // certificate without one as HIGH: a property of the certificate, not of the server).
        params.crl_distribution_points =
            vec![CrlDistributionPoint { uris: vec!["http://crl.example.test/rampart-test.crl".to_owned()] }];
        validity(&mut params);
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Leaf { cert_pem: cert.pem(), key_pem: key.serialize_pem(), der: cert.der().to_vec() }
    }

    /// Writes the CA certificate into `dir` and returns its path.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, self.pem()).unwrap();
        p
    }
}

impl Leaf {
    /// Writes the certificate and key into `dir` (each replaced by a rename, as a renewal tool
    /// does), returning their paths.
    pub fn write(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join(format!("{stem}.crt")), dir.join(format!("{stem}.key")));
        for (path, text) in [(&key, &self.key_pem), (&cert, &self.cert_pem)] {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, path).unwrap();
        }
        (cert, key)
    }
}

/// A server serving TLS with `leaf`, in a fresh data directory.
async fn tls_app(ca: &TestCa, leaf: &Leaf, env: &[(&str, &str)]) -> (TestApp, PathBuf) {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let (cert, key) = leaf.write(dir.path(), "server");
    ca.write(dir.path(), "ca.pem");
    let mut b = TestApp::builder()
        .in_dir(dir.clone())
        .env("SERVER__TLS_CERT_FILE", &cert.display().to_string())
        .env("SERVER__TLS_KEY_FILE", &key.display().to_string());
    for (k, v) in env {
        b = b.env(k, v);
    }
    (b.spawn().await, dir.path().join("ca.pem"))
}

/// A client that trusts only `ca` (no public roots), reaching `localhost` at `addr`.
fn client_for(ca: &TestCa, addr: SocketAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .resolve("localhost", addr)
        .tls_info(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn https(addr: SocketAddr, path: &str) -> String {
    format!("https://localhost:{}{path}", addr.port())
}

/// The DER of the certificate the server presented for this response.
fn peer_cert(r: &reqwest::Response) -> Vec<u8> {
    r.extensions().get::<reqwest::tls::TlsInfo>().and_then(|i| i.peer_certificate()).unwrap().to_vec()
}

#[tokio::test]
async fn requests_over_tls_verify_against_the_ca_and_carry_hsts() {
    let ca = TestCa::new("rampart test CA");
    let leaf = ca.leaf(1);
    let (app, _) = tls_app(&ca, &leaf, &[]).await;
    let client = client_for(&ca, app.addr);

    let r = client.get(https(app.addr, "/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(peer_cert(&r), leaf.der);
    // The harness's public_url is http://: the HSTS header comes from serving TLS itself.
    assert_eq!(
        r.headers().get("strict-transport-security").and_then(|v| v.to_str().ok()),
        Some("max-age=63072000; includeSubDomains")
    );
    // A whole flow over TLS, errors included.
    let email = unique_email();
    let reg = client
        .post(https(app.addr, "/auth/register"))
        .json(&serde_json::json!({ "email": email, "password": STRONG_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(reg.status(), 201);
    assert!(reg.headers().contains_key("strict-transport-security"));
    let missing = client.get(https(app.addr, "/no/such/path")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.headers().contains_key("strict-transport-security"));

    // A client that trusts another CA refuses the server: the chain is what is verified.
    let stranger = TestCa::new("some other CA");
    assert!(client_for(&stranger, app.addr).get(https(app.addr, "/healthz")).send().await.is_err());
}

/// Plain HTTP sent to the TLS port gets no HTTP answer (no page, no 5xx): the handshake fails at
/// its first bytes and the connection is closed, promptly.
#[tokio::test]
async fn plain_http_on_the_tls_port_is_closed_without_an_answer() {
    let ca = TestCa::new("rampart test CA");
    let (app, _) = tls_app(&ca, &ca.leaf(1), &[]).await;
    let mut s = TcpStream::connect(app.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    // EOF or a reset, either way the end of the connection; a timeout would be an error here.
    match s.read_to_end(&mut got) {
        Ok(_) => {}
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    assert!(started.elapsed() < Duration::from_secs(8), "the connection stayed open");
    assert!(!got.starts_with(b"HTTP/"), "an HTTP answer on the TLS port: {}", String::from_utf8_lossy(&got));
    // reqwest sees an error, never a status.
    assert!(app.client.get(format!("http://{}/healthz", app.addr)).send().await.is_err());
    // And the server goes on serving TLS.
    assert_eq!(client_for(&ca, app.addr).get(https(app.addr, "/healthz")).send().await.unwrap().status(), 200);
}

/// Clients that open a connection and never finish (or start) the handshake do not hold up
/// anyone else: each handshake runs in its connection's own task, under its own timeout.
#[tokio::test]
async fn stalled_handshakes_do_not_hold_up_other_clients() {
    let ca = TestCa::new("rampart test CA");
    let (app, _) = tls_app(&ca, &ca.leaf(1), &[]).await;
    let mut stalled = Vec::new();
    for i in 0..20 {
        let mut s = TcpStream::connect(app.addr).unwrap();
        // Half of them send the first bytes of a TLS record and then nothing more.
        if i % 2 == 0 {
            s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).unwrap();
        }
        stalled.push(s);
    }
    let started = Instant::now();
    let r = client_for(&ca, app.addr).get(https(app.addr, "/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // A handshake done in the accept loop would wait out the stalled ones (10 s each).
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    drop(stalled);
}

/// `openssl s_client` at the given protocol flag: whether the handshake completed.
fn openssl_handshake(addr: SocketAddr, ca: &Path, protocol: &str) -> (bool, String) {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &addr.to_string(), "-servername", "localhost", protocol])
        // The client's own floor is lowered so that the refusal is the server's, not openssl's.
        .args(["-cipher", "DEFAULT:@SECLEVEL=0", "-CAfile", &ca.display().to_string(), "-verify_return_error"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl (Debian's openssl package)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success() && !text.contains("Cipher is (NONE)"), text)
}

#[tokio::test]
async fn tls_1_1_and_1_0_are_refused_1_2_and_1_3_accepted() {
    let ca = TestCa::new("rampart test CA");
    let (app, ca_path) = tls_app(&ca, &ca.leaf(1), &[]).await;
    for old in ["-tls1_1", "-tls1"] {
        let (ok, text) = openssl_handshake(app.addr, &ca_path, old);
        assert!(!ok, "{old} accepted: {text}");
    }
    for current in ["-tls1_2", "-tls1_3"] {
        let (ok, text) = openssl_handshake(app.addr, &ca_path, current);
        assert!(ok, "{current} refused: {text}");
        assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
    }
}

/// A renewed certificate is served to new connections without a restart; a connection opened
/// before keeps working; a broken file keeps the last good certificate (and says so in the log).
#[tokio::test]
async fn a_swapped_certificate_is_picked_up_live_and_a_broken_one_is_not() {
    let ca = TestCa::new("rampart test CA");
    let (old, new) = (ca.leaf(1), ca.leaf(2));
    let (app, _) = tls_app(&ca, &old, &[]).await;
    let kept_alive = client_for(&ca, app.addr);
    let r = kept_alive.get(https(app.addr, "/healthz")).send().await.unwrap();
    assert_eq!(peer_cert(&r), old.der);

    new.write(app.dir.path(), "server");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // A fresh client: a new connection, so a new handshake.
        let r = client_for(&ca, app.addr).get(https(app.addr, "/healthz")).send().await.unwrap();
        if peer_cert(&r) == new.der {
            break;
        }
        assert_eq!(peer_cert(&r), old.der);
        assert!(Instant::now() < deadline, "the renewed certificate was not picked up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The connection opened before the swap was not dropped: it still answers, on its handshake.
    let r = kept_alive.get(https(app.addr, "/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(peer_cert(&r), old.der, "the kept-alive connection was replaced");

    // A broken renewal: garbage for the certificate, then a key that is not the certificate's.
    std::fs::write(app.dir.path().join("server.crt"), "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    wait_for_log(&app, "TLS certificate reload failed").await;
    let mismatched = ca.leaf(3);
    std::fs::write(app.dir.path().join("server.crt"), &new.cert_pem).unwrap();
    std::fs::write(app.dir.path().join("server.key"), &mismatched.key_pem).unwrap();
    wait_for_log(&app, "does not belong to the certificate").await;
    let r = client_for(&ca, app.addr).get(https(app.addr, "/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(peer_cert(&r), new.der, "a broken renewal replaced the working certificate");
    assert!(!app.logs().contains("PRIVATE KEY"), "key material in the log");
}

async fn wait_for_log(app: &TestApp, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !app.logs().contains(text) {
        assert!(Instant::now() < deadline, "no log line with {text:?}: {}", app.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The address a server logged for `event`.
fn logged_addr(app: &TestApp, event: &str) -> SocketAddr {
    app.logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == event)
        .and_then(|v| v["addr"].as_str().and_then(|a| a.parse().ok()))
        .unwrap_or_else(|| panic!("no {event} in the log: {}", app.logs()))
}

/// `server.http_redirect_listen` answers every request with a 308 to the same path on the
/// configured https origin, whatever Host the client sent, and serves nothing else.
#[tokio::test]
async fn the_redirect_listener_only_redirects_to_the_public_https_url() {
    let ca = TestCa::new("rampart test CA");
    let (app, _) = tls_app(
        &ca,
        &ca.leaf(1),
        &[("SERVER__PUBLIC_URL", "https://auth.example.test"), ("SERVER__HTTP_REDIRECT_LISTEN", "127.0.0.1:0")],
    )
    .await;
    let plain = logged_addr(&app, "redirect_listening");
    assert_ne!(plain, app.addr);
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for (method, path) in [
        (reqwest::Method::GET, "/auth/me?x=1"),
        (reqwest::Method::POST, "/auth/login"),
        (reqwest::Method::GET, "/healthz"),
        (reqwest::Method::GET, "//evil.example/x"),
    ] {
        let r = client
            .request(method.clone(), format!("http://{plain}{path}"))
            .header("host", "evil.example")
            .header("x-forwarded-host", "evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 308, "{method} {path}");
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(location, format!("https://auth.example.test{path}"), "{method} {path}");
        assert!(r.headers().get("set-cookie").is_none());
        assert!(r.text().await.unwrap().is_empty(), "the redirect listener served a body");
    }
    // An absolute-form request target names another host: the answer still points at ours.
    let mut s = TcpStream::connect(plain).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET http://evil.example/steal HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n").unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).unwrap();
    assert!(got.starts_with("HTTP/1.1 308"), "{got}");
    assert!(got.to_ascii_lowercase().contains("location: https://auth.example.test/steal\r\n"), "{got}");
}

/// Production: TLS served directly satisfies "no plain HTTP" without a proxy; without either,
/// `check` refuses and names both ways out; a certificate whose key does not match, or a file
/// that cannot be read, stops `serve` with one clear line.
#[tokio::test]
async fn production_starts_with_tls_and_no_proxy_and_refuses_bad_certificates() {
    let ca = TestCa::new("rampart test CA");
    let leaf = ca.leaf(1);
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let d = dir.path();
    let (cert, key) = leaf.write(d, "server");
    let keys = d.join("keys");
    let keys_cfg = d.join("keys.toml");
    std::fs::write(&keys_cfg, format!("[auth]\nkeys_dir = \"{}\"\n", keys.display())).unwrap();
    let (code, out, err) = run_cli(&["keys", "generate", "--config", &keys_cfg.display().to_string()], None, d, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let data_key = ("RAMPART_DATA_KEY", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=");
    let config = |tls: &str| {
        format!(
            "profile = \"production\"\n[server]\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0\"\npublic_url = \"https://localhost\"\n{tls}\n[database]\nurl = \"sqlite://{d}/prod.db\"\nmigrate_on_start = true\n[auth]\nrequire_email_verification = false\nkeys_dir = \"{k}\"\n",
            d = d.display(),
            k = keys.display()
        )
    };
    let files = |c: &Path, k: &Path| format!("tls_cert_file = \"{}\"\ntls_key_file = \"{}\"", c.display(), k.display());
    let write = |name: &str, text: &str| {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };

    // Neither TLS nor a proxy: refused, and the fix names both.
    let plain = write("plain.toml", &config(""));
    let (code, out, _) = run_cli(&["check", "--config", &plain], None, d, &[data_key]);
    assert_eq!(code, 2, "{out}");
    let line =
        out.lines().find(|l| l.starts_with("error: `server.trusted_proxies`:")).unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("tls_cert_file") && line.contains("trusted_proxies"), "{line}");
    // TLS served directly: accepted without a proxy.
    let good = write("tls.toml", &config(&files(&cert, &key)));
    let (code, out, err) = run_cli(&["check", "--config", &good], None, d, &[data_key]);
    assert_eq!(code, 0, "{out}{err}");

    // The key of another certificate, and a missing file: `serve` refuses, exit 2, one line.
    let other = ca.leaf(2);
    let (_, other_key) = other.write(d, "other");
    let mismatched = write("mismatch.toml", &config(&files(&cert, &other_key)));
    let (code, out, _) = run_cli(&["check", "--config", &mismatched], None, d, &[data_key]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("error: `server.tls_key_file`:") && l.contains("does not belong")),
        "{out}"
    );
    let (code, _, err) = run_cli(&["serve", "--config", &mismatched], None, d, &[data_key]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("server.tls_key_file") && err.contains("does not belong to the certificate"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let missing = write("missing.toml", &config(&files(&d.join("nope.crt"), &key)));
    let (code, _, err) = run_cli(&["serve", "--config", &missing], None, d, &[data_key]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("server.tls_cert_file") && err.contains("nope.crt"), "{err}");
    assert!(!err.contains("PRIVATE KEY"), "{err}");

    // The production server starts and serves over TLS.
    let app = TestApp::builder()
        .in_dir(dir.clone())
        .env("PROFILE", "production")
        .env("SERVER__PUBLIC_URL", "https://localhost")
        .env("SERVER__TLS_CERT_FILE", &cert.display().to_string())
        .env("SERVER__TLS_KEY_FILE", &key.display().to_string())
        .env("AUTH__KEYS_DIR", &keys.display().to_string())
        .env("AUTH__REQUIRE_EMAIL_VERIFICATION", "false")
        .env("AUTH__PASSWORD_HASH", "{ algorithm = \"argon2id\", memory_kib = 19456, iterations = 2, parallelism = 1 }")
        .env("DATABASE__MIGRATE_ON_START", "true")
        .env("DATA_KEY", data_key.1)
        .spawn()
        .await;
    let r = client_for(&ca, app.addr).get(https(app.addr, "/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("strict-transport-security"));
}

/// testssl.sh against the TLS listener: no finding rated MEDIUM, HIGH or CRITICAL.
///
/// Options: `-p` (protocols), `-s` (cipher categories), `-S` (server defaults: certificate,
/// chain of trust against `--add-ca`, validity), `-h` (HTTP headers: HSTS), `-U` (the known
/// vulnerabilities: Heartbleed, ROBOT, BEAST, LUCKY13, SWEET32, ...). They are the checks that
/// rate a configuration; the per-cipher enumeration (`-e`, `-E`) and client simulation (`-c`)
/// would triple the run time for nothing the categories do not already rate. `--fast` is not
/// used: it skips some of the `-U` checks.
#[tokio::test]
async fn testssl_finds_nothing_rated_medium_or_worse() {
    if Command::new("testssl").arg("--version").output().is_err() {
        // scripts/test installs it (Debian's testssl.sh); a CI run without it fails here.
        assert!(std::env::var("CI").is_err(), "testssl is not installed (apt-get install testssl.sh)");
        eprintln!("testssl not found: the TLS configuration was not rated");
        return;
    }
    if postgres_admin_url().is_some() {
        // The TLS listener does not depend on the database: scripts/test's first (SQLite) pass
        // rated it already, and a second run would add two minutes for nothing.
        eprintln!("testssl runs in the SQLite pass only");
        return;
    }
    let ca = TestCa::new("rampart test CA");
    let (app, ca_path) = tls_app(&ca, &ca.leaf(1), &[]).await;
    let json = app.dir.path().join("testssl.json");
    let target = format!("localhost:{}", app.addr.port());
    let out = tokio::task::spawn_blocking({
        let (json, ca_path) = (json.clone(), ca_path.clone());
        move || {
            Command::new("testssl")
                .args(["-p", "-s", "-S", "-h", "-U", "--quiet", "--warnings", "off", "--color", "0"])
                .args(["--ip", "127.0.0.1", "--add-ca", &ca_path.display().to_string()])
                .arg("--jsonfile")
                .arg(&json)
                .arg(&target)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let report = std::fs::read_to_string(&json).unwrap_or_else(|_| {
        panic!(
            "testssl wrote no JSON: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let findings: Vec<serde_json::Value> = serde_json::from_str(&report).unwrap();
    let id = |f: &serde_json::Value| f["id"].as_str().unwrap_or_default().to_owned();
    // It really ran against the server: it saw TLS 1.3 offered.
    assert!(
        findings.iter().any(|f| id(f) == "TLS1_3" && f["finding"].as_str().is_some_and(|s| s.starts_with("offered"))),
        "{report}"
    );
    let bad: Vec<_> = findings
        .iter()
        .filter(|f| matches!(f["severity"].as_str(), Some("MEDIUM" | "HIGH" | "CRITICAL" | "FATAL")))
        .collect();
    assert!(bad.is_empty(), "testssl findings: {bad:#?}");
}

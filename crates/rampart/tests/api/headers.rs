//! The security headers of docs/api.md on every kind of response (200, 4xx, a real 500), the
//! 5xx body, Cache-Control on /auth and /admin, HSTS, X-Request-Id, and the slowloris defence.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::header::HeaderValue;
use serde_json::json;

use crate::helpers::*;

const CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";
const HSTS: &str = "max-age=63072000; includeSubDomains";

/// Every header of the "Security headers (every response)" section, for a server whose public URL
/// is plain http (so no HSTS).
fn assert_security_headers(r: &Resp, what: &str) {
    let one = |name: &str| -> String {
        let all: Vec<&HeaderValue> = r.headers.get_all(name).iter().collect();
        assert_eq!(all.len(), 1, "{what} ({}): {name} should be sent once, got {all:?}", r.status);
        all[0].to_str().unwrap().to_owned()
    };
    assert_eq!(one("content-security-policy"), CSP, "{what}");
    assert_eq!(one("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(one("x-frame-options"), "DENY", "{what}");
    assert_eq!(one("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(one("cross-origin-opener-policy"), "same-origin", "{what}");
    assert_eq!(one("cross-origin-resource-policy"), "same-origin", "{what}");
    let pp = one("permissions-policy");
    let directives: Vec<String> = pp.split(',').map(|d| d.split_whitespace().collect::<String>()).collect();
    for feature in ["camera", "microphone", "geolocation"] {
        assert!(
            directives.iter().any(|d| *d == format!("{feature}=()")),
            "{what}: Permissions-Policy does not deny {feature}: {pp:?}"
        );
    }
    for name in ["server", "x-powered-by"] {
        assert!(r.header(name).is_none(), "{what}: {name}: {:?} names the stack", r.header(name));
    }
    let id = one("x-request-id");
    assert!(!id.is_empty(), "{what}: empty X-Request-Id");
}

fn assert_no_hsts(r: &Resp, what: &str) {
    assert!(
        r.header("strict-transport-security").is_none(),
        "{what}: HSTS over a plain-http public URL: {:?}",
        r.header("strict-transport-security")
    );
}

fn assert_no_store(r: &Resp, what: &str) {
    let values: Vec<&str> = r.headers.get_all("cache-control").iter().filter_map(|v| v.to_str().ok()).collect();
    assert!(
        values.iter().flat_map(|v| v.split(',')).any(|d| d.trim().eq_ignore_ascii_case("no-store")),
        "{what} ({}): Cache-Control should be no-store, got {values:?}",
        r.status
    );
}

/// A client that never reuses a connection, for requests after which the server may close it.
fn one_shot_client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap()
}

/// A login body just over the default 64 KiB limit (valid JSON otherwise).
fn oversized_login() -> serde_json::Value {
    json!({ "email": unique_email(), "password": "x".repeat(100 * 1024) })
}

#[tokio::test]
async fn security_headers_on_success_and_client_errors() {
    let app = TestApp::spawn().await;

    let ok = app.get("/healthz").await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json(), json!({ "status": "ok" }));
    assert_security_headers(&ok, "GET /healthz");
    assert_no_hsts(&ok, "GET /healthz");

    let nope = app.get("/nope").await;
    nope.assert_problem(404);
    assert_security_headers(&nope, "GET /nope");
    assert_no_hsts(&nope, "GET /nope");

    // 405 on a route that exists for another method; Allow says which (RFC 9110 section 15.5.6).
    for (method, path) in [(Method::GET, "/auth/login"), (Method::DELETE, "/healthz"), (Method::PUT, "/auth/me")] {
        let r = TestApp::send(app.request(method.clone(), path)).await;
        r.assert_problem(405);
        assert_security_headers(&r, &format!("{method} {path}"));
        let allow = r.header("allow").unwrap_or_else(|| panic!("{method} {path}: 405 without Allow")).to_owned();
        assert!(!allow.contains(method.as_str()), "{method} {path}: Allow {allow:?}");
    }

    let big = TestApp::send(one_shot_client().post(app.url("/auth/login")).json(&oversized_login())).await;
    big.assert_problem(413);
    assert_security_headers(&big, "oversized login");
    assert_no_store(&big, "oversized login");

    let unauth = app.get("/auth/me").await;
    unauth.assert_problem(401);
    assert_security_headers(&unauth, "GET /auth/me without a session");

    let bad = app.post_json("/auth/login", &json!({ "email": 1 })).await;
    bad.assert_problem(400);
    assert_security_headers(&bad, "login with a bad body");

    let media = TestApp::send(app.request(Method::POST, "/auth/login").body("{}")).await;
    media.assert_problem(415);
    assert_security_headers(&media, "login without a content type");

    // A successful authenticated exchange carries them too.
    let (_, s) = app.user().await;
    let me = app.get_as("/auth/me", &s).await;
    assert_eq!(me.status, 200);
    assert_security_headers(&me, "GET /auth/me");
}

/// A login refused by the per-IP login budget is answered in front of the router (issue 17),
/// and still as every other response is: the security headers and `no-store` of its route, the
/// caller's request id echoed, an access line and the request counted under the route template.
/// A GET over the budget is refused too, before its 405, as the route's budget says.
#[tokio::test]
async fn a_login_refused_before_routing_is_answered_like_any_other_response() {
    let app = TestApp::builder().env("RATE_LIMIT__LOGIN_PER_IP_PER_MINUTE", "1").spawn().await;
    let body = json!({ "email": unique_email(), "password": OTHER_STRONG_PASSWORD });
    TestApp::send(app.request(Method::POST, "/auth/login").json(&body)).await.assert_problem(401);
    let refused =
        TestApp::send(app.request(Method::POST, "/auth/login").header("x-request-id", "refused-1").json(&body)).await;
    refused.assert_problem(429);
    assert_security_headers(&refused, "refused login");
    assert_no_store(&refused, "refused login");
    assert_no_hsts(&refused, "refused login");
    assert_eq!(refused.header("x-request-id"), Some("refused-1"));
    assert!(refused.header("retry-after").is_some(), "429 without Retry-After");
    let get = TestApp::send(app.request(Method::GET, "/auth/login")).await;
    get.assert_problem(429);
    assert_security_headers(&get, "GET /auth/login over the budget");

    let logs = app.logs_when(|l| l.contains("\"refused-1\"") && l.contains("\"message\":\"request\"")).await;
    let access = logs
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["message"] == "request" && v["request_id"] == "refused-1")
        .unwrap_or_else(|| panic!("no access line for the refusal: {logs}"));
    assert_eq!((access["path"].as_str(), access["status"].as_u64()), (Some("/auth/login"), Some(429)), "{access}");
    assert_eq!(access["method"], "POST");
    let metrics = app.metrics().await;
    let series = "rampart_http_requests_total{method=\"POST\",route=\"/auth/login\",status=\"429\"} 1";
    assert!(metrics.lines().any(|l| l == series), "{metrics}");
}

/// A real fault: the sessions table is gone (renamed away), so a valid login fails inside SQL. The answer is a
/// bare 500 problem that says nothing about why.
#[tokio::test]
async fn a_real_500_carries_the_headers_and_says_nothing_more() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    assert_eq!(app.register(&email, STRONG_PASSWORD).await.status, 201);
    let pool = app.db().await;
    sqlx::query("ALTER TABLE sessions RENAME TO sessions_gone").execute(&pool).await.unwrap();
    pool.close().await;

    for incoming in [None, Some("trace-500-abc")] {
        let mut rb =
            app.request(Method::POST, "/auth/login").json(&json!({ "email": email, "password": STRONG_PASSWORD }));
        if let Some(id) = incoming {
            rb = rb.header("x-request-id", id);
        }
        let r = TestApp::send(rb).await;
        let body = r.assert_problem(500);
        assert_security_headers(&r, "500");
        assert_no_store(&r, "500 on /auth/login");
        assert_no_hsts(&r, "500");
        assert!(r.header("set-cookie").is_none(), "a failed login set a cookie");

        let obj = body.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["request_id", "status", "title"], "{body}");
        let header_id = r.header("x-request-id").unwrap();
        assert_eq!(body["request_id"], json!(header_id));
        if let Some(id) = incoming {
            assert_eq!(header_id, id);
        }
        let text = r.text().to_ascii_lowercase();
        for leak in ["sessions", "sqlite", "sqlx", "no such table", "rampart_", "database", "panick", ".rs", "error:"] {
            assert!(!text.contains(leak), "500 body leaks {leak:?}: {text}");
        }
        let dir = app.dir.path().display().to_string().to_ascii_lowercase();
        assert!(!text.contains(&dir), "500 body leaks the data directory: {text}");
        assert!(!text.contains('/') && !text.contains('\\'), "500 body carries a path: {text}");
    }
    // The cause is logged, under the id the client was given.
    let logs = app.logs_when(|l| l.contains("\"internal error\"") && l.contains("trace-500-abc")).await;
    let line = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == "internal error" && v["request_id"] == "trace-500-abc");
    assert!(line.is_some(), "no internal error line with the request id: {logs}");
    // The fault is confined to what needs the missing table.
    assert_eq!(app.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn auth_and_admin_responses_are_never_cached() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    let reg = app.register(&email, STRONG_PASSWORD).await;
    assert_eq!(reg.status, 201);
    assert_no_store(&reg, "201 register");
    let (login, s) = app.login(&email, STRONG_PASSWORD).await;
    assert_eq!(login.status, 200);
    assert_no_store(&login, "200 login (sets the session, carries the CSRF token)");
    let s = s.unwrap();
    for (status, what, r) in [
        (200, "/auth/me", app.get_as("/auth/me", &s).await),
        (200, "/auth/csrf", app.get_as("/auth/csrf", &s).await),
        (401, "/auth/me without a session", app.get("/auth/me").await),
        (401, "/auth/csrf without a session", app.get("/auth/csrf").await),
        (401, "login with a wrong password", app.login(&email, OTHER_STRONG_PASSWORD).await.0),
        (400, "login with a bad body", app.post_json("/auth/login", &json!({ "email": [] })).await),
        (409, "register taken email", app.register(&email, STRONG_PASSWORD).await),
        (405, "GET /auth/login", app.get("/auth/login").await),
        (404, "/auth/nope", app.get("/auth/nope").await),
        // 404 while there are no admin routes, 401 once there are: no-store either way.
        (0, "/admin/users", app.get("/admin/users").await),
        (0, "/admin/nope", app.get("/admin/nope").await),
        (415, "login without a content type", TestApp::send(app.request(Method::POST, "/auth/login").body("{}")).await),
        (
            403,
            "logout without a CSRF token",
            TestApp::send(app.request(Method::POST, "/auth/logout").header("cookie", s.cookie_header())).await,
        ),
    ] {
        if status == 0 {
            assert!(r.status == 401 || r.status == 404, "{what}: {}", r.status);
        } else {
            assert_eq!(r.status, status, "{what}: {}", r.text());
        }
        assert_no_store(&r, what);
    }
    let out = app.send_as(Method::POST, "/auth/logout", &s, None).await;
    assert_eq!(out.status, 204);
    assert_no_store(&out, "204 logout");
    // Not required outside /auth and /admin: the health check answers normally.
    assert_eq!(app.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn hsts_follows_the_public_url() {
    let plain = TestApp::spawn().await;
    for path in ["/healthz", "/nope", "/auth/me"] {
        let r = plain.get(path).await;
        assert_no_hsts(&r, &format!("http public_url, {path}"));
    }

    let tls = TestApp::builder().env("SERVER__PUBLIC_URL", "https://auth.example.com").spawn().await;
    for path in ["/healthz", "/nope", "/auth/me"] {
        let r = tls.get(path).await;
        let all: Vec<&HeaderValue> = r.headers.get_all("strict-transport-security").iter().collect();
        assert_eq!(all.len(), 1, "https public_url, {path}: {all:?}");
        assert_eq!(all[0], HSTS, "https public_url, {path}");
    }
    let big = TestApp::send(one_shot_client().post(tls.url("/auth/login")).json(&oversized_login())).await;
    big.assert_problem(413);
    assert_eq!(big.header("strict-transport-security"), Some(HSTS), "413 over https public_url");
}

#[tokio::test]
async fn request_id_is_echoed_only_when_well_formed() {
    let app = TestApp::spawn().await;
    for path in ["/healthz", "/nope", "/auth/me"] {
        let r = TestApp::send(app.request(Method::GET, path).header("x-request-id", "abc-123")).await;
        assert_eq!(r.header("x-request-id"), Some("abc-123"), "{path}");
    }

    let long = "a".repeat(200);
    let malformed: Vec<HeaderValue> = vec![
        HeaderValue::from_static("abc 123"),
        HeaderValue::from_static("\"quoted\""),
        HeaderValue::from_str(&long).unwrap(),
        HeaderValue::from_static("<script>alert(1)</script>"),
        HeaderValue::from_static("id\" level=\"error"),
        HeaderValue::from_static("a,b"),
        HeaderValue::from_static("{\"inject\":1}"),
        HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        HeaderValue::from_static(""),
    ];
    let mut seen = Vec::new();
    for bad in &malformed {
        let r = TestApp::send(app.request(Method::GET, "/healthz").header("x-request-id", bad.clone())).await;
        assert_eq!(r.status, 200);
        let all: Vec<&HeaderValue> = r.headers.get_all("x-request-id").iter().collect();
        assert_eq!(all.len(), 1, "{bad:?}: {all:?}");
        let id = all[0].to_str().unwrap_or_else(|_| panic!("{bad:?}: non-ASCII id echoed"));
        assert_ne!(id.as_bytes(), bad.as_bytes(), "malformed id echoed");
        assert!(
            !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "{bad:?}: the replacement is not a plain generated id: {id:?}"
        );
        seen.push(id.to_owned());
    }
    // Generated ids are fresh each time.
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "generated ids repeat: {seen:?}");
    let a = app.get("/healthz").await;
    let b = app.get("/healthz").await;
    assert_ne!(a.header("x-request-id"), b.header("x-request-id"));
}

/// Sends raw bytes on a fresh connection (while reading, in case the server answers early) and
/// parses the one response that comes back.
fn raw_roundtrip(addr: SocketAddr, request: Vec<u8>) -> Resp {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&request);
    });
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let _ = sender.join();
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or_else(|| {
        panic!("no response head: {:?}", String::from_utf8_lossy(&raw));
    });
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    for line in lines {
        let (k, v) = line.split_once(':').unwrap();
        headers.append(
            reqwest::header::HeaderName::from_bytes(k.trim().as_bytes()).unwrap(),
            HeaderValue::from_str(v.trim()).unwrap(),
        );
    }
    Resp { status, headers, body: raw[end + 4..].to_vec() }
}

/// "Every response" includes the ones the HTTP parser writes itself, before the application sees a
/// request: a malformed request line or header (400) and an oversized head (431).
#[tokio::test]
#[ignore = "known gap: hyper answers unparsable request heads (400/431) itself, before any middleware runs; tracked in the issue note"]
async fn protocol_errors_from_the_http_parser_carry_the_headers() {
    let app = TestApp::spawn().await;
    let addr = app.addr;
    let cases: Vec<(u16, &str, Vec<u8>)> = vec![
        (400, "malformed request line", b"GARBAGE\r\n\r\n".to_vec()),
        (400, "malformed header line", b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n".to_vec()),
        (431, "1 MB request head", {
            let mut r = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
            r.extend(std::iter::repeat_n(b'a', 1024 * 1024));
            r.extend_from_slice(b"\r\n\r\n");
            r
        }),
    ];
    for (status, what, request) in cases {
        let r = tokio::task::spawn_blocking(move || raw_roundtrip(addr, request)).await.unwrap();
        assert_eq!(r.status, status, "{what}: {}", r.text());
        assert_security_headers(&r, what);
    }
    assert_eq!(app.get("/healthz").await.status, 200);
}

/// Whatever the server sent before closing a connection whose head never completed: nothing, or
/// a 408, never an answer to the unfinished request.
fn assert_nothing_or_408(got: &[u8], what: &str) {
    let text = String::from_utf8_lossy(got);
    assert!(got.is_empty() || text.starts_with("HTTP/1.1 408"), "{what}: the server answered {text:?}");
}

/// A complete request on a fresh raw connection: the server is still serving others.
fn control_request(addr: SocketAddr) -> String {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn slowloris_unfinished_head_is_cut_off() {
    let app = TestApp::builder().env("LIMITS__HEADER_READ_TIMEOUT", "1s").spawn().await;
    let addr = app.addr;
    tokio::task::spawn_blocking(move || {
        let mut slow = TcpStream::connect(addr).unwrap();
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
        let started = Instant::now();
        // While it hangs, others are served.
        let ctrl = control_request(addr);
        assert!(ctrl.starts_with("HTTP/1.1 200"), "control request: {ctrl:?}");
        let (got, after) = crate::raw_http::wait_for_close(&mut slow, started, Duration::from_secs(6));
        assert_nothing_or_408(&got, "unfinished head");
        assert!(after >= Duration::from_millis(500), "closed before the timeout ({after:?}): a different cause");
    })
    .await
    .unwrap();
}

/// The classic slowloris keeps the head alive with a header line now and then: the limit is on
/// the whole head, not on the gap between bytes.
#[tokio::test]
async fn slowloris_dribbling_headers_is_cut_off() {
    let app = TestApp::builder().env("LIMITS__HEADER_READ_TIMEOUT", "1s").spawn().await;
    let addr = app.addr;
    tokio::task::spawn_blocking(move || {
        let mut slow = TcpStream::connect(addr).unwrap();
        slow.set_read_timeout(Some(Duration::from_millis(250))).unwrap();
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
        let started = Instant::now();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let mut i = 0;
        loop {
            assert!(
                started.elapsed() < Duration::from_secs(6),
                "a dribbling client kept its connection for {:?}",
                started.elapsed()
            );
            if slow.write_all(format!("X-Pad-{i}: {i}\r\n").as_bytes()).is_err() {
                break;
            }
            i += 1;
            match slow.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
        assert_nothing_or_408(&got, "dribbled head");
        let ctrl = control_request(addr);
        assert!(ctrl.starts_with("HTTP/1.1 200"), "control request: {ctrl:?}");
    })
    .await
    .unwrap();
}

/// A connection that sends nothing at all holds a task as well; it is closed in the same time.
#[tokio::test]
async fn silent_connection_is_closed() {
    let app = TestApp::builder().env("LIMITS__HEADER_READ_TIMEOUT", "1s").spawn().await;
    let addr = app.addr;
    tokio::task::spawn_blocking(move || {
        let mut silent = TcpStream::connect(addr).unwrap();
        let started = Instant::now();
        let (got, _) = crate::raw_http::wait_for_close(&mut silent, started, Duration::from_secs(6));
        assert_nothing_or_408(&got, "silent connection");
        let ctrl = control_request(addr);
        assert!(ctrl.starts_with("HTTP/1.1 200"), "control request: {ctrl:?}");
    })
    .await
    .unwrap();
}

//! Rate limits and lockout, attacked over HTTP. Each test sets its own limits (the harness
//! relaxes them for every other test).

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::json;

use crate::helpers::*;

/// Argon2 heavy enough (64 MiB, 8 passes) that a request which hashes is unmistakably slower
/// than one which does not. With 3 passes, the faster Argon2 kernel (issue 17) hashed in about
/// 100 ms during a loaded CI run on PostgreSQL, where a refused login's few queries took 26 ms:
/// the 4x margin below was lost to load, not to a hash. More passes widen the gap without more
/// memory for the tests that run beside these.
fn heavy_hashing(b: Builder) -> Builder {
    b.env("AUTH__PASSWORD_HASH__MEMORY_KIB", "65536").env("AUTH__PASSWORD_HASH__ITERATIONS", "8")
}

/// A 429 as docs/api.md describes it: problem+json, `Retry-After` in whole seconds (at least 1),
/// and the IETF headers naming the policy that refused, with `t` agreeing with `Retry-After`.
fn assert_rate_limited(r: &Resp, policy: &str, quota: u32) -> u64 {
    let body = r.assert_problem(429);
    assert_eq!(body["type"], json!("https://rampart.dev/problems/rate-limited"), "{body}");
    let retry: u64 = r.header("retry-after").expect("Retry-After").parse().expect("whole seconds");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(r.header("ratelimit-policy"), Some(format!("\"{policy}\";q={quota};w=60").as_str()));
    assert_eq!(r.header("ratelimit"), Some(format!("\"{policy}\";r=0;t={retry}").as_str()));
    retry
}

async fn login_from(app: &TestApp, forwarded_for: Option<&str>, email: &str, password: &str) -> Resp {
    let mut rb =
        app.request(reqwest::Method::POST, "/auth/login").json(&json!({ "email": email, "password": password }));
    if let Some(ip) = forwarded_for {
        rb = rb.header("x-forwarded-for", ip);
    }
    TestApp::send(rb).await
}

async fn timed_login(app: &TestApp, email: &str) -> (Resp, Duration) {
    let started = Instant::now();
    let r = app.login(email, OTHER_STRONG_PASSWORD).await.0;
    (r, started.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test]
async fn the_eleventh_login_from_one_ip_is_429_and_the_next_does_not_hash() {
    let app = heavy_hashing(TestApp::builder())
        .env("RATE_LIMIT__LOGIN_PER_IP_PER_MINUTE", "10")
        .env("RATE_LIMIT__LOGIN_GLOBAL_PER_MINUTE", "1000")
        .spawn()
        .await;
    // Ten failed logins (different unknown emails: neither a lockout nor a per-account budget
    // gets in the way), each paying for a full hash.
    let mut failed = Vec::new();
    for _ in 0..10 {
        let (r, took) = timed_login(&app, &unique_email()).await;
        r.assert_problem(401);
        failed.push(took);
    }
    let (eleventh, _) = timed_login(&app, &unique_email()).await;
    assert_rate_limited(&eleventh, "login-ip", 10);
    let (twelfth, took) = timed_login(&app, &unique_email()).await;
    assert_rate_limited(&twelfth, "login-ip", 10);
    let normal = median(failed);
    assert!(took * 4 < normal, "a refused login took {took:?}, a hashed one {normal:?}: the refusal hashed");

    // The token password grant spends the same bucket; the refresh grant is not a login.
    let grant = json!({ "grant_type": "password", "email": unique_email(), "password": OTHER_STRONG_PASSWORD });
    assert_rate_limited(&app.post_json("/auth/token", &grant).await, "login-ip", 10);
    let refresh = json!({ "grant_type": "refresh_token", "refresh_token": "x".repeat(43) });
    app.post_json("/auth/token", &refresh).await.assert_problem(401);
}

#[tokio::test]
async fn the_token_password_grant_is_limited_like_login() {
    let app = TestApp::builder().env("RATE_LIMIT__LOGIN_PER_IP_PER_MINUTE", "3").spawn().await;
    for _ in 0..3 {
        let grant = json!({ "grant_type": "password", "email": unique_email(), "password": OTHER_STRONG_PASSWORD });
        app.post_json("/auth/token", &grant).await.assert_problem(401);
    }
    let grant = json!({ "grant_type": "password", "email": unique_email(), "password": OTHER_STRONG_PASSWORD });
    assert_rate_limited(&app.post_json("/auth/token", &grant).await, "login-ip", 3);
    // ... and it is the same bucket as login.
    assert_rate_limited(&app.login(&unique_email(), OTHER_STRONG_PASSWORD).await.0, "login-ip", 3);
}

#[tokio::test]
async fn the_global_login_cap_holds_across_many_ips() {
    let app = TestApp::builder()
        .env("SERVER__TRUSTED_PROXIES", r#"["127.0.0.1/32"]"#)
        .env("RATE_LIMIT__LOGIN_PER_IP_PER_MINUTE", "10")
        .env("RATE_LIMIT__LOGIN_GLOBAL_PER_MINUTE", "5")
        .spawn()
        .await;
    for i in 1..=5 {
        let ip = format!("198.51.100.{i}");
        login_from(&app, Some(&ip), &unique_email(), OTHER_STRONG_PASSWORD).await.assert_problem(401);
    }
    // A sixth client, with its own untouched per-IP budget, meets the deployment-wide cap.
    let r = login_from(&app, Some("198.51.100.77"), &unique_email(), OTHER_STRONG_PASSWORD).await;
    assert_rate_limited(&r, "login-global", 5);
}

#[tokio::test]
async fn one_account_gets_no_more_guesses_from_many_ips() {
    let app = TestApp::builder()
        .env("SERVER__TRUSTED_PROXIES", r#"["127.0.0.1/32"]"#)
        .env("RATE_LIMIT__LOGIN_PER_IP_PER_MINUTE", "3")
        .env("RATE_LIMIT__LOGIN_GLOBAL_PER_MINUTE", "1000")
        .spawn()
        .await;
    // An unknown email, so no lockout is involved: the account budget alone.
    let target = unique_email();
    for i in 1..=3 {
        let ip = format!("198.51.100.{i}");
        login_from(&app, Some(&ip), &target, OTHER_STRONG_PASSWORD).await.assert_problem(401);
    }
    let r = login_from(&app, Some("198.51.100.50"), &target, OTHER_STRONG_PASSWORD).await;
    assert_rate_limited(&r, "login-account", 3);
    // The account's budget is its own: the same fresh client may still try another account.
    login_from(&app, Some("198.51.100.50"), &unique_email(), OTHER_STRONG_PASSWORD).await.assert_problem(401);
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_gives_no_fresh_budget() {
    // No trusted proxies: the peer (127.0.0.1) is the client whatever the headers say.
    let app = TestApp::builder().env("RATE_LIMIT__LOGIN_PER_IP_PER_MINUTE", "2").spawn().await;
    for _ in 0..2 {
        login_from(&app, None, &unique_email(), OTHER_STRONG_PASSWORD).await.assert_problem(401);
    }
    let r = login_from(&app, Some("203.0.113.7"), &unique_email(), OTHER_STRONG_PASSWORD).await;
    assert_rate_limited(&r, "login-ip", 2);
    let rb = app
        .request(reqwest::Method::POST, "/auth/login")
        .header("forwarded", "for=203.0.113.8")
        .json(&json!({ "email": unique_email(), "password": OTHER_STRONG_PASSWORD }));
    assert_rate_limited(&TestApp::send(rb).await, "login-ip", 2);
}

#[tokio::test]
async fn forwarded_for_from_a_trusted_proxy_gives_each_client_its_budget() {
    let app = TestApp::builder()
        .env("SERVER__TRUSTED_PROXIES", r#"["127.0.0.1/32"]"#)
        .env("RATE_LIMIT__LOGIN_PER_IP_PER_MINUTE", "2")
        .env("RATE_LIMIT__LOGIN_GLOBAL_PER_MINUTE", "1000")
        .spawn()
        .await;
    for _ in 0..2 {
        login_from(&app, Some("203.0.113.1"), &unique_email(), OTHER_STRONG_PASSWORD).await.assert_problem(401);
    }
    let r = login_from(&app, Some("203.0.113.1"), &unique_email(), OTHER_STRONG_PASSWORD).await;
    assert_rate_limited(&r, "login-ip", 2);
    // Another client behind the same proxy has its own budget.
    login_from(&app, Some("203.0.113.2"), &unique_email(), OTHER_STRONG_PASSWORD).await.assert_problem(401);
    // The limited client cannot escape by writing a fake address in front of the one the proxy
    // appended: the rightmost untrusted hop is the client.
    let r = login_from(&app, Some("192.0.2.99, 203.0.113.1"), &unique_email(), OTHER_STRONG_PASSWORD).await;
    assert_rate_limited(&r, "login-ip", 2);
}

#[tokio::test]
async fn the_api_per_ip_budget_refuses_with_429_and_leaves_probes_alone() {
    let app = TestApp::builder().env("RATE_LIMIT__API_PER_IP_PER_MINUTE", "3").spawn().await;
    for _ in 0..3 {
        app.get("/auth/me").await.assert_problem(401);
    }
    assert_rate_limited(&app.get("/auth/me").await, "api-ip", 3);
    // Any route but the probes and login: an unknown path is refused too, before the router.
    assert_rate_limited(&app.get("/no/such/path").await, "api-ip", 3);
    let refresh = json!({ "grant_type": "refresh_token", "refresh_token": "x".repeat(43) });
    assert_rate_limited(&app.post_json("/auth/token", &refresh).await, "api-ip", 3);
    for _ in 0..20 {
        assert_eq!(app.get("/healthz").await.status, 200);
    }
    assert_eq!(app.get("/readyz").await.status, 200);
    // Login has its own (stricter) budget rather than this one.
    app.login(&unique_email(), OTHER_STRONG_PASSWORD).await.0.assert_problem(401);
}

/// A JWT with a valid shape whose signature is garbage, claiming to be `sub`.
fn forged_token(sub: &str) -> String {
    let b64 = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let header = b64(json!({ "alg": "RS256", "typ": "JWT" }));
    let claims = b64(
        json!({ "sub": sub, "sid": "x", "exp": 4_000_000_000u64, "iss": "http://localhost", "aud": "http://localhost" }),
    );
    format!("{header}.{claims}.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 256]))
}

#[tokio::test]
async fn the_per_user_budget_follows_the_verified_user_only() {
    let app = TestApp::builder().env("RATE_LIMIT__API_PER_USER_PER_MINUTE", "3").spawn().await;
    let (_, alice) = app.user().await;
    let (_, bob) = app.user().await;
    for _ in 0..3 {
        assert_eq!(app.get_as("/auth/me", &alice).await.status, 200);
    }
    assert_rate_limited(&app.get_as("/auth/me", &alice).await, "api-user", 3);
    // Bob, from the same IP, has his own budget ...
    let me = app.get_as("/auth/me", &bob).await;
    assert_eq!(me.status, 200);
    let bob_id = me.json()["id"].as_str().unwrap().to_owned();
    // ... which forged tokens claiming to be him cannot spend.
    for _ in 0..10 {
        let rb = app.request(reqwest::Method::GET, "/auth/me").bearer_auth(forged_token(&bob_id));
        TestApp::send(rb).await.assert_problem(401);
    }
    assert_eq!(app.get_as("/auth/me", &bob).await.status, 200);
    assert_eq!(app.get_as("/auth/me", &bob).await.status, 200);
    assert_rate_limited(&app.get_as("/auth/me", &bob).await, "api-user", 3);
}

fn assert_locked(r: &Resp) -> u64 {
    let body = r.assert_problem(423);
    assert_eq!(body["type"], json!("https://rampart.dev/problems/account-locked"), "{body}");
    let retry: u64 = r.header("retry-after").expect("Retry-After").parse().expect("whole seconds");
    assert!(retry >= 1, "Retry-After {retry}");
    retry
}

#[tokio::test]
async fn five_failures_lock_the_account_until_the_lock_expires() {
    let app = heavy_hashing(TestApp::builder())
        .env("RATE_LIMIT__LOCKOUT_AFTER_FAILURES", "5")
        .env("RATE_LIMIT__LOCKOUT_DURATION", "3s")
        .spawn()
        .await;
    let (email, session) = app.user().await;
    let mut failed = Vec::new();
    for _ in 0..5 {
        // The fifth failure itself still answers 401, like any wrong password.
        let (r, took) = timed_login(&app, &email).await;
        r.assert_problem(401);
        failed.push(took);
    }
    // The right password is refused while locked, and without hashing.
    let started = Instant::now();
    let r = app.login(&email, STRONG_PASSWORD).await.0;
    let took = started.elapsed();
    let retry = assert_locked(&r);
    assert!(retry <= 3, "Retry-After {retry} for a 3 s lock");
    let normal = median(failed);
    assert!(took * 4 < normal, "a locked login took {took:?}, a hashed one {normal:?}: it hashed");
    assert!(r.header("set-cookie").is_none());
    let grant = json!({ "grant_type": "password", "email": email, "password": STRONG_PASSWORD });
    assert_locked(&app.post_json("/auth/token", &grant).await);

    // The lock stops new logins, not existing ones.
    assert_eq!(app.get_as("/auth/me", &session).await.status, 200);

    // Audited once, when the lock was set, naming the account.
    let pool = app.db().await;
    let user_id: (String,) =
        sqlx::query_as("SELECT id FROM users WHERE email_normalized = $1").bind(&email).fetch_one(&pool).await.unwrap();
    let locks: Vec<(Option<String>, String)> =
        sqlx::query_as("SELECT actor_id, outcome FROM audit_log WHERE action = 'lockout'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(locks, vec![(Some(user_id.0), "denied".to_owned())]);
    pool.close().await;

    // The lock expires by itself.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let (r, s) = app.login(&email, STRONG_PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(s.is_some());
}

#[tokio::test]
async fn a_successful_login_resets_the_failure_count() {
    let app = TestApp::builder().env("RATE_LIMIT__LOCKOUT_AFTER_FAILURES", "5").spawn().await;
    let (email, _) = app.user().await;
    for _ in 0..4 {
        app.login(&email, OTHER_STRONG_PASSWORD).await.0.assert_problem(401);
    }
    assert_eq!(app.login(&email, STRONG_PASSWORD).await.0.status, 200);
    // Four more failures: without the reset the count would be eight, and locked.
    for _ in 0..4 {
        app.login(&email, OTHER_STRONG_PASSWORD).await.0.assert_problem(401);
    }
    assert_eq!(app.login(&email, STRONG_PASSWORD).await.0.status, 200);
}

/// If only real accounts could be locked, the 423 after five failures would tell an attacker
/// which emails have accounts. Unknown emails are locked by the same rule, with the same answer.
#[tokio::test]
async fn a_lock_does_not_reveal_whether_the_account_exists() {
    let app = TestApp::builder().env("RATE_LIMIT__LOCKOUT_AFTER_FAILURES", "5").spawn().await;
    let (email, _) = app.user().await;
    let nobody = unique_email();
    let mut answers = Vec::new();
    for target in [&email, &nobody] {
        for _ in 0..5 {
            app.login(target, OTHER_STRONG_PASSWORD).await.0.assert_problem(401);
        }
        let r = app.login(target, OTHER_STRONG_PASSWORD).await.0;
        assert_locked(&r);
        answers.push(r);
    }
    let (known, unknown) = (&answers[0], &answers[1]);
    assert_eq!(known.body, unknown.body, "bodies differ:\n{}\n{}", known.text(), unknown.text());
    // The two locks were set a moment apart: their Retry-After may straddle a second.
    let secs = |r: &Resp| r.header("retry-after").unwrap().parse::<i64>().unwrap();
    assert!((secs(known) - secs(unknown)).abs() <= 1, "{} vs {}", secs(known), secs(unknown));
    // The token password grant sees the same lock.
    let grant = json!({ "grant_type": "password", "email": nobody, "password": OTHER_STRONG_PASSWORD });
    assert_locked(&app.post_json("/auth/token", &grant).await);
}

/// A login refused by the per-IP budget is answered before its body is read. A client that sends
/// the body a moment after the head (Python's http.client writes them separately) must still get
/// the 429 and keep its connection for the next request: the server reads the late body first.
#[tokio::test]
async fn a_refused_login_whose_body_comes_late_keeps_its_connection() {
    use std::io::Write;
    let app = TestApp::builder().env("RATE_LIMIT__LOGIN_PER_IP_PER_MINUTE", "1").spawn().await;
    login_from(&app, None, &unique_email(), OTHER_STRONG_PASSWORD).await.assert_problem(401);
    let addr = app.addr;
    let (refused, next) = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let body = json!({ "email": unique_email(), "password": OTHER_STRONG_PASSWORD }).to_string();
        let head = format!(
            "POST /auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        stream.write_all(body.as_bytes()).unwrap();
        let refused = crate::raw_http::read_response(&mut stream);
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        (refused, crate::raw_http::read_response(&mut stream))
    })
    .await
    .unwrap();
    assert_rate_limited(&refused, "login-ip", 1);
    assert_ne!(refused.header("connection"), Some("close"));
    assert_eq!(next.status, 200, "the connection did not serve the next request");
}

/// A refused login whose body never comes cannot hold its connection open: the wait for the body
/// is bounded by `limits.request_timeout`, after which the connection is closed.
#[tokio::test]
async fn a_refused_login_whose_body_never_comes_is_cut_off() {
    use std::io::Write;
    let app = TestApp::builder()
        .env("RATE_LIMIT__LOGIN_PER_IP_PER_MINUTE", "1")
        .env("LIMITS__REQUEST_TIMEOUT", "1s")
        .spawn()
        .await;
    login_from(&app, None, &unique_email(), OTHER_STRONG_PASSWORD).await.assert_problem(401);
    let addr = app.addr;
    let got = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        let head = "POST /auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n";
        stream.write_all(head.as_bytes()).unwrap();
        let (got, _) = crate::raw_http::wait_for_close(&mut stream, Instant::now(), Duration::from_secs(20));
        String::from_utf8_lossy(&got).into_owned()
    })
    .await
    .unwrap();
    assert!(got.is_empty() || got.starts_with("HTTP/1.1 429") || got.starts_with("HTTP/1.1 408"), "{got:?}");
}

//! The client IP behind trusted proxies: only the configured forwarding header is read, an
//! unreadable element stops the walk only where it stands, and an IPv4 client reached through a
//! dual-stack socket is plain IPv4. Observed from outside through what the IP decides: the
//! per-IP login budget and the `ip` of audit events.

use std::collections::HashMap;

use reqwest::header::HeaderValue;
use serde_json::json;

use crate::helpers::*;

/// A failed login through `base` with the given extra headers, for a fresh unknown email (the
/// audit event's target), so that only the per-IP budget can refuse it.
async fn failed_login(app: &TestApp, base: &str, headers: &[(&str, HeaderValue)]) -> (Resp, String) {
    let email = unique_email();
    let mut rb = app.client.post(format!("{base}/auth/login")).json(&json!({ "email": email, "password": "wrong" }));
    for (name, value) in headers {
        rb = rb.header(*name, value.clone());
    }
    (TestApp::send(rb).await, email)
}

fn value(bytes: &[u8]) -> HeaderValue {
    HeaderValue::from_bytes(bytes).unwrap()
}

/// An admin made the way an operator does, signed in with a cookie session.
async fn admin_session(app: &TestApp, base: &str) -> Session {
    let email = app.create_user_with_role("admin");
    let r = TestApp::send(
        app.client.post(format!("{base}/auth/login")).json(&json!({ "email": email, "password": STRONG_PASSWORD })),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    session_from(&r).unwrap()
}

/// The `ip` of each `login_failure` event, by its target (the attempted email).
async fn failure_ips(app: &TestApp, base: &str, admin: &Session) -> HashMap<String, String> {
    let r = TestApp::send(
        app.client
            .get(format!("{base}/admin/audit?action=login_failure&limit=100"))
            .header("cookie", admin.cookie_header()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| Some((e["target"].as_str()?.to_owned(), e["ip"].as_str()?.to_owned())))
        .collect()
}

/// The proxy writes `Forwarded` and passes a client's own `X-Forwarded-For` through untouched:
/// that header must change nothing, neither the budget nor the audit trail.
#[tokio::test]
async fn a_client_sent_x_forwarded_for_is_ignored_when_the_proxy_writes_forwarded() {
    let app = TestApp::builder()
        .env("SERVER__TRUSTED_PROXIES", r#"["127.0.0.1"]"#)
        .env("SERVER__TRUSTED_HEADER", "forwarded")
        .env("RATE_LIMIT__LOGIN_PER_IP_PER_MINUTE", "2")
        .env("RATE_LIMIT__LOGIN_GLOBAL_PER_MINUTE", "1000")
        .spawn()
        .await;
    let admin = admin_session(&app, &app.base).await;
    let client = value(b"for=203.0.113.1;proto=https");
    let mut targets = Vec::new();
    for forged in ["198.51.100.1", "198.51.100.2"] {
        let (r, email) = failed_login(
            &app,
            &app.base,
            &[("forwarded", client.clone()), ("x-forwarded-for", value(forged.as_bytes()))],
        )
        .await;
        r.assert_problem(401);
        targets.push(email);
    }
    // A third fresh X-Forwarded-For buys nothing: the proxy's Forwarded names the same client.
    let (r, _) =
        failed_login(&app, &app.base, &[("forwarded", client.clone()), ("x-forwarded-for", value(b"198.51.100.3"))])
            .await;
    r.assert_problem(429);
    // Another client behind the proxy has its own budget, whatever XFF it sends.
    let (r, other) = failed_login(
        &app,
        &app.base,
        &[("forwarded", value(b"for=203.0.113.2")), ("x-forwarded-for", value(b"203.0.113.1"))],
    )
    .await;
    r.assert_problem(401);

    let ips = failure_ips(&app, &app.base, &admin).await;
    for t in &targets {
        assert_eq!(ips.get(t).map(String::as_str), Some("203.0.113.1"), "{ips:?}");
    }
    assert_eq!(ips.get(&other).map(String::as_str), Some("203.0.113.2"), "{ips:?}");
}

/// One element a proxy cannot read (a byte that is not ASCII) stops the walk there, not before:
/// the address the proxy appended to its right is still the client, with its own budget.
#[tokio::test]
async fn a_non_ascii_element_does_not_collapse_the_client_to_the_proxy() {
    let app = TestApp::builder()
        .env("SERVER__TRUSTED_PROXIES", r#"["127.0.0.1"]"#)
        .env("RATE_LIMIT__LOGIN_PER_IP_PER_MINUTE", "2")
        .env("RATE_LIMIT__LOGIN_GLOBAL_PER_MINUTE", "1000")
        .spawn()
        .await;
    // The admin's sign-in and one failure use up the proxy address's own budget (no header: the
    // peer is the client).
    let admin = admin_session(&app, &app.base).await;
    failed_login(&app, &app.base, &[]).await.0.assert_problem(401);
    failed_login(&app, &app.base, &[]).await.0.assert_problem(429);

    let (r, email) =
        failed_login(&app, &app.base, &[("x-forwarded-for", value(b"\xc3\xa9vil\xff, 198.51.100.7"))]).await;
    r.assert_problem(401);
    // Split across two header lines, with the unreadable one first: the same.
    let mut rb = app
        .request(reqwest::Method::POST, "/auth/login")
        .json(&json!({ "email": unique_email(), "password": "wrong" }));
    rb = rb.header("x-forwarded-for", value(b"\xfe")).header("x-forwarded-for", value(b"198.51.100.8"));
    TestApp::send(rb).await.assert_problem(401);

    let ips = failure_ips(&app, &app.base, &admin).await;
    assert_eq!(ips.get(&email).map(String::as_str), Some("198.51.100.7"), "{ips:?}");
}

/// A server listening on a dual-stack socket sees an IPv4 client as `::ffff:a.b.c.d`. It must
/// still match the IPv4 CIDR of its proxy, and be stored and limited as plain IPv4.
#[tokio::test]
async fn an_ipv4_peer_on_a_dual_stack_socket_matches_ipv4_cidrs() {
    if std::net::TcpListener::bind("[::]:0").is_err() {
        eprintln!("no IPv6 on this machine: skipped");
        return;
    }
    let app = TestApp::builder()
        .env("SERVER__LISTEN", "[::]:0")
        .env("SERVER__TRUSTED_PROXIES", r#"["127.0.0.0/8"]"#)
        .env("RATE_LIMIT__LOGIN_PER_IP_PER_MINUTE", "2")
        .env("RATE_LIMIT__LOGIN_GLOBAL_PER_MINUTE", "1000")
        .spawn()
        .await;
    // Over IPv4 to the dual-stack listener.
    let base = format!("http://127.0.0.1:{}", app.addr.port());
    let admin = admin_session(&app, &base).await;
    let (r, direct) = failed_login(&app, &base, &[]).await;
    r.assert_problem(401);

    let xff = |ip: &str| [("x-forwarded-for", value(ip.as_bytes()))];
    let (r, proxied) = failed_login(&app, &base, &xff("203.0.113.1")).await;
    r.assert_problem(401);
    failed_login(&app, &base, &xff("203.0.113.1")).await.0.assert_problem(401);
    failed_login(&app, &base, &xff("203.0.113.1")).await.0.assert_problem(429);
    // The proxy is trusted, so the next client behind it has a budget of its own.
    failed_login(&app, &base, &xff("203.0.113.2")).await.0.assert_problem(401);

    let ips = failure_ips(&app, &base, &admin).await;
    assert_eq!(ips.get(&direct).map(String::as_str), Some("127.0.0.1"), "{ips:?}");
    assert_eq!(ips.get(&proxied).map(String::as_str), Some("203.0.113.1"), "{ips:?}");
}

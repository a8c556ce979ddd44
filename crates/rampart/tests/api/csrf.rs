//! Cross-site request forgery on a cookie session: the X-CSRF-Token header, the Origin and
//! Sec-Fetch-Site checks, login CSRF, and a cookie and a bearer token on one request.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// The server's own origin (`server.public_url` of the test config).
const OWN_ORIGIN: &str = "http://localhost";
const EVIL_ORIGIN: &str = "https://evil.example";

/// An unsafe request on the cookie session with exactly the headers given (no CSRF token unless
/// one is among them).
async fn unsafe_as(
    app: &TestApp,
    method: Method,
    path: &str,
    s: &Session,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Resp {
    let mut rb = app.request(method, path).header("cookie", s.cookie_header());
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    if let Some(b) = body {
        rb = rb.json(b);
    }
    TestApp::send(rb).await
}

async fn display_name(app: &TestApp, s: &Session) -> Value {
    let me = app.get_as("/auth/me", s).await;
    assert_eq!(me.status, 200, "the session should still work: {}", me.text());
    me.json()["display_name"].clone()
}

/// The forged variants of a request: (what, extra headers). Each must be refused 403.
fn forgeries<'a>(
    s: &'a Session,
    other_csrf: &'a str,
    suffixed: &'a str,
) -> Vec<(&'static str, Vec<(&'static str, &'a str)>)> {
    vec![
        ("no token", vec![]),
        ("empty token", vec![("x-csrf-token", "")]),
        ("wrong token", vec![("x-csrf-token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]),
        ("another session's token", vec![("x-csrf-token", other_csrf)]),
        ("token with a suffix", vec![("x-csrf-token", suffixed)]),
        ("the session cookie as token", vec![("x-csrf-token", s.cookie.as_str())]),
        ("right token, foreign Origin", vec![("x-csrf-token", s.csrf.as_str()), ("origin", EVIL_ORIGIN)]),
        ("right token, Origin null", vec![("x-csrf-token", s.csrf.as_str()), ("origin", "null")]),
        (
            "right token, look-alike Origin",
            vec![("x-csrf-token", s.csrf.as_str()), ("origin", "http://localhost.evil.example")],
        ),
        ("right token, other port", vec![("x-csrf-token", s.csrf.as_str()), ("origin", "http://localhost:8080")]),
        ("right token, other scheme", vec![("x-csrf-token", s.csrf.as_str()), ("origin", "https://localhost")]),
        (
            "right token, Sec-Fetch-Site cross-site",
            vec![("x-csrf-token", s.csrf.as_str()), ("sec-fetch-site", "cross-site")],
        ),
        (
            "right token, own Origin but Sec-Fetch-Site cross-site",
            vec![("x-csrf-token", s.csrf.as_str()), ("origin", OWN_ORIGIN), ("sec-fetch-site", "cross-site")],
        ),
    ]
}

#[tokio::test]
async fn patch_me_needs_the_csrf_token_and_a_same_origin_request() {
    let app = TestApp::spawn().await;
    let (_, s) = app.user().await;
    let (_, other) = app.user().await;
    // A known starting value, set the legitimate way.
    let r = app.send_as(Method::PATCH, "/auth/me", &s, Some(&json!({ "display_name": "before" }))).await;
    assert_eq!(r.status, 200, "{}", r.text());

    let suffixed = format!("{}x", s.csrf);
    let cases = forgeries(&s, &other.csrf, &suffixed);
    for (what, headers) in &cases {
        let r = unsafe_as(&app, Method::PATCH, "/auth/me", &s, headers, Some(&json!({ "display_name": "x" }))).await;
        r.assert_problem(403);
        assert_eq!(display_name(&app, &s).await, json!("before"), "{what}: the forged PATCH was applied");
    }
    assert_eq!(display_name(&app, &other).await, Value::Null);

    // The same request as the server's own page sends it is accepted.
    for headers in [
        vec![("x-csrf-token", s.csrf.as_str()), ("origin", OWN_ORIGIN)],
        vec![("x-csrf-token", s.csrf.as_str()), ("origin", OWN_ORIGIN), ("sec-fetch-site", "same-origin")],
        vec![("x-csrf-token", s.csrf.as_str())],
    ] {
        let r = unsafe_as(&app, Method::PATCH, "/auth/me", &s, &headers, Some(&json!({ "display_name": "x" }))).await;
        assert_eq!(r.status, 200, "{headers:?}: {}", r.text());
        assert_eq!(r.json()["display_name"], json!("x"));
        // Back to the old value for the next round.
        let r = app.send_as(Method::PATCH, "/auth/me", &s, Some(&json!({ "display_name": "before" }))).await;
        assert_eq!(r.status, 200);
    }
}

#[tokio::test]
async fn logout_needs_the_csrf_token_and_a_same_origin_request() {
    let app = TestApp::spawn().await;
    let (_, s) = app.user().await;
    let (_, other) = app.user().await;
    let sessions = app.count("sessions").await;

    let suffixed = format!("{}x", s.csrf);
    let cases = forgeries(&s, &other.csrf, &suffixed);
    for (what, headers) in &cases {
        let r = unsafe_as(&app, Method::POST, "/auth/logout", &s, headers, None).await;
        r.assert_problem(403);
        assert!(r.header("set-cookie").is_none(), "{what}: a refused logout cleared the cookie");
        // Forced logout did not happen: the session still works.
        let me = app.get_as("/auth/me", &s).await;
        assert_eq!(me.status, 200, "{what}: the forged logout ended the session: {}", me.text());
    }
    assert_eq!(app.count("sessions").await, sessions);

    let r =
        unsafe_as(&app, Method::POST, "/auth/logout", &s, &[("x-csrf-token", &s.csrf), ("origin", OWN_ORIGIN)], None)
            .await;
    assert_eq!(r.status, 204, "{}", r.text());
    app.get_as("/auth/me", &s).await.assert_problem(401);
    // The other user's session was not touched.
    assert_eq!(app.get_as("/auth/me", &other).await.status, 200);
}

/// Cookie confusion: the attacker's own session cookie planted beside the victim's, with the
/// attacker's own (valid) CSRF token. The CSRF check and the session lookup must look at the same
/// cookie, or the attacker's token would carry a request that acts as the victim.
#[tokio::test]
async fn a_planted_second_session_cookie_cannot_borrow_the_victims_session() {
    let app = TestApp::spawn().await;
    let (_, victim) = app.user().await;
    let (_, attacker) = app.user().await;
    let r = app.send_as(Method::PATCH, "/auth/me", &victim, Some(&json!({ "display_name": "victim" }))).await;
    assert_eq!(r.status, 200);
    let attacker_id = app.get_as("/auth/me", &attacker).await.json()["id"].clone();
    // Victim first, then attacker first (a logout that succeeds is the attacker's own).
    for cookies in [
        format!("{}; {}", victim.cookie_header(), attacker.cookie_header()),
        format!("{}; {}", attacker.cookie_header(), victim.cookie_header()),
    ] {
        let r = TestApp::send(
            app.request(Method::PATCH, "/auth/me")
                .header("cookie", &cookies)
                .header("x-csrf-token", &attacker.csrf)
                .json(&json!({ "display_name": "pwned" })),
        )
        .await;
        assert!(r.status < 500, "{cookies}: {} {}", r.status, r.text());
        if r.status == 200 {
            // Acting as the attacker on the attacker's own account is no forgery.
            assert_eq!(r.json()["id"], attacker_id, "{cookies}: acted as the victim");
        } else {
            r.assert_problem(r.status);
        }
        assert_eq!(display_name(&app, &victim).await, json!("victim"), "{cookies}: the victim's profile changed");
        let r = TestApp::send(
            app.request(Method::POST, "/auth/logout").header("cookie", &cookies).header("x-csrf-token", &attacker.csrf),
        )
        .await;
        assert!(r.status < 500, "{cookies}: {} {}", r.status, r.text());
        assert_eq!(app.get_as("/auth/me", &victim).await.status, 200, "{cookies}: the victim was logged out");
    }
}

#[tokio::test]
async fn a_cookie_and_a_bearer_token_together_are_400() {
    let app = TestApp::spawn().await;
    let (_, s) = app.user().await;
    let r = app.send_as(Method::PATCH, "/auth/me", &s, Some(&json!({ "display_name": "before" }))).await;
    assert_eq!(r.status, 200);
    for auth in ["Bearer x", "bearer x", "BEARER eyJhbGciOiJub25lIn0.e30."] {
        let r = TestApp::send(
            app.request(Method::PATCH, "/auth/me")
                .header("cookie", s.cookie_header())
                .header("x-csrf-token", &s.csrf)
                .header("authorization", auth)
                .json(&json!({ "display_name": "x" })),
        )
        .await;
        r.assert_problem(400);
        let r = TestApp::send(
            app.request(Method::POST, "/auth/logout")
                .header("cookie", s.cookie_header())
                .header("x-csrf-token", &s.csrf)
                .header("authorization", auth),
        )
        .await;
        r.assert_problem(400);
        let r = TestApp::send(
            app.request(Method::GET, "/auth/me").header("cookie", s.cookie_header()).header("authorization", auth),
        )
        .await;
        r.assert_problem(400);
    }
    // Nothing was done, and the session alone still works.
    assert_eq!(display_name(&app, &s).await, json!("before"));
}

#[tokio::test]
async fn login_from_a_foreign_origin_is_refused() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    assert_eq!(app.register(&email, STRONG_PASSWORD).await.status, 201);
    let creds = json!({ "email": email, "password": STRONG_PASSWORD });
    let sessions = app.count("sessions").await;

    // A page elsewhere logging the victim's browser into this (attacker's) account.
    for headers in [
        vec![("origin", EVIL_ORIGIN)],
        vec![("origin", "null")],
        vec![("sec-fetch-site", "cross-site")],
        vec![("origin", OWN_ORIGIN), ("sec-fetch-site", "cross-site")],
    ] {
        let mut rb = app.request(Method::POST, "/auth/login").json(&creds);
        for (k, v) in &headers {
            rb = rb.header(*k, *v);
        }
        let r = TestApp::send(rb).await;
        r.assert_problem(403);
        assert!(session_from(&r).is_none() && r.header("set-cookie").is_none(), "{headers:?}: a session was set");
        assert_eq!(app.count("sessions").await, sessions, "{headers:?}: a session was stored");
    }

    let (r, s) = app.login(&email, STRONG_PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(s.is_some());
    let r = TestApp::send(app.request(Method::POST, "/auth/login").header("origin", OWN_ORIGIN).json(&creds)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(session_from(&r).is_some());
}

#[tokio::test]
async fn safe_methods_need_no_token() {
    let app = TestApp::spawn().await;
    let (_, s) = app.user().await;
    let me = app.get_as("/auth/me", &s).await;
    assert_eq!(me.status, 200, "{}", me.text());
    let csrf = app.get_as("/auth/csrf", &s).await;
    assert_eq!(csrf.status, 200, "{}", csrf.text());
    assert_eq!(csrf.json()["csrf_token"], json!(s.csrf));
    // The token fetched by GET is the one that unlocks unsafe requests.
    let r = unsafe_as(
        &app,
        Method::PATCH,
        "/auth/me",
        &s,
        &[("x-csrf-token", csrf.json()["csrf_token"].as_str().unwrap())],
        Some(&json!({ "display_name": "via fetched token" })),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(display_name(&app, &s).await, json!("via fetched token"));
}

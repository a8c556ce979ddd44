//! The identity round trip: register, login, me, logout; the cookie's flags; sessions.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn register_login_me_logout_round_trip() {
    let app = TestApp::spawn().await;
    let email = unique_email();

    let r = app.register(&email, STRONG_PASSWORD).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let body = r.json();
    assert_eq!(body["email"], json!(email));
    assert_eq!(body["email_verified"], json!(false));
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body.as_object().unwrap().len(), 4, "unexpected fields: {body}");

    let (r, session) = app.login(&email, STRONG_PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let s = session.expect("login sets the session cookie");
    assert_eq!(r.json()["user"]["id"], json!(id));

    let me = app.get_as("/auth/me", &s).await;
    assert_eq!(me.status, 200);
    let me = me.json();
    assert_eq!(me["id"], json!(id));
    assert_eq!(me["email"], json!(email));
    assert_eq!(me["roles"], json!(["user"]));
    assert_eq!(me["mfa_enabled"], json!(false));
    let keys: Vec<&str> = me.as_object().unwrap().keys().map(String::as_str).collect();
    for k in &keys {
        assert!(
            ["id", "email", "display_name", "email_verified", "roles", "mfa_enabled", "created_at"].contains(k),
            "leaked {k}"
        );
    }

    let csrf = app.get_as("/auth/csrf", &s).await;
    assert_eq!(csrf.json()["csrf_token"], json!(s.csrf));

    let out = app.send_as(Method::POST, "/auth/logout", &s, None).await;
    assert_eq!(out.status, 204);
    let cleared = out.header("set-cookie").unwrap();
    assert!(cleared.starts_with("__Host-rampart_session=;") && cleared.contains("Max-Age=0"), "{cleared}");

    // The session is dead server-side, not just forgotten by the browser.
    app.get_as("/auth/me", &s).await.assert_problem(401);
    app.get("/auth/me").await.assert_problem(401);
}

#[tokio::test]
async fn session_cookie_has_every_flag() {
    let app = TestApp::spawn().await;
    let (_, s) = app.user().await;
    let c = &s.set_cookie;
    let attrs: Vec<String> = c.split(';').map(|a| a.trim().to_ascii_lowercase()).collect();
    assert!(c.starts_with("__Host-rampart_session="));
    for flag in ["httponly", "secure", "samesite=lax", "path=/"] {
        assert!(attrs.iter().any(|a| a == flag), "missing {flag}: {c}");
    }
    assert!(!attrs.iter().any(|a| a.starts_with("domain")), "a __Host- cookie has no Domain: {c}");
    // 256 bits, base64url: 43 characters.
    assert_eq!(s.cookie.len(), 43);
}

#[tokio::test]
async fn emails_are_trimmed_and_case_insensitive() {
    let app = TestApp::spawn().await;
    let local = format!("Mixed.{}", uuid::Uuid::new_v4().simple());
    let r = app.register(&format!("  {local}@Example.COM "), STRONG_PASSWORD).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["email"], json!(format!("{local}@Example.COM")));
    let (r, _) = app.login(&format!("{}@example.com", local.to_lowercase()), STRONG_PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let dup = app.register(&format!("{}@EXAMPLE.com", local.to_uppercase()), STRONG_PASSWORD).await;
    dup.assert_problem(409);
    assert_eq!(app.count("users").await, 1);
}

#[tokio::test]
async fn every_login_gets_a_fresh_session_and_the_old_one_dies() {
    let app = TestApp::spawn().await;
    let (email, first) = app.user().await;
    // Log in again from the same browser (it still sends the first cookie).
    let r = TestApp::send(
        app.request(Method::POST, "/auth/login")
            .header("cookie", first.cookie_header())
            .json(&json!({ "email": email, "password": STRONG_PASSWORD })),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let second = session_from(&r).unwrap();
    assert_ne!(first.cookie, second.cookie);
    assert_ne!(first.csrf, second.csrf);
    app.get_as("/auth/me", &first).await.assert_problem(401);
    assert_eq!(app.get_as("/auth/me", &second).await.status, 200);
}

#[tokio::test]
async fn session_value_is_stored_only_as_a_hash() {
    let app = TestApp::spawn().await;
    let (_, s) = app.user().await;
    let bytes = app.db_file_bytes().await;
    assert!(!bytes.windows(s.cookie.len()).any(|w| w == s.cookie.as_bytes()), "session value stored in clear");
    let pool = app.db().await;
    let hashes: Vec<(String,)> = sqlx::query_as("SELECT token_hash FROM sessions").fetch_all(&pool).await.unwrap();
    assert_eq!(hashes.len(), 1);
    assert_eq!(hashes[0].0.len(), 64);
    assert_ne!(hashes[0].0, s.cookie);
}

#[tokio::test]
async fn idle_and_absolute_timeouts_end_sessions() {
    let app = TestApp::builder()
        .env("AUTH__SESSION_IDLE_TIMEOUT", "2s")
        .env("AUTH__SESSION_ABSOLUTE_TIMEOUT", "5s")
        .spawn()
        .await;
    // Idle: used once, then left alone past the idle limit.
    let (_, idle) = app.user().await;
    assert_eq!(app.get_as("/auth/me", &idle).await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(2600)).await;
    app.get_as("/auth/me", &idle).await.assert_problem(401);

    // Absolute: kept busy, still ends at the absolute limit.
    let (_, busy) = app.user().await;
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_millis(4000) {
        assert_eq!(app.get_as("/auth/me", &busy).await.status, 200, "active session ended early");
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    app.get_as("/auth/me", &busy).await.assert_problem(401);
}

#[tokio::test]
async fn display_name_can_be_changed_but_nothing_else() {
    let app = TestApp::spawn().await;
    let (_, s) = app.user().await;
    let r = app.send_as(Method::PATCH, "/auth/me", &s, Some(&json!({ "display_name": "Ada <script>" }))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["display_name"], json!("Ada <script>"));
    for field in ["roles", "email_verified", "id", "email", "password_hash", "mfa_enabled"] {
        let r = app.send_as(Method::PATCH, "/auth/me", &s, Some(&json!({ field: ["admin"] }))).await;
        r.assert_problem(400);
        assert_eq!(r.error_fields(), vec![field.to_owned()], "{}", r.text());
    }
    let me = app.get_as("/auth/me", &s).await.json();
    assert_eq!(me["roles"], json!(["user"]));
    assert_eq!(me["display_name"], json!("Ada <script>"));
    let r = app.send_as(Method::PATCH, "/auth/me", &s, Some(&json!({ "display_name": "x".repeat(101) }))).await;
    assert_eq!(r.assert_problem(400)["errors"][0]["field"], json!("display_name"));
}

//! Logs are structured, and no secret (password, session value, CSRF token) reaches them.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn a_whole_login_flow_leaves_no_secret_in_the_log() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    assert_eq!(app.register(&email, STRONG_PASSWORD).await.status, 201);
    assert_eq!(app.login(&email, OTHER_STRONG_PASSWORD).await.0.status, 401);
    let (r, s) = app.login(&email, STRONG_PASSWORD).await;
    assert_eq!(r.status, 200);
    let s = s.unwrap();
    assert_eq!(app.get_as("/auth/me", &s).await.status, 200);
    assert_eq!(app.send_as(Method::PATCH, "/auth/me", &s, Some(&json!({ "display_name": "Eve" }))).await.status, 200);
    assert_eq!(app.send_as(Method::POST, "/auth/logout", &s, None).await.status, 204);
    // Give the log writer a moment to flush the last lines.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let logs = app.logs();
    // The flow is really in the log (so an empty log cannot pass).
    assert!(logs.matches("\"message\":\"request\"").count() >= 6, "{logs}");
    assert!(logs.contains("/auth/login") && logs.contains("\"status\":401"));
    for secret in [STRONG_PASSWORD, OTHER_STRONG_PASSWORD, s.cookie.as_str(), s.csrf.as_str()] {
        assert!(!logs.contains(secret), "secret {secret:?} found in the log");
    }
    for line in logs.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON line: {line}"));
        assert!(v.is_object());
    }
}

#[tokio::test]
async fn client_controlled_text_cannot_forge_log_lines() {
    let app = TestApp::spawn().await;
    // A path and a request id that try to start a new log line or a fake field.
    let path = "/x%0A%7B%22level%22:%22ERROR%22%7D\"injected\":1";
    let r = TestApp::send(app.request(Method::GET, path).header("x-request-id", "a\"b")).await;
    assert_eq!(r.status, 404);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let logs = app.logs();
    let lines: Vec<Value> =
        logs.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("forged line: {l}"))).collect();
    let hit = lines.iter().find(|v| v["status"] == json!(404)).expect("the 404 is logged");
    assert!(hit["path"].as_str().unwrap().starts_with("/x%0A"));
    assert!(lines.iter().all(|v| v.get("injected").is_none()));
    // The malformed request id was not echoed.
    assert_ne!(r.header("x-request-id"), Some("a\"b"));
}

/// Every line written on behalf of a request carries its id: the access line, and a warning from
/// inside a handler that has a span of its own (the login handler is `#[instrument]`ed; the
/// request's span used to be hidden behind it, and such a warning went out without the id).
#[tokio::test]
async fn lines_written_for_a_request_carry_its_id() {
    let app = TestApp::builder().env("RATE_LIMIT__LOCKOUT_AFTER_FAILURES", "3").spawn().await;
    let (email, _) = app.user().await;
    let body = json!({ "email": email, "password": OTHER_STRONG_PASSWORD });
    let ids = ["wrong-0", "wrong-1", "wrong-2"];
    for id in ids {
        let r = TestApp::send(app.request(Method::POST, "/auth/login").header("x-request-id", id).json(&body)).await;
        assert_eq!(r.status, 401, "{}", r.text());
        assert_eq!(r.header("x-request-id"), Some(id));
    }
    // Warnings and access lines go through two queues: wait for both to have landed.
    let locked = "login locked after failed attempts";
    app.logs_when(|l| l.contains(locked)).await;
    let logs = app.logs_when(|l| l.contains("\"message\":\"request\"") && l.contains("\"wrong-2\"")).await;
    let lines: Vec<Value> = logs.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let warning = lines.iter().find(|v| v["message"] == locked).unwrap_or_else(|| panic!("no lock warning: {logs}"));
    assert_eq!(warning["level"], "WARN");
    assert!(ids.iter().any(|id| warning["request_id"] == *id), "the warning has no request id: {warning}");
    for id in ids {
        let access = lines.iter().find(|v| v["message"] == "request" && v["request_id"] == id);
        let access = access.unwrap_or_else(|| panic!("no access line for {id}: {logs}"));
        assert_eq!(access["path"], "/auth/login");
        assert_eq!(access["status"], 401);
    }
    // A line written outside any request carries none.
    assert!(lines.iter().any(|v| v["message"] != "request" && v.get("request_id").is_none()), "{logs}");
}

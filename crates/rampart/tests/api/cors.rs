//! CORS (`cors.allowed_origins`): an allowed origin, and only an exact one, may read answers
//! from a browser, a 429 included; any other origin gets no CORS header at all.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

const ALLOWED: &str = "https://app.example.com";

async fn cors_app() -> TestApp {
    TestApp::builder()
        .env("RATE_LIMIT__LOGIN_PER_IP_PER_MINUTE", "1")
        .toml(&format!("[cors]\nallowed_origins = [\"{ALLOWED}\"]"))
        .spawn()
        .await
}

fn get_from(app: &TestApp, path: &str, origin: &str) -> reqwest::RequestBuilder {
    app.request(Method::GET, path).header("origin", origin)
}

#[tokio::test]
async fn only_an_allowed_origin_may_read_answers() {
    let app = cors_app().await;
    let ok = TestApp::send(get_from(&app, "/healthz", ALLOWED)).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("access-control-allow-origin"), Some(ALLOWED));
    assert_eq!(ok.header("access-control-allow-credentials"), Some("true"));
    // A look-alike, another scheme or port, a subdomain, and `null` are all foreign.
    for foreign in [
        "https://evil.example",
        "http://app.example.com",
        "https://app.example.com:8443",
        "https://x.app.example.com",
        "null",
    ] {
        let r = TestApp::send(get_from(&app, "/healthz", foreign)).await;
        assert_eq!(r.status, 200);
        // (tower-http sends `Access-Control-Allow-Credentials` whatever the origin: without an
        // allowed origin beside it, a browser lets the page read nothing.)
        assert_eq!(r.header("access-control-allow-origin"), None, "{foreign} may read the answer");
    }
}

#[tokio::test]
async fn a_preflight_is_answered_for_an_allowed_origin_only() {
    let app = cors_app().await;
    let preflight = |origin: &str| {
        app.request(Method::OPTIONS, "/auth/login")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type, x-csrf-token")
    };
    let allowed = TestApp::send(preflight(ALLOWED)).await;
    assert!(allowed.status < 300, "{}", allowed.status);
    assert_eq!(allowed.header("access-control-allow-origin"), Some(ALLOWED));
    let methods = allowed.header("access-control-allow-methods").unwrap_or_default().to_ascii_uppercase();
    assert!(methods.contains("POST"), "{methods}");
    let headers = allowed.header("access-control-allow-headers").unwrap_or_default().to_ascii_lowercase();
    assert!(headers.contains("x-csrf-token") && headers.contains("content-type"), "{headers}");
    let foreign = TestApp::send(preflight("https://evil.example")).await;
    assert_eq!(foreign.header("access-control-allow-origin"), None);
}

/// A browser page on an allowed origin can read a refused login's 429 and when to retry: the
/// refusal carries the CORS headers and exposes `Retry-After` and the `RateLimit` headers.
#[tokio::test]
async fn an_allowed_origin_can_read_a_429_and_when_to_retry() {
    let app = cors_app().await;
    let login = || {
        app.request(Method::POST, "/auth/login")
            .header("origin", ALLOWED)
            .json(&json!({ "email": "nobody@example.com", "password": OTHER_STRONG_PASSWORD }))
    };
    TestApp::send(login()).await.assert_problem(401);
    let refused = TestApp::send(login()).await;
    refused.assert_problem(429);
    assert_eq!(refused.header("access-control-allow-origin"), Some(ALLOWED));
    let exposed = refused.header("access-control-expose-headers").unwrap_or_default().to_ascii_lowercase();
    for name in ["retry-after", "ratelimit", "ratelimit-policy", "x-request-id"] {
        assert!(exposed.split(',').any(|h| h.trim() == name), "{name} not exposed: {exposed}");
    }
}

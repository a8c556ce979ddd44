//! `/openapi.json` describes what the server really does: schemathesis (PyPI) generates requests
//! from it against the running server, as an authenticated user, and checks that no response is a
//! 5xx and every response matches the documented schema and content type.

use std::process::Command;

use serde_json::json;

use crate::helpers::*;
use crate::resources::{RESOURCES, user};

#[tokio::test]
async fn the_document_covers_every_route_and_resource() {
    let app = TestApp::builder().toml(RESOURCES).spawn().await;
    let r = app.get("/openapi.json").await;
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert_eq!(doc["openapi"], json!("3.1.0"));
    for path in [
        "/healthz",
        "/readyz",
        "/openapi.json",
        "/.well-known/jwks.json",
        "/auth/register",
        "/auth/login",
        "/auth/token",
        "/auth/revoke",
        "/auth/logout",
        "/auth/csrf",
        "/auth/me",
        "/auth/sessions",
        "/auth/sessions/{id}",
        "/auth/password/change",
        "/auth/password/forgot",
        "/auth/password/reset",
        "/auth/email/verify",
        "/auth/mfa/verify",
        "/auth/mfa/totp/setup",
        "/auth/mfa/totp/enable",
        "/auth/mfa/totp/disable",
        "/admin/users",
        "/admin/users/{id}",
        "/admin/users/{id}/mfa/reset",
        "/admin/audit",
        "/api/orders",
        "/api/orders/{id}",
        "/api/things",
        "/api/things/{id}",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is not documented");
    }
    let order = &doc["components"]["schemas"]["Orders"];
    assert_eq!(
        order["properties"]["quantity"],
        json!({ "type": "integer", "format": "int64", "minimum": 1, "maximum": 10000 })
    );
    assert_eq!(order["properties"]["note"]["type"], json!(["string", "null"]));
    let create = &doc["components"]["schemas"]["OrdersCreate"];
    assert_eq!(create["additionalProperties"], json!(false));
    assert!(create["properties"].get("user_id").is_none() && create["properties"].get("id").is_none());
    assert_eq!(create["required"], json!(["item", "quantity"]));
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let app = TestApp::builder().toml(RESOURCES).spawn().await;
    let alice = user(&app).await;
    let out = Command::new("schemathesis")
        .args([
            "run",
            &app.url("/openapi.json"),
            "--url",
            &app.base,
            "--checks",
            "not_a_server_error,response_schema_conformance,content_type_conformance",
            "--max-examples",
            "12",
            "--seed",
            "20261122",
            "--header",
            &format!("Authorization: Bearer {}", alice.token),
            // Logging out or revoking would end the session the run authenticates with.
            "--exclude-path",
            "/auth/logout",
            "--exclude-path",
            "/auth/revoke",
            "--request-timeout",
            "10",
        ])
        .env("NO_COLOR", "1")
        .output()
        .expect("schemathesis is needed (scripts/test installs it from scripts/requirements-test.txt)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tail: String =
        stdout.lines().rev().take(60).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
    assert!(out.status.success(), "schemathesis found problems:\n{tail}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("passed"), "{tail}");
    // The server really was exercised: hundreds of cases across the operations.
    let generated = stdout.lines().find_map(|l| {
        l.trim().strip_suffix(" passed").and_then(|l| l.split_whitespace().next()).and_then(|n| n.parse::<u32>().ok())
    });
    assert!(generated.unwrap_or(0) >= 100, "too few cases ran:\n{tail}");
}

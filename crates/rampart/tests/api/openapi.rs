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
        "/auth/mfa/passkey/start",
        "/auth/passkeys",
        "/auth/passkeys/{id}",
        "/auth/passkeys/register/start",
        "/auth/passkeys/register/finish",
        "/auth/passkeys/login/start",
        "/auth/passkeys/login/finish",
        "/admin/users",
        "/admin/users/{id}",
        "/admin/users/{id}/mfa/reset",
        "/admin/users/{id}/sessions",
        "/admin/audit",
        "/auth/api-keys",
        "/auth/api-keys/{id}",
        "/auth/api-keys/{id}/rotate",
        "/admin/service-accounts",
        "/admin/users/{id}/api-keys",
        "/admin/api-keys",
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
    // An audit event says how a login was made: always present, one of the methods or null.
    let event = &doc["components"]["schemas"]["AuditEvent"];
    assert_eq!(
        event["properties"]["method"]["enum"],
        json!(["password", "password+totp", "password+recovery_code", "password+passkey", "passkey", null])
    );
    assert!(event["required"].as_array().unwrap().contains(&json!("method")), "{event}");
}

/// Where a well-formed request may still be a 400 for a reason JSON Schema cannot say: a mailed or
/// refresh token that does not exist (invalid-token / invalid_grant), a new password that zxcvbn
/// finds too easy to guess, a list cursor that is not one the server sealed, a passkey
/// `challenge_id` that no ceremony started (invalid-passkey-challenge) or a credential whose
/// binary contents webauthn-rs cannot read, an API key narrowed to a role its owner does not have
/// (the document cannot know the caller's roles). Everywhere else, a
/// request the document allows must not be a 400.
const ACCEPTANCE: &str = r#"
[[operations]]
include-path-regex = "^/(auth/(register|token|email/verify|password/(change|reset)|passkeys/(register|login)/finish|api-keys)|api/[a-z_]+)$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429"]
"#;

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let app = TestApp::builder().toml(RESOURCES).spawn().await;
    let alice = user(&app).await;
    // One scheme only (bearer): the cookie scheme is documented too, and a request carrying both is
    // a 400 by contract, so schemathesis must not fill both in.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("schemathesis.toml");
    std::fs::write(&config, format!("[auth.openapi.bearerAuth]\nbearer = \"{}\"\n{ACCEPTANCE}", alice.token)).unwrap();
    let out = Command::new("schemathesis")
        .arg("--config-file")
        .arg(&config)
        .args([
            "run",
            &app.url("/openapi.json"),
            "--url",
            &app.base,
            // Every check, positive data acceptance and negative data rejection included.
            "--checks",
            "all",
            "--max-examples",
            "12",
            "--seed",
            "20261122",
            // Logging out would end the session the run authenticates with.
            "--exclude-path",
            "/auth/logout",
            "--request-timeout",
            "10",
        ])
        .env("NO_COLOR", "1")
        .output()
        .expect("schemathesis is needed (scripts/test installs it from scripts/requirements-test.txt)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tail: String =
        stdout.lines().rev().take(150).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
    assert!(out.status.success(), "schemathesis found problems:\n{tail}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("passed"), "{tail}");
    // The server really was exercised: "N generated, ..." in the summary, across the operations.
    let generated =
        stdout.lines().find_map(|l| l.trim().split_once(" generated").and_then(|(n, _)| n.trim().parse::<u32>().ok()));
    assert!(generated.unwrap_or(0) >= 1000, "too few cases ran:\n{tail}");
}

#[tokio::test]
async fn revoke_refuses_a_token_type_hint_that_is_not_a_string() {
    // The document says a string; a null or a number must not be read as "no hint".
    let app = TestApp::builder().spawn().await;
    for hint in [json!(null), json!(1), json!(["refresh_token"])] {
        let r = app.post_json("/auth/revoke", &json!({ "refresh_token": "x", "token_type_hint": hint })).await;
        assert_eq!(r.status, 400, "{hint}: {}", r.text());
    }
    let r = app.post_json("/auth/revoke", &json!({ "refresh_token": "x", "token_type_hint": "refresh_token" })).await;
    assert_eq!(r.status, 204, "{}", r.text());
}

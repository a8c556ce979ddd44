//! Records belong to one caller: no `/api/*` answer may be kept by a shared cache or the
//! browser's, whether it carries a record or says why not (a 404 or 403 tells whether a record
//! exists for someone).

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;
use crate::resources::{call, spawn, user};

#[tokio::test]
async fn every_api_response_is_private_and_not_stored() {
    let app = spawn().await;
    let alice = user(&app).await;
    let bob = user(&app).await;
    let created = call(&app, &alice, Method::POST, "/api/orders", Some(json!({ "item": "tea", "quantity": 1 }))).await;
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let record = format!("/api/orders/{id}");

    let answers = [
        ("create", created),
        ("list", call(&app, &alice, Method::GET, "/api/orders", None).await),
        ("read", call(&app, &alice, Method::GET, &record, None).await),
        ("update", call(&app, &alice, Method::PATCH, &record, Some(json!({ "quantity": 2 }))).await),
        ("another user's record", call(&app, &bob, Method::GET, &record, None).await),
        ("forbidden delete", call(&app, &alice, Method::DELETE, &record, None).await),
        ("invalid body", call(&app, &alice, Method::POST, "/api/orders", Some(json!({ "quantity": 0 }))).await),
        ("bad query", call(&app, &alice, Method::GET, "/api/orders?sort=nope", None).await),
        ("unknown resource", call(&app, &alice, Method::GET, "/api/nothing", None).await),
        ("anonymous", app.get("/api/orders").await),
        ("the bare prefix", app.get("/api").await),
        ("wrong method", TestApp::send(app.request(Method::PUT, &record).bearer_auth(&alice.token)).await),
    ];
    let statuses: Vec<u16> = answers.iter().map(|(_, r)| r.status).collect();
    assert_eq!(statuses, [201, 200, 200, 200, 404, 403, 400, 400, 404, 401, 404, 405], "the cases are what they say");
    for (what, r) in &answers {
        let values: Vec<&str> = r.headers.get_all("cache-control").iter().filter_map(|v| v.to_str().ok()).collect();
        assert_eq!(values, ["private, no-store"], "{what} ({})", r.status);
    }
    // Outside /api the rule does not leak onto public documents (the JWKS is meant to be cached).
    assert_eq!(app.get("/.well-known/jwks.json").await.header("cache-control"), Some("public, max-age=60"));
    assert_eq!(app.get("/apix").await.header("cache-control"), None);
}

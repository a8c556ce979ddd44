//! Declared resources: object-level authorization inside the statement (no BOLA), no mass
//! assignment, strict typed validation, injection-proof filters and sort, keyset pagination.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// docs/configuration.md's example `orders`, plus a resource with every field type.
pub const RESOURCES: &str = r#"
[resources.orders]
owner = "user_id"
fields.item     = { type = "string",  min_len = 1, max_len = 200 }
fields.quantity = { type = "integer", min = 1, max = 10000 }
fields.note     = { type = "string",  max_len = 2000, optional = true }
fields.status   = { type = "enum", values = ["pending", "paid", "shipped"], default = "pending", write = "role:admin" }
access.list   = "owner | role:admin | role:manager"
access.read   = "owner | role:admin | role:manager"
access.create = "authenticated"
access.update = "owner | role:admin"
access.delete = "role:admin"

[resources.things]
owner = "owner_id"
fields.code   = { type = "string", min_len = 2, max_len = 8, pattern = "[A-Z]+-[0-9]+" }
fields.count  = { type = "integer", min = 0, max = 10 }
fields.ratio  = { type = "number", min = 0.0, max = 1.0 }
fields.active = { type = "boolean" }
fields.kind   = { type = "enum", values = ["a", "b"] }
fields.due    = { type = "timestamp" }
fields.ref    = { type = "uuid" }
fields.secret = { type = "string", max_len = 50, optional = true, read = "role:admin" }
access.list   = "owner"
access.read   = "owner"
access.create = "authenticated"
access.update = "owner"
access.delete = "owner"
"#;

pub async fn spawn() -> TestApp {
    TestApp::builder().toml(RESOURCES).spawn().await
}

pub async fn user(app: &TestApp) -> TestUser {
    app.registered_user().await
}

pub async fn with_role(app: &TestApp, role: &str) -> TestUser {
    app.user_with_role(role).await
}

pub async fn call(app: &TestApp, who: &TestUser, method: Method, path: &str, body: Option<Value>) -> Resp {
    let mut rb = app.request(method, path).bearer_auth(&who.token);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    TestApp::send(rb).await
}

async fn order(app: &TestApp, who: &TestUser, item: &str) -> Value {
    let r = call(app, who, Method::POST, "/api/orders", Some(json!({ "item": item, "quantity": 2 }))).await;
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

async fn snapshot(app: &TestApp, table: &str) -> Vec<String> {
    let pool = app.db().await;
    let rows: Vec<(String,)> = sqlx::query_as(&format!(
        "SELECT id || '|' || item || '|' || quantity || '|' || status || '|' || updated_at FROM {table} ORDER BY id"
    ))
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows.into_iter().map(|r| r.0).collect()
}

#[tokio::test]
async fn cross_user_access_is_404_and_changes_nothing() {
    let app = spawn().await;
    let (alice, bob) = (user(&app).await, user(&app).await);
    let admin = with_role(&app, "admin").await;
    let a = order(&app, &alice, "alice's").await;
    let b = order(&app, &bob, "bob's").await;
    assert_eq!(a["user_id"], json!(alice.id), "the server sets the owner");
    assert_eq!(a["status"], json!("pending"));
    let a_path = format!("/api/orders/{}", a["id"].as_str().unwrap());
    let before = snapshot(&app, "res_orders").await;
    let audit_before = app.count("audit_log WHERE action = 'authz_denied'").await;

    // Bob against Alice's order: read, update, delete — all 404, exactly like a missing id.
    let missing = format!("/api/orders/{}", uuid::Uuid::new_v4());
    for (method, body) in
        [(Method::GET, None), (Method::PATCH, Some(json!({ "item": "pwned" }))), (Method::DELETE, None)]
    {
        let r = call(&app, &bob, method.clone(), &a_path, body.clone()).await;
        r.assert_problem(404);
        let ghost = call(&app, &bob, method.clone(), &missing, body).await;
        assert_eq!(ghost.body, r.body, "{method}: a foreign record must look exactly like a missing one");
    }
    assert_eq!(snapshot(&app, "res_orders").await, before, "a denied request changed data");
    // Denials are written off the response path (issue 11): give the writer a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while app.count("audit_log WHERE action = 'authz_denied'").await < audit_before + 3
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(app.count("audit_log WHERE action = 'authz_denied'").await, audit_before + 3, "denials are audited");
    let pool = app.db().await;
    let (actor, target): (Option<String>, Option<String>) = sqlx::query_as(
        "SELECT actor_id, target FROM audit_log WHERE action = 'authz_denied' ORDER BY seq DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(actor.as_deref(), Some(bob.id.as_str()));
    assert_eq!(target, Some(format!("orders/{}", a["id"].as_str().unwrap())));

    // Lists hold only the caller's rows; the admin sees everything.
    let items = |r: Resp| r.json()["items"].as_array().unwrap().iter().map(|i| i["id"].clone()).collect::<Vec<_>>();
    assert_eq!(items(call(&app, &alice, Method::GET, "/api/orders", None).await), vec![a["id"].clone()]);
    assert_eq!(items(call(&app, &bob, Method::GET, "/api/orders", None).await), vec![b["id"].clone()]);
    let all = items(call(&app, &admin, Method::GET, "/api/orders", None).await);
    assert!(all.contains(&a["id"]) && all.contains(&b["id"]));
    // Even asking for Alice's rows by owner filter gives Bob nothing of hers.
    let r = call(&app, &bob, Method::GET, &format!("/api/orders?user_id={}", alice.id), None).await;
    assert_eq!(r.json()["items"], json!([]));

    // The owner may update; the admin may read and delete anyone's.
    let r = call(&app, &alice, Method::PATCH, &a_path, Some(json!({ "quantity": 3 }))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["quantity"], json!(3));
    assert_eq!(call(&app, &admin, Method::GET, &a_path, None).await.status, 200);
    assert_eq!(call(&app, &admin, Method::DELETE, &a_path, None).await.status, 204);
    assert_eq!(call(&app, &alice, Method::GET, &a_path, None).await.status, 404);
}

#[tokio::test]
async fn seeing_a_record_but_not_being_allowed_the_action_is_403() {
    let app = spawn().await;
    let alice = user(&app).await;
    let manager = with_role(&app, "manager").await;
    let a = order(&app, &alice, "thing").await;
    let path = format!("/api/orders/{}", a["id"].as_str().unwrap());
    // Only admins delete: the owner can see the order, so she is told "you may not".
    call(&app, &alice, Method::DELETE, &path, None).await.assert_problem(403);
    // A manager reads everyone's orders but updates none.
    assert_eq!(call(&app, &manager, Method::GET, &path, None).await.status, 200);
    call(&app, &manager, Method::PATCH, &path, Some(json!({ "item": "changed" }))).await.assert_problem(403);
    assert_eq!(call(&app, &alice, Method::GET, &path, None).await.json()["item"], json!("thing"));
    // Anonymous: who are you?
    let r = TestApp::send(app.request(Method::GET, &path)).await;
    r.assert_problem(401);
    let r = TestApp::send(app.request(Method::POST, "/api/orders").json(&json!({ "item": "x", "quantity": 1 }))).await;
    r.assert_problem(401);
    assert_eq!(app.count("res_orders").await, 1);
}

#[tokio::test]
async fn mass_assignment_is_refused_and_stores_nothing() {
    let app = spawn().await;
    let (alice, bob) = (user(&app).await, user(&app).await);
    let admin = with_role(&app, "admin").await;
    let a = order(&app, &alice, "mine").await;
    let path = format!("/api/orders/{}", a["id"].as_str().unwrap());
    let cases = [
        ("id", json!(uuid::Uuid::new_v4().to_string())),
        ("user_id", json!(bob.id)),
        ("created_at", json!("2020-01-01T00:00:00Z")),
        ("updated_at", json!("2020-01-01T00:00:00Z")),
        ("status", json!("shipped")),
        ("is_admin", json!(true)),
    ];
    for (field, value) in &cases {
        let mut body = json!({ "item": "x", "quantity": 1 });
        body[*field] = value.clone();
        let r = call(&app, &alice, Method::POST, "/api/orders", Some(body)).await;
        r.assert_problem(400);
        assert!(r.error_fields().contains(&(*field).to_owned()), "{field}: {}", r.text());
        let r = call(&app, &alice, Method::PATCH, &path, Some(json!({ *field: value.clone() }))).await;
        r.assert_problem(400);
        assert_eq!(r.error_fields(), vec![(*field).to_owned()]);
    }
    assert_eq!(app.count("res_orders").await, 1, "nothing stored");
    let now = call(&app, &alice, Method::GET, &path, None).await.json();
    assert_eq!(now, a, "nothing changed");
    // The matching legitimate requests: the admin may set status; the owner may set note.
    let r = call(&app, &admin, Method::PATCH, &path, Some(json!({ "status": "shipped" }))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], json!("shipped"));
    let r = call(&app, &alice, Method::PATCH, &path, Some(json!({ "note": "leave at door" }))).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn every_field_type_validates_and_names_the_field() {
    let app = spawn().await;
    let alice = user(&app).await;
    let valid = json!({
        "code": "AB-12", "count": 3, "ratio": 0.5, "active": true, "kind": "a",
        "due": "2030-01-02T03:04:05Z", "ref": uuid::Uuid::new_v4().to_string(),
    });
    let r = call(&app, &alice, Method::POST, "/api/things", Some(valid.clone())).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["due"], json!("2030-01-02T03:04:05Z"));
    let bad: &[(&str, Value)] = &[
        ("code", json!("ab-12")),
        ("code", json!("A")),
        ("code", json!("ABCDEFG-12")),
        ("code", json!(12)),
        ("count", json!(11)),
        ("count", json!(-1)),
        ("count", json!(1.5)),
        ("count", json!("3")),
        ("count", json!({ "$gt": 0 })),
        ("count", json!([1])),
        ("ratio", json!(1.5)),
        ("ratio", json!("0.5")),
        ("active", json!("true")),
        ("active", json!(1)),
        ("kind", json!("c")),
        ("kind", json!(["a"])),
        ("due", json!("tomorrow")),
        ("due", json!(1_700_000_000)),
        ("ref", json!("not-a-uuid")),
        ("ref", json!(null)),
        ("code", json!({ "$ne": null })),
    ];
    for (field, value) in bad {
        let mut body = valid.clone();
        body[*field] = value.clone();
        let r = call(&app, &alice, Method::POST, "/api/things", Some(body)).await;
        r.assert_problem(400);
        assert_eq!(r.error_fields(), vec![(*field).to_owned()], "{field}={value}: {}", r.text());
    }
    // A missing required field is named too; several problems are all named.
    let r = call(&app, &alice, Method::POST, "/api/things", Some(json!({ "code": "AB-1" }))).await;
    let fields = r.error_fields();
    for f in ["count", "ratio", "active", "kind", "due", "ref"] {
        assert!(fields.contains(&f.to_owned()), "{f} not named: {}", r.text());
    }
    assert_eq!(app.count("res_things").await, 1);
    // Field-level read: only admins see `secret`.
    let id = call(&app, &alice, Method::GET, "/api/things", None).await.json()["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = call(&app, &alice, Method::PATCH, &format!("/api/things/{id}"), Some(json!({ "secret": "s3" }))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json().get("secret").is_none(), "a field the caller may not read was returned");
}

#[tokio::test]
async fn filter_and_sort_injection_is_400() {
    let app = spawn().await;
    let alice = user(&app).await;
    for i in 0..3 {
        order(&app, &alice, &format!("item {i}")).await;
    }
    let before = snapshot(&app, "res_orders").await;
    for q in [
        "quantity=1%20OR%201=1",
        "quantity=1'%20OR%20'1'='1",
        "sort=quantity;DROP%20TABLE%20res_orders",
        "sort=quantity%20DESC",
        "sort=nope",
        "nope=1",
        "item__like=%25",
        "status__gt=paid",
        "quantity__gte=abc",
        "limit=101",
        "limit=0",
        "limit=-1",
        "limit=1;DROP",
        "cursor=garbage",
        "limit=1&limit=2",
        "created_at=yesterday",
        "id=1%20OR%201=1",
    ] {
        let r = call(&app, &alice, Method::GET, &format!("/api/orders?{q}"), None).await;
        r.assert_problem(400);
        assert!(!r.error_fields().is_empty() || r.json()["detail"].is_string(), "{q}");
    }
    assert_eq!(snapshot(&app, "res_orders").await, before);
    // The legitimate versions work.
    let r = call(&app, &alice, Method::GET, "/api/orders?quantity=2&sort=-item&status=pending", None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 3);
    let r = call(&app, &alice, Method::GET, "/api/orders?sort=-item", None).await.json();
    let names: Vec<String> =
        r["items"].as_array().unwrap().iter().map(|i| i["item"].as_str().unwrap().to_owned()).collect();
    assert_eq!(names, ["item 2", "item 1", "item 0"]);
    let r = call(&app, &alice, Method::GET, "/api/orders?quantity__gte=3", None).await.json();
    assert_eq!(r["items"], json!([]));
}

#[tokio::test]
async fn pagination_walks_every_row_once() {
    let app = spawn().await;
    let alice = user(&app).await;
    let bob = user(&app).await;
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(order(&app, &alice, &format!("o{i}")).await["id"].as_str().unwrap().to_owned());
        order(&app, &bob, "noise").await;
    }
    for sort in ["", "&sort=-created_at", "&sort=item", "&sort=-quantity"] {
        let mut seen = Vec::new();
        let mut url = format!("/api/orders?limit=3{sort}");
        let mut pages = 0;
        loop {
            let r = call(&app, &alice, Method::GET, &url, None).await;
            assert_eq!(r.status, 200, "{}", r.text());
            let body = r.json();
            let items = body["items"].as_array().unwrap();
            assert!(items.len() <= 3);
            seen.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
            pages += 1;
            match body["next_cursor"].as_str() {
                Some(c) => url = format!("/api/orders?limit=3{sort}&cursor={c}"),
                None => break,
            }
            assert!(pages < 10);
        }
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 7, "{sort}: duplicates or gaps: {seen:?}");
        let mut expected = created.clone();
        expected.sort();
        assert_eq!(sorted, expected);
    }
    // A cursor from one sort order is refused with another.
    let first = call(&app, &alice, Method::GET, "/api/orders?limit=3", None).await.json();
    let c = first["next_cursor"].as_str().unwrap();
    call(&app, &alice, Method::GET, &format!("/api/orders?limit=3&sort=item&cursor={c}"), None)
        .await
        .assert_problem(400);
}

#[tokio::test]
async fn unknown_resources_and_malformed_ids_are_404() {
    let app = spawn().await;
    let alice = user(&app).await;
    call(&app, &alice, Method::GET, "/api/nope", None).await.assert_problem(404);
    call(&app, &alice, Method::GET, "/api/orders/1", None).await.assert_problem(404);
    call(&app, &alice, Method::GET, "/api/orders/1%20OR%201=1", None).await.assert_problem(404);
    call(&app, &alice, Method::GET, "/api/users", None).await.assert_problem(404);
    let r = call(&app, &alice, Method::POST, "/api/orders", Some(json!([1, 2]))).await;
    r.assert_problem(400);
}

#[tokio::test]
async fn lossy_schema_changes_are_refused_additive_ones_applied() {
    let mut app = spawn().await;
    let alice = user(&app).await;
    order(&app, &alice, "kept").await;
    let dir = app.dir.clone();
    app.stop();

    // Removing a field would lose its data: refused, with an explanation, nothing changed.
    let without_note =
        RESOURCES.replace("fields.note     = { type = \"string\",  max_len = 2000, optional = true }\n", "");
    let cfg = dir.path().join("lossy.toml");
    let base = std::fs::read_to_string(
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "toml"))
            .unwrap(),
    )
    .unwrap();
    let base = base.split("[resources.orders]").next().unwrap().to_owned();
    std::fs::write(&cfg, format!("{base}{without_note}")).unwrap();
    let (code, _, err) = run_cli(&["migrate", "--config", cfg.to_str().unwrap()], None, dir.path(), &[]);
    assert_ne!(code, 0);
    assert!(err.contains("note") && err.contains("lose"), "{err}");
    // A kind change likewise.
    let retyped = RESOURCES.replace(
        "fields.quantity = { type = \"integer\", min = 1, max = 10000 }",
        "fields.quantity = { type = \"string\", max_len = 10 }",
    );
    std::fs::write(&cfg, format!("{base}{retyped}")).unwrap();
    let (code, _, err) = run_cli(&["migrate", "--config", cfg.to_str().unwrap()], None, dir.path(), &[]);
    assert_ne!(code, 0);
    assert!(err.contains("quantity") && err.contains("kind"), "{err}");

    // Adding an optional field is applied, and the old row is still there.
    let added = RESOURCES.replace(
        "access.list   = \"owner | role:admin | role:manager\"",
        "fields.gift = { type = \"boolean\", optional = true }\naccess.list   = \"owner | role:admin | role:manager\"",
    );
    std::fs::write(&cfg, format!("{base}{added}")).unwrap();
    let (code, out, err) = run_cli(&["migrate", "--config", cfg.to_str().unwrap()], None, dir.path(), &[]);
    assert_eq!(code, 0, "{out}{err}");
    // The stopped server's database, whichever the backend (the migrations above ran on it too).
    let pool = app.db().await;
    let (n, gifts): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COUNT(gift) FROM res_orders").fetch_one(&pool).await.unwrap();
    assert_eq!((n, gifts), (1, 0), "one row, and no value in the new column");
}

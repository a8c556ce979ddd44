//! API keys and service accounts (issue 15): a key is stored hashed, shown once, owned by the
//! caller whatever the body says, never more than its owner now is, refused on every
//! credential-management and admin route, dead at once when revoked, expired, rotated out or
//! its owner locked, demoted or deleted (on every instance), and has its own budget.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::resources::RESOURCES;

async fn spawn() -> TestApp {
    TestApp::builder().toml(RESOURCES).spawn().await
}

/// A request with a bearer credential (a JWT or an API key) and an optional JSON body.
async fn call(app: &TestApp, bearer: &str, method: Method, path: &str, body: Option<&Value>) -> Resp {
    let mut rb = app.request(method, path).bearer_auth(bearer);
    if let Some(b) = body {
        rb = rb.json(b);
    }
    TestApp::send(rb).await
}

/// Creates a key as `who` (through their access token); returns the whole 201 body.
async fn new_key(app: &TestApp, who: &TestUser, body: Value) -> Value {
    let r = call(app, &who.token, Method::POST, "/auth/api-keys", Some(&body)).await;
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

fn key_of(created: &Value) -> String {
    created["key"].as_str().unwrap().to_owned()
}

async fn order(app: &TestApp, bearer: &str) -> String {
    let r = call(app, bearer, Method::POST, "/api/orders", Some(&json!({ "item": "x", "quantity": 1 }))).await;
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_str().unwrap().to_owned()
}

fn assert_key_refused(r: &Resp) {
    r.assert_problem(401);
    assert!(r.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")), "{:?}", r.headers);
}

#[tokio::test]
async fn a_key_is_shown_once_stored_hashed_and_never_listed_or_logged() {
    let app = spawn().await;
    let alice = app.registered_user().await;
    let created = new_key(&app, &alice, json!({ "name": "ci" })).await;
    let key = key_of(&created);
    assert!(key.starts_with("rpk_") && key.len() == 4 + 32 + 1 + 43, "{key}");
    for field in ["id", "name", "key", "prefix", "roles", "scopes", "expires_at", "created_at"] {
        assert!(created.get(field).is_some(), "{field} missing: {created}");
    }
    assert_eq!(created.as_object().unwrap().len(), 8, "exactly the contract's fields: {created}");
    assert_eq!(created["roles"], json!(["user"]));
    assert!(key.starts_with(created["prefix"].as_str().unwrap()));

    // The key works, as its owner.
    let me = call(&app, &key, Method::GET, "/auth/me", None).await;
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["id"], json!(alice.id));
    // A wrong secret for the same id is refused, and its text is not logged either.
    let forged = format!("{}{}", &key[..key.len() - 4], if key.ends_with("AAAA") { "BBBB" } else { "AAAA" });
    assert_key_refused(&call(&app, &forged, Method::GET, "/auth/me", None).await);

    // Listed without the secret; the use is recorded (off the request path: poll).
    let deadline = Instant::now() + Duration::from_secs(5);
    let listed = loop {
        let r = call(&app, &alice.token, Method::GET, "/auth/api-keys", None).await;
        assert_eq!(r.status, 200);
        let item = r.json()[0].clone();
        if !item["last_used_at"].is_null() || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let item = &listed.json()[0];
    assert_eq!(item["id"], created["id"]);
    assert_eq!(item["last_used_ip"], json!("127.0.0.1"), "{item}");
    assert!(item["last_used_at"].is_string(), "{item}");
    assert!(item.get("key").is_none(), "{item}");
    let secret = &key[4 + 32 + 1..];
    assert!(!listed.text().contains(secret), "the list carries the secret");

    // Stored as a hash: neither the key nor its secret is anywhere in the database.
    let pool = app.db().await;
    let (hash, life): (String, i64) =
        sqlx::query_as("SELECT secret_hash, expires_at - created_at FROM api_keys WHERE id = $1")
            .bind(created["id"].as_str().unwrap())
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    assert_eq!(hash.len(), 64, "a SHA-256 in hex");
    assert_eq!(life, 90 * 86_400_000, "the default life is 90 days");
    let bytes = app.db_file_bytes().await;
    assert!(!contains_bytes(&bytes, secret.as_bytes()), "the key's secret is stored in clear");
    // Nor in any log line, including the refused forgery's.
    let logs = app.logs_settled().await;
    assert!(!logs.contains(secret), "the key reached the logs");
    assert!(!logs.contains(&forged[4 + 32 + 1..]), "a presented key reached the logs");
    assert_eq!(app.audit_count("api_key_created").await, 1);
}

#[tokio::test]
async fn the_owner_is_always_the_caller_and_narrowing_cannot_widen() {
    let app = spawn().await;
    let alice = app.registered_user().await;
    let bob = app.registered_user().await;
    // CVE-2025-61928 class: a user id in the body is refused, never used.
    for body in [
        json!({ "name": "k", "user_id": bob.id }),
        json!({ "name": "k", "userId": bob.id }),
        json!({ "name": "k", "owner": bob.id }),
    ] {
        let r = call(&app, &alice.token, Method::POST, "/auth/api-keys", Some(&body)).await;
        r.assert_problem(400);
    }
    // Without any credential, nothing is minted for anyone.
    let anon = app.post_json("/auth/api-keys", &json!({ "name": "k", "user_id": bob.id })).await;
    assert_eq!(anon.status, 401, "{}", anon.text());
    assert_eq!(app.count("api_keys").await, 0);

    // Narrowing: only the caller's own roles, only declared resources and verbs, bounded expiry.
    let cases = [
        (json!({ "name": "k", "roles": ["admin"] }), "roles"),
        (json!({ "name": "k", "roles": [] }), "roles"),
        (json!({ "name": "k", "scopes": [{ "resource": "users", "actions": ["read"] }] }), "scopes[0].resource"),
        (json!({ "name": "k", "scopes": [{ "resource": "orders", "actions": ["drop"] }] }), "scopes[0].actions"),
        (json!({ "name": "k", "scopes": [{ "resource": "orders", "actions": [] }] }), "scopes[0].actions"),
        (json!({ "name": "k", "expires_in_days": 366 }), "expires_in_days"),
        (json!({ "name": "k", "expires_in_days": 0 }), "expires_in_days"),
        (json!({ "name": "" }), "name"),
        // `null` is not "left out": it would read as "not narrowed".
        (json!({ "name": "k", "roles": null }), "roles"),
        (json!({ "name": "k", "scopes": null }), "scopes"),
    ];
    for (body, field) in cases {
        let r = call(&app, &alice.token, Method::POST, "/auth/api-keys", Some(&body)).await;
        r.assert_problem(400);
        assert!(r.error_fields().iter().any(|f| f == field), "{body}: {}", r.text());
    }
    assert_eq!(app.count("api_keys").await, 0, "a refused request stored nothing");

    // A key made by a signed-in user is theirs, through a cookie session as through a token.
    let r =
        app.send_as(Method::POST, "/auth/api-keys", &alice.session, Some(&json!({ "name": "from the browser" }))).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let key = key_of(&r.json());
    assert_eq!(call(&app, &key, Method::GET, "/auth/me", None).await.json()["id"], json!(alice.id));
    // Bob neither sees, revokes nor rotates Alice's key: 404, as for a key that does not exist.
    let id = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(call(&app, &bob.token, Method::GET, "/auth/api-keys", None).await.json(), json!([]));
    call(&app, &bob.token, Method::DELETE, &format!("/auth/api-keys/{id}"), None).await.assert_problem(404);
    call(&app, &bob.token, Method::POST, &format!("/auth/api-keys/{id}/rotate"), Some(&json!({})))
        .await
        .assert_problem(404);
    assert_eq!(call(&app, &key, Method::GET, "/auth/me", None).await.status, 200);
}

#[tokio::test]
async fn no_credential_management_or_admin_route_answers_to_a_key() {
    let app = spawn().await;
    // An admin's key: if any of these let a key through, this one would be the dangerous one.
    let admin = app.user_with_role("admin").await;
    let key = key_of(&new_key(&app, &admin, json!({ "name": "admin's" })).await);
    let someone = uuid::Uuid::new_v4();
    let routes: Vec<(Method, String)> = vec![
        (Method::POST, "/auth/api-keys".into()),
        (Method::GET, "/auth/api-keys".into()),
        (Method::DELETE, format!("/auth/api-keys/{someone}")),
        (Method::POST, format!("/auth/api-keys/{someone}/rotate")),
        (Method::PATCH, "/auth/me".into()),
        (Method::POST, "/auth/logout".into()),
        (Method::GET, "/auth/csrf".into()),
        (Method::GET, "/auth/sessions".into()),
        (Method::DELETE, format!("/auth/sessions/{someone}")),
        (Method::POST, "/auth/password/change".into()),
        (Method::POST, "/auth/mfa/totp/setup".into()),
        (Method::POST, "/auth/mfa/totp/enable".into()),
        (Method::POST, "/auth/mfa/totp/disable".into()),
        (Method::POST, "/auth/token".into()),
        (Method::POST, "/auth/login".into()),
        (Method::GET, "/admin/users".into()),
        (Method::GET, format!("/admin/users/{}", admin.id)),
        (Method::PATCH, format!("/admin/users/{someone}")),
        (Method::DELETE, format!("/admin/users/{someone}")),
        (Method::POST, format!("/admin/users/{someone}/mfa/reset")),
        (Method::DELETE, format!("/admin/users/{someone}/sessions")),
        (Method::GET, "/admin/audit".into()),
        (Method::POST, "/admin/service-accounts".into()),
        (Method::POST, format!("/admin/users/{someone}/api-keys")),
        (Method::GET, "/admin/api-keys".into()),
    ];
    let body = json!({ "name": "entrench", "roles": ["admin"], "current_password": STRONG_PASSWORD,
        "new_password": OTHER_STRONG_PASSWORD, "email": admin.email, "password": STRONG_PASSWORD });
    for (method, path) in routes {
        let r = call(&app, &key, method.clone(), &path, Some(&body)).await;
        assert_eq!(r.status, 403, "{method} {path} answered a key: {}", r.text());
    }
    assert_eq!(app.count("api_keys").await, 1, "the key minted nothing");
    // The same routes still work for the admin's own login.
    assert_eq!(call(&app, &admin.token, Method::GET, "/admin/users", None).await.status, 200);
    assert_eq!(call(&app, &key, Method::GET, "/auth/me", None).await.status, 200);
}

/// What a caller gets for each verb on their own record, another user's record, a list, a create
/// and the admin-only delete: the statuses, in a fixed order.
async fn matrix(app: &TestApp, bearer: &str, own: &str, others: &str) -> Vec<(String, u16)> {
    let patch = json!({ "note": "changed" });
    let mut out = Vec::new();
    let mut put = |name: &str, r: Resp| out.push((name.to_owned(), r.status));
    put("list", call(app, bearer, Method::GET, "/api/orders", None).await);
    put("read own", call(app, bearer, Method::GET, &format!("/api/orders/{own}"), None).await);
    put("read other's", call(app, bearer, Method::GET, &format!("/api/orders/{others}"), None).await);
    put("update own", call(app, bearer, Method::PATCH, &format!("/api/orders/{own}"), Some(&patch)).await);
    put("update other's", call(app, bearer, Method::PATCH, &format!("/api/orders/{others}"), Some(&patch)).await);
    put("create", call(app, bearer, Method::POST, "/api/orders", Some(&json!({ "item": "m", "quantity": 1 }))).await);
    put("delete other's", call(app, bearer, Method::DELETE, &format!("/api/orders/{others}"), None).await);
    out
}

fn status_of(m: &[(String, u16)], name: &str) -> u16 {
    m.iter().find(|(n, _)| n == name).map(|(_, s)| *s).unwrap()
}

#[tokio::test]
async fn through_a_key_a_caller_has_exactly_their_rights_or_fewer() {
    let app = spawn().await;
    let alice = app.registered_user().await;
    let manager = app.user_with_role("manager").await;
    let admin = app.user_with_role("admin").await;
    let victim = app.registered_user().await;
    for who in [&alice, &manager, &admin] {
        // An unnarrowed key: the same answers as the owner's own token, verb by verb.
        let key = key_of(&new_key(&app, who, json!({ "name": "full" })).await);
        let (own_a, theirs_a) = (order(&app, &who.token).await, order(&app, &victim.token).await);
        let (own_b, theirs_b) = (order(&app, &who.token).await, order(&app, &victim.token).await);
        let by_token = matrix(&app, &who.token, &own_a, &theirs_a).await;
        let by_key = matrix(&app, &key, &own_b, &theirs_b).await;
        assert_eq!(by_key, by_token, "{}: a key must answer as its owner's login", who.email);

        // Narrowed to reading: every write is 403 (the same for every id), reads as before.
        let reader = key_of(
            &new_key(
                &app,
                who,
                json!({ "name": "ro", "scopes": [{ "resource": "orders", "actions": ["read", "list"] }] }),
            )
            .await,
        );
        let (own_c, theirs_c) = (order(&app, &who.token).await, order(&app, &victim.token).await);
        let narrowed = matrix(&app, &reader, &own_c, &theirs_c).await;
        for verb in ["list", "read own", "read other's"] {
            assert_eq!(status_of(&narrowed, verb), status_of(&by_token, verb), "{verb}: {narrowed:?}");
        }
        for verb in ["update own", "update other's", "create", "delete other's"] {
            assert_eq!(status_of(&narrowed, verb), 403, "{verb} through a read-only key: {narrowed:?}");
        }
        // Records are unchanged by the refused writes.
        let r = call(&app, &who.token, Method::GET, &format!("/api/orders/{own_c}"), None).await;
        assert!(r.json()["note"].is_null(), "{}", r.text());
    }
    // Another user's record through a key answers exactly what it answers through a session,
    // byte for byte, and exactly what a missing id answers.
    let key = key_of(&new_key(&app, &alice, json!({ "name": "probe" })).await);
    let theirs = order(&app, &victim.token).await;
    let through_key = call(&app, &key, Method::GET, &format!("/api/orders/{theirs}"), None).await;
    let through_session = app.get_as(&format!("/api/orders/{theirs}"), &alice.session).await;
    let missing = call(&app, &key, Method::GET, &format!("/api/orders/{}", uuid::Uuid::new_v4()), None).await;
    through_key.assert_problem(404);
    assert_eq!(through_key.body, through_session.body);
    assert_eq!(through_key.body, missing.body);

    // Roles narrowed: the manager's key without `manager` cannot read what the manager can.
    let plain = key_of(&new_key(&app, &manager, json!({ "name": "plain", "roles": ["user"] })).await);
    assert_eq!(call(&app, &manager.token, Method::GET, &format!("/api/orders/{theirs}"), None).await.status, 200);
    call(&app, &plain, Method::GET, &format!("/api/orders/{theirs}"), None).await.assert_problem(404);
    assert_eq!(call(&app, &plain, Method::GET, "/auth/me", None).await.json()["roles"], json!(["user"]));
    // The admin's key without `admin` cannot delete.
    let no_admin = key_of(&new_key(&app, &admin, json!({ "name": "plain", "roles": ["user"] })).await);
    let r = call(&app, &no_admin, Method::DELETE, &format!("/api/orders/{theirs}"), None).await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(call(&app, &victim.token, Method::GET, &format!("/api/orders/{theirs}"), None).await.status, 200);
}

async fn set_key_column(app: &TestApp, id: &str, column: &str, value: i64) {
    let pool = app.db().await;
    sqlx::query(&format!("UPDATE api_keys SET {column} = $1 WHERE id = $2"))
        .bind(value)
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

#[tokio::test]
async fn revoked_expired_rotated_out_and_malformed_keys_are_401() {
    let app = spawn().await;
    let alice = app.registered_user().await;
    let me = |key: String| {
        let app = &app;
        async move { call(app, &key, Method::GET, "/auth/me", None).await }
    };

    // Revoked: at once.
    let created = new_key(&app, &alice, json!({ "name": "r" })).await;
    let (id, key) = (created["id"].as_str().unwrap().to_owned(), key_of(&created));
    assert_eq!(me(key.clone()).await.status, 200);
    let r = call(&app, &alice.token, Method::DELETE, &format!("/auth/api-keys/{id}"), None).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_key_refused(&me(key.clone()).await);
    assert_key_refused(&call(&app, &key, Method::GET, "/api/orders", None).await);
    assert_eq!(call(&app, &alice.token, Method::GET, "/auth/api-keys", None).await.json(), json!([]));
    call(&app, &alice.token, Method::DELETE, &format!("/auth/api-keys/{id}"), None).await.assert_problem(404);

    // Expired.
    let created = new_key(&app, &alice, json!({ "name": "e", "expires_in_days": 1 })).await;
    let (id, key) = (created["id"].as_str().unwrap().to_owned(), key_of(&created));
    assert_eq!(me(key.clone()).await.status, 200);
    set_key_column(&app, &id, "expires_at", 1).await;
    assert_key_refused(&me(key).await);

    // Rotated without grace: the old secret is dead at once, the new one works.
    let created = new_key(&app, &alice, json!({ "name": "rot" })).await;
    let (id, old) = (created["id"].as_str().unwrap().to_owned(), key_of(&created));
    let r = call(&app, &alice.token, Method::POST, &format!("/auth/api-keys/{id}/rotate"), Some(&json!({}))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let new = key_of(&r.json());
    assert_eq!(r.json()["id"], json!(id));
    assert_ne!(new, old);
    assert_key_refused(&me(old).await);
    assert_eq!(me(new.clone()).await.status, 200);
    // With a grace: both work during it; after it, only the new one.
    let r = call(
        &app,
        &alice.token,
        Method::POST,
        &format!("/auth/api-keys/{id}/rotate"),
        Some(&json!({ "grace_hours": 2 })),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let newer = key_of(&r.json());
    assert_eq!(me(new.clone()).await.status, 200, "the grace keeps the previous secret working");
    assert_eq!(me(newer.clone()).await.status, 200);
    set_key_column(&app, &id, "previous_until", 1).await;
    assert_key_refused(&me(new).await);
    assert_eq!(me(newer).await.status, 200);
    let r = call(
        &app,
        &alice.token,
        Method::POST,
        &format!("/auth/api-keys/{id}/rotate"),
        Some(&json!({ "grace_hours": 25 })),
    )
    .await;
    r.assert_problem(400);
    assert_eq!(r.error_fields(), ["grace_hours"]);

    // Malformed, or well-formed but unknown: the same 401.
    let unknown = format!("rpk_{}_{}", uuid::Uuid::new_v4().simple(), "A".repeat(43));
    for bad in ["rpk_", "rpk_x", "rpk_' OR 1=1 --", unknown.as_str(), &format!("{unknown}A")] {
        assert_key_refused(&me(bad.to_owned()).await);
    }
    assert_eq!(app.audit_count("api_key_created").await, 3);
    assert_eq!(app.audit_count("api_key_revoked").await, 1);
    assert_eq!(app.audit_count("api_key_rotated").await, 2);
}

#[tokio::test]
async fn a_locked_demoted_or_deleted_owner_stops_their_keys_at_once() {
    let app = spawn().await;
    let admin = app.user_with_role("admin").await;
    let manager = app.user_with_role("manager").await;
    let victim = app.registered_user().await;
    let theirs = order(&app, &victim.token).await;
    let key = key_of(&new_key(&app, &manager, json!({ "name": "m" })).await);
    let path = format!("/api/orders/{theirs}");
    assert_eq!(call(&app, &key, Method::GET, &path, None).await.status, 200);

    // Demoted: the key loses the role with the write.
    let users = format!("/admin/users/{}", manager.id);
    let r = call(&app, &admin.token, Method::PATCH, &users, Some(&json!({ "roles": ["user"] }))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    call(&app, &key, Method::GET, &path, None).await.assert_problem(404);
    // Promoted back: the key has what it was made with again, never more.
    call(&app, &admin.token, Method::PATCH, &users, Some(&json!({ "roles": ["user", "manager", "admin"] }))).await;
    assert_eq!(call(&app, &key, Method::GET, &path, None).await.status, 200);
    assert_eq!(call(&app, &key, Method::DELETE, &path, None).await.status, 403, "admin was not the key's");

    // Locked by an admin: refused; unlocked: back.
    call(&app, &admin.token, Method::PATCH, &users, Some(&json!({ "locked": true }))).await;
    assert_key_refused(&call(&app, &key, Method::GET, &path, None).await);
    call(&app, &admin.token, Method::PATCH, &users, Some(&json!({ "locked": false }))).await;
    assert_eq!(call(&app, &key, Method::GET, "/auth/me", None).await.status, 200);

    // Deleted: the key is gone with them.
    assert_eq!(call(&app, &admin.token, Method::DELETE, &users, None).await.status, 204);
    assert_key_refused(&call(&app, &key, Method::GET, "/auth/me", None).await);
    assert_eq!(app.count("api_keys").await, 0);
}

#[tokio::test]
async fn service_accounts_never_sign_in_and_hold_only_keys_an_admin_made() {
    let app = spawn().await;
    let admin = app.user_with_role("admin").await;
    let alice = app.registered_user().await;
    let body = json!({ "name": "nightly export", "roles": ["manager"] });
    call(&app, &alice.token, Method::POST, "/admin/service-accounts", Some(&body)).await.assert_problem(403);
    let r = call(&app, &admin.token, Method::POST, "/admin/service-accounts", Some(&body)).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let account = r.json();
    assert_eq!(account["kind"], json!("service"));
    assert_eq!(account["roles"], json!(["user", "manager"]));
    let id = account["id"].as_str().unwrap().to_owned();
    let listed = call(&app, &admin.token, Method::GET, "/admin/users?limit=100", None).await.json();
    let row = listed["items"].as_array().unwrap().iter().find(|u| u["id"] == json!(id)).unwrap().clone();
    assert_eq!(row["kind"], json!("service"));
    let person = listed["items"].as_array().unwrap().iter().find(|u| u["id"] == json!(alice.id)).unwrap().clone();
    assert_eq!(person["kind"], json!("person"));

    // Keys for it: only by an admin, only for a service account, narrowed against its roles.
    let path = format!("/admin/users/{id}/api-keys");
    call(&app, &alice.token, Method::POST, &path, Some(&json!({ "name": "k" }))).await.assert_problem(403);
    let person_keys = format!("/admin/users/{}/api-keys", alice.id);
    call(&app, &admin.token, Method::POST, &person_keys, Some(&json!({ "name": "k" }))).await.assert_problem(404);
    let r = call(&app, &admin.token, Method::POST, &path, Some(&json!({ "name": "k", "roles": ["admin"] }))).await;
    r.assert_problem(400);
    let r = call(&app, &admin.token, Method::POST, &path, Some(&json!({ "name": "k", "user_id": admin.id }))).await;
    r.assert_problem(400);
    let r = call(&app, &admin.token, Method::POST, &path, Some(&json!({ "name": "k" }))).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let key = key_of(&r.json());
    let me = call(&app, &key, Method::GET, "/auth/me", None).await;
    assert_eq!(me.json()["id"], json!(id), "the key is the account's, not the admin's");
    let theirs = order(&app, &alice.token).await;
    assert_eq!(call(&app, &key, Method::GET, &format!("/api/orders/{theirs}"), None).await.status, 200);
    assert_eq!(call(&app, &key, Method::POST, "/auth/api-keys", Some(&json!({ "name": "more" }))).await.status, 403);

    // The admin list shows its keys, never a secret.
    let r = call(&app, &admin.token, Method::GET, &format!("/admin/api-keys?user={id}"), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 1);
    assert_eq!(r.json()["items"][0]["user_id"], json!(id));
    assert!(!r.text().contains(&key[4 + 32 + 1..]));

    // No way in by password: whatever is typed as its address is an unknown or invalid email.
    for email in [format!("service:{id}"), "nightly export".to_owned(), format!("{id}@service.invalid")] {
        let r = app.post_json("/auth/login", &json!({ "email": email, "password": STRONG_PASSWORD })).await;
        assert!(r.status == 400 || r.status == 401, "{email}: {}", r.text());
        let r = app
            .post_json("/auth/token", &json!({ "grant_type": "password", "email": email, "password": STRONG_PASSWORD }))
            .await;
        assert!(r.status == 400 || r.status == 401, "{email}: {}", r.text());
    }
    let pool = app.db().await;
    let (hash, email): (String, String) =
        sqlx::query_as("SELECT password_hash, email_normalized FROM users WHERE id = $1")
            .bind(&id)
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    assert!(hash.starts_with("$argon2id$"), "a real hash of a secret nobody has");
    assert!(!email.contains('@'), "no parsed email can find it: {email}");

    // Locking the account ends its keys.
    call(&app, &admin.token, Method::PATCH, &format!("/admin/users/{id}"), Some(&json!({ "locked": true }))).await;
    assert_key_refused(&call(&app, &key, Method::GET, "/auth/me", None).await);
    assert_eq!(app.audit_count("service_account_created").await, 1);
}

#[tokio::test]
async fn each_key_has_its_own_budget() {
    let app = TestApp::builder().toml(RESOURCES).env("RATE_LIMIT__API_PER_KEY_PER_MINUTE", "3").spawn().await;
    let alice = app.registered_user().await;
    let a = key_of(&new_key(&app, &alice, json!({ "name": "a" })).await);
    let b = key_of(&new_key(&app, &alice, json!({ "name": "b" })).await);
    for _ in 0..3 {
        assert_eq!(call(&app, &a, Method::GET, "/api/orders", None).await.status, 200);
    }
    let r = call(&app, &a, Method::GET, "/api/orders", None).await;
    r.assert_problem(429);
    assert!(r.header("retry-after").is_some());
    assert!(r.header("ratelimit-policy").is_some_and(|p| p.contains("api-key")), "{:?}", r.headers);
    // Another key, and the owner's own login, are not held back by it.
    assert_eq!(call(&app, &b, Method::GET, "/api/orders", None).await.status, 200);
    assert_eq!(call(&app, &alice.token, Method::GET, "/api/orders", None).await.status, 200);
    // A forged key for the same id spends nothing of it (and is refused before the budget).
    let forged = format!("{}{}", &b[..b.len() - 4], if b.ends_with("AAAA") { "BBBB" } else { "AAAA" });
    for _ in 0..5 {
        assert_key_refused(&call(&app, &forged, Method::GET, "/api/orders", None).await);
    }
    assert_eq!(call(&app, &b, Method::GET, "/api/orders", None).await.status, 200);
}

#[tokio::test]
async fn scope_denials_are_audited_and_coalesced() {
    let app = TestApp::builder().toml(RESOURCES).env("LIMITS__DENIAL_AUDIT_WINDOW", "1s").spawn().await;
    let alice = app.registered_user().await;
    let reader = key_of(
        &new_key(&app, &alice, json!({ "name": "ro", "scopes": [{ "resource": "orders", "actions": ["read"] }] }))
            .await,
    );
    for _ in 0..20 {
        let r = call(&app, &reader, Method::POST, "/api/orders", Some(&json!({ "item": "x", "quantity": 1 }))).await;
        assert_eq!(r.status, 403);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let counted = loop {
        let pool = app.db().await;
        let (rows, total): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), CAST(SUM(count) AS BIGINT) FROM audit_log WHERE action = 'authz_denied' AND actor_id = $1",
        )
        .bind(&alice.id)
        .fetch_one(&pool)
        .await
        .unwrap();
        pool.close().await;
        if total == Some(20) || Instant::now() > deadline {
            break (rows, total);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(counted.1, Some(20), "every denial counted");
    assert!(counted.0 <= 3, "20 denials in one window must be a few rows, not {}", counted.0);
}

/// Two instances on one PostgreSQL database and one Redis.
async fn pair() -> (TestApp, TestApp) {
    let a = TestApp::builder().toml(RESOURCES).spawn().await;
    let b = TestApp::builder().toml(RESOURCES).in_dir(Arc::clone(&a.dir)).spawn().await;
    (a, b)
}

#[tokio::test]
async fn revocation_and_owner_changes_reach_every_instance_at_once() {
    if postgres_admin_url().is_none() || redis_url().is_none() {
        eprintln!("needs {POSTGRES_ENV} and {REDIS_ENV}; not run in this pass");
        return;
    }
    let (a, b) = pair().await;
    let admin = a.user_with_role("admin").await;
    let manager = a.user_with_role("manager").await;
    let victim = a.registered_user().await;
    let theirs = order(&a, &victim.token).await;
    let path = format!("/api/orders/{theirs}");
    let created = new_key(&a, &manager, json!({ "name": "m" })).await;
    let (id, key) = (created["id"].as_str().unwrap().to_owned(), key_of(&created));
    let spare = key_of(&new_key(&a, &manager, json!({ "name": "spare" })).await);
    assert_eq!(call(&b, &key, Method::GET, &path, None).await.status, 200);

    // Revoked on A: refused on B by the very next request.
    assert_eq!(call(&a, &manager.token, Method::DELETE, &format!("/auth/api-keys/{id}"), None).await.status, 204);
    assert_key_refused(&call(&b, &key, Method::GET, &path, None).await);

    // Demoted on A: B's next answer has the role gone.
    assert_eq!(call(&b, &spare, Method::GET, &path, None).await.status, 200);
    let users = format!("/admin/users/{}", manager.id);
    assert_eq!(call(&a, &admin.token, Method::PATCH, &users, Some(&json!({ "roles": ["user"] }))).await.status, 200);
    call(&b, &spare, Method::GET, &path, None).await.assert_problem(404);
    // Locked on A: refused on B.
    assert_eq!(call(&a, &admin.token, Method::PATCH, &users, Some(&json!({ "locked": true }))).await.status, 200);
    assert_key_refused(&call(&b, &spare, Method::GET, "/auth/me", None).await);
    // Deleted on A: refused on B.
    call(&a, &admin.token, Method::PATCH, &users, Some(&json!({ "locked": false }))).await;
    assert_eq!(call(&b, &spare, Method::GET, "/auth/me", None).await.status, 200);
    assert_eq!(call(&a, &admin.token, Method::DELETE, &users, None).await.status, 204);
    assert_key_refused(&call(&b, &spare, Method::GET, "/auth/me", None).await);
}

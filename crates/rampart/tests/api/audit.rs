//! The audit log records security events with who, what, from where, and which request (and for a
//! login, how it was made); it holds no secret; and it cannot be rewritten.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

type Row = (String, Option<String>, Option<String>, Option<String>, Option<String>, String, i64);

#[tokio::test]
async fn security_events_are_recorded_without_secrets() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    let reg = app.register(&email, STRONG_PASSWORD).await;
    let user_id = reg.json()["id"].as_str().unwrap().to_owned();
    let bad = app.login(&email, OTHER_STRONG_PASSWORD).await.0;
    let ghost = unique_email();
    let unknown = app.login(&ghost, OTHER_STRONG_PASSWORD).await.0;
    let (ok, s) = app.login(&email, STRONG_PASSWORD).await;
    let s = s.unwrap();
    let out = app.send_as(Method::POST, "/auth/logout", &s, None).await;
    assert_eq!(out.status, 204);

    let pool = app.db().await;
    let rows: Vec<Row> =
        sqlx::query_as("SELECT action, actor_id, target, ip, request_id, outcome, at FROM audit_log ORDER BY seq")
            .fetch_all(&pool)
            .await
            .unwrap();
    let actions: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(actions, ["register", "login_failure", "login_failure", "login_success", "logout"]);
    let rid = |r: &Resp| r.header("x-request-id").map(str::to_owned);
    let expected_rids = [rid(&reg), rid(&bad), rid(&unknown), rid(&ok), rid(&out)];
    for (row, expected) in rows.iter().zip(expected_rids) {
        assert_eq!(row.3.as_deref(), Some("127.0.0.1"), "{row:?}");
        assert_eq!(row.4, expected, "request id of {}", row.0);
        assert!(row.6 > 0);
    }
    assert_eq!(rows[0].1.as_deref(), Some(user_id.as_str()));
    assert_eq!(rows[1].1.as_deref(), Some(user_id.as_str()));
    assert_eq!(rows[1].5, "failure");
    // Unknown email: no actor, the attempted email as target.
    assert_eq!(rows[2].1, None);
    assert_eq!(rows[2].2.as_deref(), Some(ghost.as_str()));
    assert_eq!(rows[3].5, "success");
    assert_eq!(rows[4].1.as_deref(), Some(user_id.as_str()));

    let dump: String = rows.iter().map(|r| format!("{r:?}")).collect();
    for secret in [STRONG_PASSWORD, OTHER_STRONG_PASSWORD, s.cookie.as_str(), s.csrf.as_str()] {
        assert!(!dump.contains(secret), "secret in the audit log");
    }
    let _ = json!(null);
}

#[tokio::test]
async fn audit_rows_cannot_be_changed_or_deleted() {
    let app = TestApp::spawn().await;
    app.user().await;
    let before = app.count("audit_log").await;
    assert!(before >= 2);
    let pool = app.db().await;
    let upd = sqlx::query("UPDATE audit_log SET action = 'nothing'").execute(&pool).await;
    assert!(upd.is_err(), "audit rows were updated");
    let del = sqlx::query("DELETE FROM audit_log").execute(&pool).await;
    assert!(del.is_err(), "audit rows were deleted");
    let actions: Vec<(String,)> = sqlx::query_as("SELECT action FROM audit_log").fetch_all(&pool).await.unwrap();
    assert_eq!(actions.len() as i64, before);
    assert!(actions.iter().all(|a| a.0 != "nothing"));
    // Appending still works.
    app.login(&unique_email(), STRONG_PASSWORD).await;
    assert_eq!(app.count("audit_log").await, before + 1);
}

/// The sign-in method recorded on the `login_success` event of the login that `r` answered
/// (found by its request id): `None` when that event has no method. Panics when the request
/// wrote no `login_success`.
pub(crate) async fn login_method(app: &TestApp, r: &Resp) -> Option<String> {
    let rid = r.header("x-request-id").expect("a request id").to_owned();
    let pool = app.db().await;
    let rows: Vec<(Option<String>,)> =
        sqlx::query_as("SELECT method FROM audit_log WHERE action = 'login_success' AND request_id = $1")
            .bind(&rid)
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    assert_eq!(rows.len(), 1, "one login_success for request {rid}: {}", r.text());
    rows.into_iter().next().and_then(|r| r.0)
}

/// Every way in records, on its `login_success`, what it took: the password alone (cookie login
/// and token grant), then with a TOTP code or a recovery code. (Passkeys: `passkeys.rs`.) No
/// other event carries a method, and the admin API shows it.
#[tokio::test]
async fn each_login_records_how_it_was_made() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    assert_eq!(app.register(&email, STRONG_PASSWORD).await.status, 201);
    let (r, _) = app.login(&email, STRONG_PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(login_method(&app, &r).await.as_deref(), Some("password"));
    let grant = json!({ "grant_type": "password", "email": email, "password": STRONG_PASSWORD });
    let r = app.post_json("/auth/token", &grant).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(login_method(&app, &r).await.as_deref(), Some("password"));

    let m = crate::mfa::mfa_user(&app).await;
    let token = crate::mfa::challenge(&app, &m.email).await;
    let r = crate::mfa::verify(&app, &token, &m.next_code()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(login_method(&app, &r).await.as_deref(), Some("password+totp"));
    let token = crate::mfa::challenge(&app, &m.email).await;
    let r = crate::mfa::verify(&app, &token, &m.recovery[0]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(login_method(&app, &r).await.as_deref(), Some("password+recovery_code"));

    let pool = app.db().await;
    let (stray,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM audit_log WHERE (action = 'login_success') <> (method IS NOT NULL)")
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    assert_eq!(stray, 0, "a login without a method, or another event with one");

    // `GET /admin/audit`: `method` on every item, a name on logins and null elsewhere.
    let admin = app.user_with_role("admin").await;
    let logins = admin_items(&app, &admin.token, "action=login_success&limit=100").await;
    let mut methods: Vec<&str> = logins.iter().map(|e| e["method"].as_str().expect("a method")).collect();
    methods.sort_unstable();
    methods.dedup();
    assert_eq!(methods, ["password", "password+recovery_code", "password+totp"]);
    let others = admin_items(&app, &admin.token, "action=register").await;
    assert!(!others.is_empty() && others.iter().all(|e| e.get("method") == Some(&Value::Null)), "{others:?}");
    // Every value is one /openapi.json lists for the field (null too), and the field is required.
    let doc = app.get("/openapi.json").await.json();
    let event = &doc["components"]["schemas"]["AuditEvent"];
    assert!(event["required"].as_array().unwrap().contains(&json!("method")), "{event}");
    let listed = event["properties"]["method"]["enum"].as_array().unwrap();
    for e in logins.iter().chain(&others) {
        assert!(listed.contains(&e["method"]), "{} is not in {listed:?}", e["method"]);
    }
}

async fn admin_items(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let r = TestApp::send(app.request(Method::GET, &format!("/admin/audit?{query}")).bearer_auth(token)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["items"].as_array().unwrap().clone()
}

//! The audit log records security events with who, what, from where, and which request; it holds
//! no secret; and it cannot be rewritten.

use reqwest::Method;
use serde_json::json;

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

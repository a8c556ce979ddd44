//! The session list and revocation, attacked over HTTP: a user sees and ends only their own
//! logins; another user's session id is answered like a missing one and survives.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// A cookie login with this user agent.
async fn login_ua(app: &TestApp, email: &str, ua: &str) -> Session {
    let rb = app
        .request(Method::POST, "/auth/login")
        .header("user-agent", ua)
        .json(&json!({ "email": email, "password": STRONG_PASSWORD }));
    let r = TestApp::send(rb).await;
    assert_eq!(r.status, 200, "{}", r.text());
    session_from(&r).unwrap()
}

/// A token login with this user agent: (access, refresh).
async fn grant_ua(app: &TestApp, email: &str, ua: &str) -> (String, String) {
    let rb = app
        .request(Method::POST, "/auth/token")
        .header("user-agent", ua)
        .json(&json!({ "grant_type": "password", "email": email, "password": STRONG_PASSWORD }));
    let r = TestApp::send(rb).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let b = r.json();
    (b["access_token"].as_str().unwrap().to_owned(), b["refresh_token"].as_str().unwrap().to_owned())
}

fn entries(r: &Resp) -> Vec<Value> {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json().as_array().expect("a JSON array").clone()
}

async fn list(app: &TestApp, s: &Session) -> Vec<Value> {
    entries(&app.get_as("/auth/sessions", s).await)
}

async fn list_bearer(app: &TestApp, access: &str) -> Vec<Value> {
    entries(&app.get_bearer("/auth/sessions", access).await)
}

/// The one entry marked current.
fn current(list: &[Value]) -> &Value {
    let marked: Vec<&Value> = list.iter().filter(|e| e["current"] == json!(true)).collect();
    assert_eq!(marked.len(), 1, "exactly one current session: {list:?}");
    marked[0]
}

fn ids(list: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = list.iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
    ids.sort();
    ids
}

async fn delete(app: &TestApp, s: &Session, id: &str) -> Resp {
    app.send_as(Method::DELETE, &format!("/auth/sessions/{id}"), s, None).await
}

async fn registered(app: &TestApp) -> String {
    let email = unique_email();
    assert_eq!(app.register(&email, STRONG_PASSWORD).await.status, 201);
    email
}

#[tokio::test]
async fn the_list_shows_own_logins_and_marks_the_current_one() {
    let app = TestApp::spawn().await;
    let alice = registered(&app).await;
    let a = login_ua(&app, &alice, "agent-a").await;
    let b = login_ua(&app, &alice, "agent-b").await;
    let (g, _) = grant_ua(&app, &alice, "agent-g").await;
    let (_, bob) = app.user().await;
    app.get("/auth/sessions").await.assert_problem(401);

    let seen = list(&app, &a).await;
    assert_eq!(seen.len(), 3, "{seen:?}");
    for e in &seen {
        let mut keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["created_at", "current", "id", "ip", "last_seen_at", "user_agent"], "{e}");
        assert_eq!(uuid::Uuid::parse_str(e["id"].as_str().unwrap()).unwrap().get_version_num(), 4);
        assert!(e["created_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{e}");
        assert!(e["last_seen_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{e}");
        assert_eq!(e["ip"], json!("127.0.0.1"));
    }
    let mut agents: Vec<&str> = seen.iter().map(|e| e["user_agent"].as_str().unwrap()).collect();
    agents.sort_unstable();
    assert_eq!(agents, ["agent-a", "agent-b", "agent-g"]);
    let all = ids(&seen);
    assert_eq!(all.iter().collect::<std::collections::BTreeSet<_>>().len(), 3, "ids repeat");
    assert_eq!(current(&seen)["user_agent"], json!("agent-a"));

    // Each login sees the same list, with itself as the current one.
    let from_b = list(&app, &b).await;
    assert_eq!((ids(&from_b), &current(&from_b)["user_agent"]), (all.clone(), &json!("agent-b")));
    let from_g = list_bearer(&app, &g).await;
    assert_eq!((ids(&from_g), &current(&from_g)["user_agent"]), (all.clone(), &json!("agent-g")));

    // Bob sees his one login, none of Alice's; she sees none of his.
    let bobs = list(&app, &bob).await;
    assert_eq!(bobs.len(), 1);
    assert!(!all.contains(&ids(&bobs)[0]));

    // A logged-out session is gone from the list.
    assert_eq!(app.send_as(Method::POST, "/auth/logout", &b, None).await.status, 204);
    let after = list(&app, &a).await;
    assert_eq!(after.len(), 2);
    assert!(after.iter().all(|e| e["user_agent"] != json!("agent-b")));
}

#[tokio::test]
async fn deleting_a_session_ends_it_at_once() {
    let app = TestApp::spawn().await;
    let alice = registered(&app).await;
    let a = login_ua(&app, &alice, "agent-a").await;
    let b = login_ua(&app, &alice, "agent-b").await;
    let (g, g_refresh) = grant_ua(&app, &alice, "agent-g").await;
    let b_id = current(&list(&app, &b).await)["id"].as_str().unwrap().to_owned();
    let g_id = current(&list_bearer(&app, &g).await)["id"].as_str().unwrap().to_owned();

    // Without its CSRF token a cookie session cannot delete (a cross-site page would log the
    // user out of everything).
    let no_csrf = app.request(Method::DELETE, &format!("/auth/sessions/{b_id}")).header("cookie", a.cookie_header());
    TestApp::send(no_csrf).await.assert_problem(403);
    assert_eq!(app.get_as("/auth/me", &b).await.status, 200);

    let r = delete(&app, &a, &b_id).await;
    assert_eq!(r.status, 204, "{}", r.text());
    app.get_as("/auth/me", &b).await.assert_problem(401);
    assert_eq!(app.get_as("/auth/me", &a).await.status, 200);
    // A token login ends too: its unexpired access token and its refresh token.
    assert_eq!(delete(&app, &a, &g_id).await.status, 204);
    app.get_bearer("/auth/me", &g).await.assert_problem(401);
    let r = app.post_json("/auth/token", &json!({ "grant_type": "refresh_token", "refresh_token": g_refresh })).await;
    r.assert_problem(401);
    let left = list(&app, &a).await;
    assert_eq!(left.len(), 1);
    assert_eq!(current(&left)["user_agent"], json!("agent-a"));
    assert_eq!(app.audit_count("session_revoked").await, 2);
}

#[tokio::test]
async fn another_users_session_answers_404_and_survives() {
    let app = TestApp::spawn().await;
    let (alice_email, alice) = app.user().await;
    let (_, bob) = app.user().await;
    let bob_id = current(&list(&app, &bob).await)["id"].as_str().unwrap().to_owned();

    // Answered exactly like an id that does not exist, so ids cannot be probed.
    let theirs = delete(&app, &alice, &bob_id).await;
    let b1 = theirs.assert_problem(404);
    let missing = delete(&app, &alice, &uuid::Uuid::new_v4().to_string()).await;
    let b2 = missing.assert_problem(404);
    for k in ["type", "title", "detail"] {
        assert_eq!(b1[k], b2[k], "{k}: {b1} / {b2}");
    }
    for junk in ["not-a-uuid", "1%20OR%201=1", "..%2F..%2Fadmin"] {
        delete(&app, &alice, junk).await.assert_problem(404);
    }
    // The bearer door answers the same.
    let (access, _) = grant_ua(&app, &alice_email, "agent").await;
    let rb = app.request(Method::DELETE, &format!("/auth/sessions/{bob_id}")).bearer_auth(&access);
    TestApp::send(rb).await.assert_problem(404);

    assert_eq!(app.get_as("/auth/me", &bob).await.status, 200, "Alice ended Bob's session");
    assert_eq!(ids(&list(&app, &bob).await), vec![bob_id]);
    assert_eq!(app.audit_count("session_revoked").await, 0);
}

/// A token login's id is its `sid`, readable in every access token of it. Naming it in a DELETE
/// must not put it in the revocation set for the other user's tokens (the set is keyed by `sid`
/// alone; only a login the caller really ended may enter it).
#[tokio::test]
async fn another_users_token_login_answers_404_and_its_tokens_keep_working() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.user().await;
    let bob_email = unique_email();
    assert_eq!(app.register(&bob_email, STRONG_PASSWORD).await.status, 201);
    let (bob_access, bob_refresh) = grant_ua(&app, &bob_email, "bob-agent").await;
    let payload = bob_access.split('.').nth(1).unwrap();
    use base64::Engine;
    let claims: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let bob_sid = claims["sid"].as_str().unwrap().to_owned();

    delete(&app, &alice, &bob_sid).await.assert_problem(404);

    let me = app.request(Method::GET, "/auth/me").bearer_auth(&bob_access);
    assert_eq!(TestApp::send(me).await.status, 200, "Alice's DELETE killed Bob's access token");
    let refreshed = app
        .request(Method::POST, "/auth/token")
        .header("user-agent", "bob-agent")
        .json(&json!({ "grant_type": "refresh_token", "refresh_token": bob_refresh }));
    assert_eq!(TestApp::send(refreshed).await.status, 200);
}

//! The admin API: one role gate in front of every route (401 anonymous, 403 without the role,
//! cookie and bearer alike), paging, role changes and locks that end the target's logins at once,
//! the last-admin rule, self-service limits, deletion, mass assignment and the audit trail.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

async fn admin(app: &TestApp) -> TestUser {
    app.user_with_role("admin").await
}

async fn user(app: &TestApp) -> TestUser {
    app.registered_user().await
}

async fn bearer(app: &TestApp, method: Method, path: &str, token: &str, body: Option<&Value>) -> Resp {
    let mut rb = app.request(method, path).header("authorization", format!("Bearer {token}"));
    if let Some(b) = body {
        rb = rb.json(b);
    }
    TestApp::send(rb).await
}

async fn patch(app: &TestApp, by: &TestUser, id: &str, body: Value) -> Resp {
    bearer(app, Method::PATCH, &format!("/admin/users/{id}"), &by.token, Some(&body)).await
}

async fn refresh(app: &TestApp, token: &str) -> Resp {
    app.post_json("/auth/token", &json!({ "grant_type": "refresh_token", "refresh_token": token })).await
}

/// Whether each credential of `who` still works: (cookie, bearer, refresh token). A refresh
/// token that works is rotated, and `who` keeps the new one, so calling this again is no replay.
async fn logins_alive(app: &TestApp, who: &mut TestUser) -> (bool, bool, bool) {
    let cookie = app.get_as("/auth/me", &who.session).await;
    let token = bearer(app, Method::GET, "/auth/me", &who.token, None).await;
    let refresh = refresh(app, &who.refresh).await;
    for r in [&cookie, &token, &refresh] {
        assert!(r.status == 200 || r.status == 401, "{} {}", r.status, r.text());
    }
    if refresh.status == 200 {
        who.refresh = refresh.json()["refresh_token"].as_str().unwrap().to_owned();
    }
    (cookie.status == 200, token.status == 200, refresh.status == 200)
}

async fn delete(app: &TestApp, by: &TestUser, id: &str) -> Resp {
    bearer(app, Method::DELETE, &format!("/admin/users/{id}"), &by.token, None).await
}

/// Every page of a list, following `next_cursor`.
async fn all_pages(app: &TestApp, by: &TestUser, path: &str, limit: u32) -> (Vec<Value>, usize) {
    let (mut items, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
            None => format!("{path}{sep}limit={limit}"),
        };
        let r = bearer(app, Method::GET, &url, &by.token, None).await;
        assert_eq!(r.status, 200, "{url}: {}", r.text());
        let body = r.json();
        let page = body["items"].as_array().unwrap();
        assert!(page.len() <= limit as usize);
        items.extend(page.iter().cloned());
        pages += 1;
        match body["next_cursor"].as_str() {
            Some(c) => {
                assert!(!page.is_empty(), "a cursor after an empty page");
                cursor = Some(c.to_owned());
            }
            None => return (items, pages),
        }
        assert!(pages < 100, "paging does not end");
    }
}

fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn every_admin_route_is_401_anonymous_and_403_without_the_role() {
    // Repeated refusals are coalesced per window (issue 11): a short one, to see every count.
    let app = TestApp::builder().env("LIMITS__DENIAL_AUDIT_WINDOW", "1s").spawn().await;
    let boss = admin(&app).await;
    let plain = user(&app).await;
    let mut victim = user(&app).await;
    let v = format!("/admin/users/{}", victim.id);
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/admin/users".into(), None),
        (Method::GET, "/admin/users?limit=1".into(), None),
        (Method::GET, v.clone(), None),
        (Method::PATCH, v.clone(), Some(json!({ "roles": ["user", "admin"] }))),
        (Method::DELETE, v.clone(), None),
        (Method::GET, "/admin/audit".into(), None),
    ];
    for (method, path, body) in &routes {
        let what = format!("{method} {path}");
        let mut rb = app.request(method.clone(), path);
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let r = TestApp::send(rb).await;
        r.assert_problem(401);
        assert!(r.header("www-authenticate").is_some(), "{what}");

        let r = bearer(&app, method.clone(), path, &plain.token, body.as_ref()).await;
        assert_eq!(r.assert_problem(403)["type"], json!("https://rampart.dev/problems/forbidden"), "{what}");
        let r = app.send_as(method.clone(), path, &plain.session, body.as_ref()).await;
        r.assert_problem(403);
        // A valid-looking id of nobody is 403 too: a non-admin learns nothing about ids.
        let nobody = path.replace(&victim.id, "00000000-0000-4000-8000-000000000000");
        bearer(&app, method.clone(), &nobody, &plain.token, body.as_ref()).await.assert_problem(403);
    }
    // Nothing the plain user tried happened.
    let r = bearer(&app, Method::GET, &v, &boss.token, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["roles"], json!(["user"]));
    assert!(logins_alive(&app, &mut victim).await.0, "the victim's session was touched");

    // The admin gets through with either credential.
    for (method, path, body) in &routes[..4] {
        let r = bearer(&app, method.clone(), path, &boss.token, body.as_ref()).await;
        assert_eq!(r.status, 200, "{method} {path}: {}", r.text());
        let r = app.send_as(method.clone(), path, &boss.session, body.as_ref()).await;
        assert_eq!(r.status, 200, "{method} {path}: {}", r.text());
    }
    assert_eq!(app.send_as(Method::GET, "/admin/audit", &boss.session, None).await.status, 200);
    assert_eq!(app.send_as(Method::DELETE, &v, &boss.session, None).await.status, 204);
    let other = user(&app).await;
    let r = bearer(&app, Method::DELETE, &format!("/admin/users/{}", other.id), &boss.token, None).await;
    assert_eq!(r.status, 204, "{}", r.text());
    // Cookie requests still need their CSRF token here like everywhere.
    let r = TestApp::send(
        app.request(Method::PATCH, &format!("/admin/users/{}", plain.id))
            .header("cookie", boss.session.cookie_header())
            .json(&json!({ "locked": true })),
    )
    .await;
    r.assert_problem(403);

    // Every refusal to the plain user is counted in `authz_denied` events naming them: repeats
    // are folded into few rows with a `count`, written once their window closes.
    let denied_path = format!("/admin/audit?action=authz_denied&actor={}", plain.id);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let denied = loop {
        let r = bearer(&app, Method::GET, &denied_path, &boss.token, None).await;
        let denied = r.json()["items"].as_array().unwrap().clone();
        let counted: i64 = denied.iter().map(|e| e["count"].as_i64().unwrap()).sum();
        if counted >= (routes.len() * 3) as i64 || std::time::Instant::now() > deadline {
            break denied;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let counted: i64 = denied.iter().map(|e| e["count"].as_i64().unwrap()).sum();
    assert_eq!(counted, (routes.len() * 3) as i64, "{denied:?}");
    assert!(denied.len() < routes.len() * 3, "repeated refusals are coalesced: {denied:?}");
    assert!(denied.iter().all(|e| e["outcome"] == json!("denied") && e["target"] == json!("role:admin")), "{denied:?}");
}

/// A method an admin route does not answer is behind the role gate too: only an admin learns
/// that the path exists and which methods it takes (the 405); anyone else gets the gate's 401 or
/// 403, as for the route's own methods.
#[tokio::test]
async fn a_method_an_admin_route_lacks_is_behind_the_role_gate_too() {
    let app = TestApp::spawn().await;
    let boss = admin(&app).await;
    let plain = user(&app).await;
    for path in ["/admin/users", "/admin/audit", "/admin/api-keys"] {
        TestApp::send(app.request(Method::PUT, path).json(&json!({}))).await.assert_problem(401);
        bearer(&app, Method::PUT, path, &plain.token, Some(&json!({}))).await.assert_problem(403);
        let r = bearer(&app, Method::PUT, path, &boss.token, Some(&json!({}))).await;
        assert_eq!(r.status, 405, "PUT {path} as the admin: {}", r.text());
    }
}

#[tokio::test]
async fn the_user_list_pages_without_duplicates_and_refuses_bad_parameters() {
    let app = TestApp::spawn().await;
    let boss = admin(&app).await;
    let mut made = vec![boss.id.clone()];
    for _ in 0..6 {
        let email = unique_email();
        let r = app.register(&email, STRONG_PASSWORD).await;
        made.push(r.json()["id"].as_str().unwrap().to_owned());
    }
    let (items, pages) = all_pages(&app, &boss, "/admin/users", 2).await;
    assert_eq!(pages, 4, "7 users in pages of 2");
    let got = ids(&items);
    assert_eq!(got.len(), got.iter().collect::<HashSet<_>>().len(), "duplicates across pages: {got:?}");
    assert_eq!(got.iter().collect::<HashSet<_>>(), made.iter().collect::<HashSet<_>>(), "every user once");
    // Creation order (created_at, then id for users made in the same millisecond).
    let db = app.db().await;
    let order: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM users ORDER BY created_at, id").fetch_all(&db).await.unwrap();
    db.close().await;
    assert_eq!(got, order.into_iter().map(|r| r.0).collect::<Vec<_>>());
    assert_eq!(items.len() as i64, app.count("users").await);
    let first = &items[0];
    for field in [
        "id",
        "email",
        "display_name",
        "email_verified",
        "roles",
        "mfa_enabled",
        "locked_until",
        "failed_logins",
        "created_at",
    ] {
        assert!(first.get(field).is_some(), "missing {field}: {first}");
    }
    assert_eq!(first["roles"], json!(["user", "admin"]));
    assert_eq!(first["locked_until"], Value::Null);
    let text = bearer(&app, Method::GET, "/admin/users?limit=100", &boss.token, None).await.text();
    assert!(!text.contains("password") && !text.contains("$argon2"), "{text}");

    // Default page size 50, and the last page has no cursor.
    let r = bearer(&app, Method::GET, "/admin/users", &boss.token, None).await.json();
    assert_eq!(r["items"].as_array().unwrap().len(), 7);
    assert_eq!(r["next_cursor"], Value::Null);

    // Exact match on the normalized email.
    let messy = format!("  {}  ", boss.email.to_uppercase());
    let r = bearer(&app, Method::GET, &format!("/admin/users?email={}", messy.replace(' ', "%20")), &boss.token, None)
        .await;
    assert_eq!(ids(r.json()["items"].as_array().unwrap()), [boss.id.as_str()], "{}", r.text());
    let prefix = &boss.email[..boss.email.len() - 1];
    let r = bearer(&app, Method::GET, &format!("/admin/users?email={prefix}"), &boss.token, None).await;
    assert_eq!(r.status, 200);
    assert!(r.json()["items"].as_array().unwrap().is_empty(), "not a prefix match");

    let audit_cursor = bearer(&app, Method::GET, "/admin/audit?limit=1", &boss.token, None).await.json()["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=-1", "limit"),
        ("limit=ten", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=7573657273", "cursor"),
        (&format!("cursor={audit_cursor}") as &str, "cursor"),
        ("email=nobody", "email"),
        ("page=2", "page"),
        ("limit=1&limit=2", "limit"),
    ] {
        let r = bearer(&app, Method::GET, &format!("/admin/users?{query}"), &boss.token, None).await;
        r.assert_problem(400);
        assert_eq!(r.error_fields(), [field], "{query}: {}", r.text());
    }
    assert_eq!(bearer(&app, Method::GET, "/admin/users?limit=100", &boss.token, None).await.status, 200);
}

#[tokio::test]
async fn one_user_is_shown_with_roles_and_lock_state_and_unknown_ids_are_404() {
    let app = TestApp::spawn().await;
    let boss = admin(&app).await;
    let plain = user(&app).await;
    let r = bearer(&app, Method::GET, &format!("/admin/users/{}", plain.id), &boss.token, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let u = r.json();
    assert_eq!(u["id"], json!(plain.id));
    assert_eq!(u["email"], json!(plain.email));
    assert_eq!(u["roles"], json!(["user"]));
    assert_eq!(u["failed_logins"], json!(0));
    assert_eq!(u["locked_until"], Value::Null);
    assert!(u["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(u.get("password_hash").is_none() && !r.text().contains("$argon2"));

    for id in ["00000000-0000-4000-8000-000000000000", "1", "'%20OR%201=1--", "..%2F..%2Fetc"] {
        for method in [Method::GET, Method::DELETE] {
            let r = bearer(&app, method.clone(), &format!("/admin/users/{id}"), &boss.token, None).await;
            r.assert_problem(404);
        }
        patch(&app, &boss, id, json!({ "locked": true })).await.assert_problem(404);
    }
}

#[tokio::test]
async fn role_changes_take_effect_at_once_and_end_the_targets_logins() {
    let app = TestApp::spawn().await;
    let boss = admin(&app).await;
    let mut target = user(&app).await;
    assert_eq!(logins_alive(&app, &mut target).await, (true, true, true));
    bearer(&app, Method::GET, "/admin/users", &target.token, None).await.assert_problem(403);

    // Promote: "user" is added, the answer shows the new roles.
    let r = patch(&app, &boss, &target.id, json!({ "roles": ["admin"] })).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["roles"], json!(["user", "admin"]));
    // Every earlier login is gone: the old token (its claims say ["user"]) and the cookie.
    assert_eq!(logins_alive(&app, &mut target).await, (false, false, false));
    let mut promoted = app.sign_in(&target.email).await;
    assert_eq!(bearer(&app, Method::GET, "/admin/users", &promoted.token, None).await.status, 200);
    assert_eq!(app.get_as("/admin/users", &promoted.session).await.status, 200);

    // Demote: the admin's tokens die with the role, and a fresh login is refused the admin API.
    let r = patch(&app, &boss, &target.id, json!({ "roles": ["user", "manager"] })).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["roles"], json!(["user", "manager"]));
    bearer(&app, Method::GET, "/admin/users", &promoted.token, None).await.assert_problem(401);
    app.get_as("/admin/users", &promoted.session).await.assert_problem(401);
    assert_eq!(logins_alive(&app, &mut promoted).await, (false, false, false));
    let demoted = app.sign_in(&target.email).await;
    bearer(&app, Method::GET, "/admin/users", &demoted.token, None).await.assert_problem(403);
    app.get_as("/admin/users", &demoted.session).await.assert_problem(403);
    // The admin who did it is unaffected.
    let mut boss = boss;
    assert_eq!(logins_alive(&app, &mut boss).await, (true, true, true));
}

#[tokio::test]
async fn the_last_admin_cannot_be_demoted_locked_or_deleted() {
    let app = TestApp::spawn().await;
    let first = admin(&app).await;
    // The only admin deleting themselves would leave nobody to run the server.
    delete(&app, &first, &first.id).await.assert_problem(409);

    // An admin whose account is locked (the automatic lockout keeps existing logins) is not an
    // admin anyone can sign in as, so the other one is the last active admin.
    let mut second = admin(&app).await;
    let pool = app.db().await;
    let lock_until = 4_102_444_800_000_i64; // 2100-01-01
    sqlx::query("UPDATE users SET locked_until = $1 WHERE id = $2")
        .bind(lock_until)
        .bind(&first.id)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    for body in [json!({ "roles": ["user"] }), json!({ "locked": true }), json!({ "roles": ["user"], "locked": false })]
    {
        let r = patch(&app, &first, &second.id, body.clone()).await;
        assert_eq!(r.assert_problem(409)["type"], json!("https://rampart.dev/problems/conflict"), "{body}");
    }
    delete(&app, &first, &second.id).await.assert_problem(409);
    let r = bearer(&app, Method::GET, &format!("/admin/users/{}", second.id), &first.token, None).await.json();
    assert_eq!(r["roles"], json!(["user", "admin"]));
    assert_eq!(r["locked_until"], Value::Null);
    assert_eq!(logins_alive(&app, &mut second).await, (true, true, true), "a refused change revoked nothing");

    // Unlocking oneself is allowed; with two active admins, one can now demote the other.
    let r = patch(&app, &first, &first.id, json!({ "locked": false })).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["locked_until"], Value::Null);
    let r = patch(&app, &first, &second.id, json!({ "roles": ["user"] })).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // And first is the last one again: it cannot delete itself, but can once second is back.
    delete(&app, &first, &first.id).await.assert_problem(409);
    assert_eq!(patch(&app, &first, &second.id, json!({ "roles": ["user", "admin"] })).await.status, 200);
    assert_eq!(delete(&app, &first, &first.id).await.status, 204);
    assert_eq!(app.count("users").await, 1);
}

#[tokio::test]
async fn two_admins_demoting_each_other_at_once_leave_one_admin() {
    let app = TestApp::spawn().await;
    for round in 0..6 {
        let a = admin(&app).await;
        let b = admin(&app).await;
        // Only a and b are admins in this round: earlier rounds' survivors are demoted first.
        let admins: Vec<Value> = all_pages(&app, &a, "/admin/users", 100)
            .await
            .0
            .into_iter()
            .filter(|u| u["roles"].as_array().unwrap().contains(&json!("admin")))
            .collect();
        for u in admins {
            let id = u["id"].as_str().unwrap();
            if id != a.id && id != b.id {
                assert_eq!(patch(&app, &a, id, json!({ "roles": ["user"] })).await.status, 200);
            }
        }
        let (ra, rb) = tokio::join!(
            patch(&app, &a, &b.id, json!({ "roles": ["user"] })),
            patch(&app, &b, &a.id, json!({ "roles": ["user"] }))
        );
        // One goes through; the other is 409 (the guard saw it would leave no admin) or 401
        // (its author had already lost their logins to the first).
        let statuses = [ra.status, rb.status];
        assert!(statuses.contains(&200), "round {round}: {statuses:?}");
        assert_ne!(statuses, [200, 200], "round {round}: both demotions went through");
        let pool = app.db().await;
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE (' ' || roles || ' ') LIKE '% admin %'")
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        assert_eq!(n, 1, "round {round}");
    }
}

#[tokio::test]
async fn an_admin_cannot_change_their_own_roles_or_lock_themselves() {
    let app = TestApp::spawn().await;
    let mut me = admin(&app).await;
    // A second admin, so that only the self-service rule can refuse.
    let _other = admin(&app).await;
    for body in [
        json!({ "roles": ["user"] }),
        json!({ "roles": ["user", "admin", "manager"] }),
        json!({ "roles": ["user", "admin"] }),
        json!({ "locked": true }),
    ] {
        let r = patch(&app, &me, &me.id, body.clone()).await;
        r.assert_problem(403);
        let r = app.send_as(Method::PATCH, &format!("/admin/users/{}", me.id), &me.session, Some(&body)).await;
        r.assert_problem(403);
    }
    let r = bearer(&app, Method::GET, &format!("/admin/users/{}", me.id), &me.token, None).await;
    assert_eq!(r.json()["roles"], json!(["user", "admin"]));
    assert_eq!(r.json()["locked_until"], Value::Null);
    assert_eq!(logins_alive(&app, &mut me).await, (true, true, true));
}

#[tokio::test]
async fn locking_ends_the_targets_logins_and_refuses_new_ones_until_unlocked() {
    let app = TestApp::spawn().await;
    let boss = admin(&app).await;
    let mut target = user(&app).await;
    let r = patch(&app, &boss, &target.id, json!({ "locked": true })).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["locked_until"], json!("9999-12-31T23:59:59Z"));
    assert_eq!(logins_alive(&app, &mut target).await, (false, false, false));
    // The right password no longer opens the account, by either door.
    let (r, s) = app.login(&target.email, STRONG_PASSWORD).await;
    assert!(matches!(r.status, 401 | 423), "locked account logged in: {} {}", r.status, r.text());
    assert!(s.is_none());
    let r = app
        .post_json(
            "/auth/token",
            &json!({ "grant_type": "password", "email": target.email, "password": STRONG_PASSWORD }),
        )
        .await;
    assert!(matches!(r.status, 401 | 423), "locked account got a token: {} {}", r.status, r.text());

    let r = patch(&app, &boss, &target.id, json!({ "locked": false })).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["locked_until"], Value::Null);
    assert_eq!(r.json()["failed_logins"], json!(0));
    let mut back = app.sign_in(&target.email).await;
    assert_eq!(logins_alive(&app, &mut back).await, (true, true, true));
    // Unlocking revokes nothing.
    assert_eq!(patch(&app, &boss, &target.id, json!({ "locked": false })).await.status, 200);
    assert_eq!(logins_alive(&app, &mut back).await, (true, true, true));
}

#[tokio::test]
async fn deleting_a_user_ends_their_logins_and_then_404s() {
    let app = TestApp::spawn().await;
    let boss = admin(&app).await;
    let mut target = user(&app).await;
    let path = format!("/admin/users/{}", target.id);
    // A bearer request first, so the user row sits in the server's user cache.
    assert_eq!(bearer(&app, Method::GET, "/auth/me", &target.token, None).await.status, 200);
    let r = bearer(&app, Method::DELETE, &path, &boss.token, None).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.body.is_empty());
    bearer(&app, Method::GET, &path, &boss.token, None).await.assert_problem(404);
    bearer(&app, Method::DELETE, &path, &boss.token, None).await.assert_problem(404);
    patch(&app, &boss, &target.id, json!({ "locked": true })).await.assert_problem(404);
    // The token outlives nothing, even inside the user cache's lifetime.
    assert_eq!(logins_alive(&app, &mut target).await, (false, false, false));
    assert_eq!(app.login(&target.email, STRONG_PASSWORD).await.0.status, 401);
    let pool = app.db().await;
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sessions WHERE user_id = $1")
        .bind(&target.id)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(n, 0, "sessions survived their user");
    // The email is free again.
    assert_eq!(app.register(&target.email, STRONG_PASSWORD).await.status, 201);
}

#[tokio::test]
async fn patch_refuses_mass_assignment_and_unknown_roles() {
    let app = TestApp::spawn().await;
    let boss = admin(&app).await;
    let mut target = user(&app).await;
    for (body, field) in [
        (json!({ "email": "evil@example.com" }), "email"),
        (json!({ "password_hash": "$argon2id$v=19$m=1,t=1,p=1$AAAA$AAAA" }), "password_hash"),
        (json!({ "id": "00000000-0000-4000-8000-000000000000" }), "id"),
        (json!({ "email_verified": true, "roles": ["user"] }), "email_verified"),
        (json!({ "failed_logins": 0 }), "failed_logins"),
        (json!({ "locked_until": null }), "locked_until"),
        (json!({ "roles": ["root"] }), "roles"),
        (json!({ "roles": ["Admin"] }), "roles"),
        (json!({ "roles": ["admin' --"] }), "roles"),
        (json!({ "roles": [] }), "roles"),
        (json!({ "roles": "admin" }), "roles"),
        (json!({ "roles": null }), "roles"),
        (json!({ "roles": [{ "$ne": null }] }), "roles[0]"),
        (json!({ "locked": "yes" }), "locked"),
        (json!({ "locked": null }), "locked"),
    ] {
        let r = patch(&app, &boss, &target.id, body.clone()).await;
        r.assert_problem(400);
        assert_eq!(r.error_fields(), [field], "{body}: {}", r.text());
    }
    let u = bearer(&app, Method::GET, &format!("/admin/users/{}", target.id), &boss.token, None).await.json();
    assert_eq!((u["email"].clone(), u["roles"].clone()), (json!(target.email), json!(["user"])));
    assert_eq!(logins_alive(&app, &mut target).await, (true, true, true), "a refused PATCH revoked logins");
    // A declared role is accepted; duplicates collapse.
    let r = patch(&app, &boss, &target.id, json!({ "roles": ["manager", "user", "manager"] })).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["roles"], json!(["user", "manager"]));
    // `{}` changes nothing and revokes nothing.
    let mut again = app.sign_in(&target.email).await;
    let r = patch(&app, &boss, &target.id, json!({})).await;
    assert_eq!(r.json()["roles"], json!(["user", "manager"]));
    assert_eq!(logins_alive(&app, &mut again).await, (true, true, true));
}

#[tokio::test]
async fn admin_actions_are_audited_with_actor_and_target_newest_first() {
    let app = TestApp::spawn().await;
    let boss = admin(&app).await;
    let target = user(&app).await;
    let mut rids = Vec::new();
    for body in [json!({ "roles": ["user", "manager"] }), json!({ "locked": true }), json!({ "locked": false })] {
        let r = patch(&app, &boss, &target.id, body).await;
        assert_eq!(r.status, 200);
        rids.push(r.header("x-request-id").unwrap().to_owned());
    }
    let r = bearer(&app, Method::DELETE, &format!("/admin/users/{}", target.id), &boss.token, None).await;
    assert_eq!(r.status, 204);
    rids.push(r.header("x-request-id").unwrap().to_owned());

    for (action, rid) in ["role_changed", "user_locked", "user_unlocked", "user_deleted"].into_iter().zip(&rids) {
        let r = bearer(&app, Method::GET, &format!("/admin/audit?action={action}"), &boss.token, None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let items = r.json()["items"].as_array().unwrap().clone();
        assert_eq!(items.len(), 1, "{action}: {items:?}");
        let e = &items[0];
        assert_eq!(e["action"], json!(action));
        assert_eq!(e["actor_id"], json!(boss.id), "{action}");
        assert_eq!(e["target"], json!(target.id), "{action}");
        assert_eq!(e["outcome"], json!("success"));
        assert_eq!(e["request_id"], json!(rid));
        assert_eq!(e["ip"], json!("127.0.0.1"));
        assert!(e["at"].as_str().unwrap().ends_with('Z') && e["id"].as_str().unwrap().len() == 36);
    }

    // The whole log, two at a time: newest first, every event once.
    let (items, _) = all_pages(&app, &boss, "/admin/audit", 2).await;
    let got = ids(&items);
    assert_eq!(got.len(), got.iter().collect::<HashSet<_>>().len(), "duplicates across pages");
    assert_eq!(got.len() as i64, app.count("audit_log").await);
    let actions: Vec<&str> = items.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions[..4], ["user_deleted", "user_unlocked", "user_locked", "role_changed"]);

    // Filter by actor: only what the admin did (and their own logins).
    let (mine, _) = all_pages(&app, &boss, &format!("/admin/audit?actor={}", boss.id), 3).await;
    assert!(mine.iter().all(|e| e["actor_id"] == json!(boss.id)));
    assert!(mine.len() >= 4 + 2, "{mine:?}");

    for (query, field) in [
        ("action=everything", "action"),
        ("action=role_changed'%20OR%20'1'='1", "action"),
        ("actor=someone", "actor"),
        ("limit=500", "limit"),
        ("cursor=zz", "cursor"),
        ("sort=asc", "sort"),
    ] {
        let r = bearer(&app, Method::GET, &format!("/admin/audit?{query}"), &boss.token, None).await;
        r.assert_problem(400);
        assert_eq!(r.error_fields(), [field], "{query}");
    }
    // A defined action that nothing has written yet is an empty page, not an error.
    let r = bearer(&app, Method::GET, "/admin/audit?action=mfa_enabled", &boss.token, None).await;
    assert_eq!(r.json()["items"], json!([]));
}

/// `DELETE /admin/users/{id}/sessions`: every login of the user ends at once (cookie session,
/// access token, refresh token), the account itself stays usable, and nobody but an admin can do
/// it to anyone.
#[tokio::test]
async fn ending_a_users_sessions_ends_every_login_and_keeps_the_account() {
    let app = TestApp::spawn().await;
    let boss = admin(&app).await;
    let mut target = user(&app).await;
    let other = user(&app).await;
    let path = format!("/admin/users/{}/sessions", target.id);
    TestApp::send(app.request(Method::DELETE, &path)).await.assert_problem(401);
    bearer(&app, Method::DELETE, &path, &other.token, None).await.assert_problem(403);
    let own = format!("/admin/users/{}/sessions", target.id);
    bearer(&app, Method::DELETE, &own, &target.token, None).await.assert_problem(403);
    assert_eq!(logins_alive(&app, &mut target).await, (true, true, true));

    let r = bearer(&app, Method::DELETE, &path, &boss.token, None).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(logins_alive(&app, &mut target).await, (false, false, false));
    // Only that user's logins: the admin's and another user's stay.
    assert_eq!(app.get_bearer("/auth/me", &boss.token).await.status, 200);
    assert_eq!(app.get_bearer("/auth/me", &other.token).await.status, 200);
    // The account is not locked: its owner signs in again.
    let mut again = app.sign_in(&target.email).await;
    assert_eq!(logins_alive(&app, &mut again).await, (true, true, true));
    let pool = app.db().await;
    let audited: Vec<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT actor_id, target FROM audit_log WHERE action = 'session_revoked'")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    assert_eq!(audited, vec![(Some(boss.id.clone()), Some(target.id.clone()))]);

    for missing in [uuid::Uuid::new_v4().to_string(), "not-an-id".to_owned()] {
        let r = bearer(&app, Method::DELETE, &format!("/admin/users/{missing}/sessions"), &boss.token, None).await;
        r.assert_problem(404);
    }
}

//! The admin console (`/ui/admin/...`), black-box: role gating (anonymous → 303 to the sign-in
//! page, a plain user → a 403 page, an admin → the page), the CSRF token on every form (missing or
//! wrong → 403 and nothing changed), that each action really happens (a locked user's next
//! sign-in is refused, the audit log shows it, unlock lets them back in), the last-admin rule shown
//! and enforced, attacker-chosen text escaped, and the filters checked like the API's.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

const PAGES: [&str; 5] = ["/ui/admin", "/ui/admin/users", "/ui/admin/audit", "/ui/admin/policy", "/ui/admin/keys"];

/// The six actions of the user page, each a form with only the CSRF token (roles adds two fields).
const ACTIONS: [&str; 6] = ["lock", "unlock", "roles", "mfa-reset", "sessions", "delete"];

async fn page(app: &TestApp, path: &str, s: &Session) -> Resp {
    app.get_as(path, s).await
}

/// A form POST as a browser sends it: the session cookie, urlencoded fields.
async fn post_form(app: &TestApp, path: &str, s: &Session, fields: &[(&str, &str)]) -> Resp {
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
    let rb = app
        .request(Method::POST, path)
        .header("cookie", s.cookie_header())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.join("&"));
    TestApp::send(rb).await
}

/// Percent-encodes everything but unreserved characters.
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn fields_of(action: &str) -> Vec<(&'static str, &'static str)> {
    if action == "roles" { vec![("role", "manager"), ("grant", "true")] } else { Vec::new() }
}

async fn act(app: &TestApp, admin: &Session, id: &str, action: &str) -> Resp {
    let mut fields = vec![("csrf_token", admin.csrf.as_str())];
    fields.extend(fields_of(action));
    post_form(app, &format!("/ui/admin/users/{id}/{action}"), admin, &fields).await
}

fn assert_page(r: &Resp, status: u16) -> String {
    assert_eq!(r.status, status, "{}", r.text());
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("text/html")), "{:?}", r.header("content-type"));
    r.text()
}

fn assert_to_login(r: &Resp) {
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/ui/login"));
}

#[tokio::test]
async fn admin_pages_need_the_admin_role() {
    let app = TestApp::spawn().await;
    let admin = app.user_with_role("admin").await;
    let user = app.registered_user().await;
    let denied_before = app.audit_count("authz_denied").await;
    for path in PAGES.iter().copied().chain([format!("/ui/admin/users/{}", user.id).as_str()]) {
        assert_to_login(&app.get(path).await);
        let html = assert_page(&page(&app, path, &user.session).await, 403);
        assert!(html.contains("for administrators"), "{path}: {html}");
        assert_page(&page(&app, path, &admin.session).await, 200);
        // A bearer token, even an admin's, opens no page: only the cookie session counts.
        assert_to_login(&app.get_bearer(path, &admin.token).await);
    }
    // The plain user's probing is audited, as on the JSON admin API (coalesced, written in the
    // background: poll).
    let mut denied = 0;
    for _ in 0..50 {
        denied = app.audit_count("authz_denied").await;
        if denied > denied_before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(denied > denied_before);

    // A plain user's form, with their own valid CSRF token, is refused and changes nothing.
    let r = act(&app, &user.session, &admin.id, "lock").await;
    assert_page(&r, 403);
    assert_eq!(app.audit_count("user_locked").await, 0);
    assert_eq!(app.get_as("/auth/me", &admin.session).await.status, 200);
}

#[tokio::test]
async fn every_admin_form_needs_the_sessions_csrf_token() {
    let app = TestApp::spawn().await;
    let admin = app.user_with_role("admin").await;
    let target = app.registered_user().await;
    let other = app.registered_user().await;
    for action in ACTIONS {
        let path = format!("/ui/admin/users/{}/{action}", target.id);
        let extra = fields_of(action);
        let missing = post_form(&app, &path, &admin.session, &extra).await;
        assert_page(&missing, 403);
        let mut wrong = vec![("csrf_token", other.session.csrf.as_str())];
        wrong.extend(extra.iter().copied());
        assert_page(&post_form(&app, &path, &admin.session, &wrong).await, 403);
        let mut twice = vec![("csrf_token", admin.session.csrf.as_str()), ("csrf_token", "x")];
        twice.extend(extra.iter().copied());
        assert_page(&post_form(&app, &path, &admin.session, &twice).await, 403);
        // The header alone is not the form's token.
        let rb = app
            .request(Method::POST, &path)
            .header("cookie", admin.session.cookie_header())
            .header("x-csrf-token", &admin.session.csrf)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("");
        assert_page(&TestApp::send(rb).await, 403);
    }
    // Nothing happened: the target is still there, signed in, unlocked, a plain user.
    let me = app.get_as("/auth/me", &target.session).await;
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["roles"], json!(["user"]));
    for action in ["user_locked", "user_unlocked", "role_changed", "mfa_reset", "session_revoked", "user_deleted"] {
        assert_eq!(app.audit_count(action).await, 0, "{action}");
    }
    // Anonymous posts go to the sign-in page, also doing nothing.
    let rb = app
        .request(Method::POST, &format!("/ui/admin/users/{}/delete", target.id))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf_token={}", admin.session.csrf));
    assert_to_login(&TestApp::send(rb).await);
    assert_eq!(app.get_as("/auth/me", &target.session).await.status, 200);
}

#[tokio::test]
async fn lock_refuses_the_next_sign_in_shows_in_the_audit_log_and_unlock_undoes_it() {
    let app = TestApp::spawn().await;
    let admin = app.user_with_role("admin").await;
    let target = app.registered_user().await;

    // Found by a part of the email.
    let local = target.email.split('@').next().unwrap();
    let html = assert_page(&page(&app, &format!("/ui/admin/users?email={local}"), &admin.session).await, 200);
    assert!(html.contains(&format!("/ui/admin/users/{}", target.id)), "{html}");

    let r = act(&app, &admin.session, &target.id, "lock").await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some(format!("/ui/admin/users/{}", target.id).as_str()));
    // Their session ended and their next sign-in is refused.
    assert_eq!(app.get_as("/auth/me", &target.session).await.status, 401);
    let (r, _) = app.login(&target.email, STRONG_PASSWORD).await;
    assert_eq!(r.status, 423, "{}", r.text());
    let html = assert_page(&page(&app, &format!("/ui/admin/users/{}", target.id), &admin.session).await, 200);
    assert!(html.contains("Locked until"), "{html}");

    // The audit log shows it, with who, from where and the request id, filtered by action and
    // by the actor's email.
    let path = format!("/ui/admin/audit?action=user_locked&actor={}", encode(&admin.email));
    let html = assert_page(&page(&app, &path, &admin.session).await, 200);
    assert!(html.contains(&target.id) && html.contains("127.0.0.1"), "{html}");
    let html = assert_page(&page(&app, "/ui/admin/audit?action=user_unlocked", &admin.session).await, 200);
    assert!(html.contains("No event matches"), "{html}");

    let r = act(&app, &admin.session, &target.id, "unlock").await;
    assert_eq!(r.status, 303, "{}", r.text());
    let (r, _) = app.login(&target.email, STRONG_PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(app.audit_count("user_unlocked").await, 1);
    // A sign-in shows how it was made.
    let path = format!("/ui/admin/audit?action=login_success&actor={}", target.id);
    let html = assert_page(&page(&app, &path, &admin.session).await, 200);
    assert!(html.contains("login_success (password)"), "{html}");
}

#[tokio::test]
async fn roles_sessions_mfa_reset_and_delete_happen_through_the_same_rules() {
    let app = TestApp::spawn().await;
    let admin = app.user_with_role("admin").await;
    let target = app.registered_user().await;

    let r = act(&app, &admin.session, &target.id, "roles").await;
    assert_eq!(r.status, 303, "{}", r.text());
    let got = app.get_bearer(&format!("/admin/users/{}", target.id), &admin.token).await;
    assert_eq!(got.json()["roles"], json!(["user", "manager"]));
    // A role change ends the target's logins, as PATCH does.
    assert_eq!(app.get_as("/auth/me", &target.session).await.status, 401);
    // An unknown role is refused with the API's words, as a 400 page.
    let fields = [("csrf_token", admin.session.csrf.as_str()), ("role", "root"), ("grant", "true")];
    let html = assert_page(
        &post_form(&app, &format!("/ui/admin/users/{}/roles", target.id), &admin.session, &fields).await,
        400,
    );
    assert!(html.contains("unknown role"), "{html}");

    let target = app.sign_in(&target.email).await;
    let r = act(&app, &admin.session, &target.id, "sessions").await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(app.get_as("/auth/me", &target.session).await.status, 401);
    assert_eq!(app.get_bearer("/auth/me", &target.token).await.status, 401);

    let r = act(&app, &admin.session, &target.id, "mfa-reset").await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(app.audit_count("mfa_reset").await, 1);
    // Not one's own second factor: a 403 page, nothing done.
    assert_page(&act(&app, &admin.session, &admin.id, "mfa-reset").await, 403);
    assert_eq!(app.audit_count("mfa_reset").await, 1);

    let r = act(&app, &admin.session, &target.id, "delete").await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/ui/admin/users"));
    assert_page(&page(&app, &format!("/ui/admin/users/{}", target.id), &admin.session).await, 404);
    let (r, _) = app.login(&target.email, STRONG_PASSWORD).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn the_last_admin_rule_is_shown_and_enforced() {
    let app = TestApp::spawn().await;
    let admin = app.user_with_role("admin").await;
    let own = format!("/ui/admin/users/{}", admin.id);
    let html = assert_page(&page(&app, &own, &admin.session).await, 200);
    assert!(html.contains("last active admin"), "{html}");
    // The delete button is there but disabled, tied to its reason.
    assert!(html.contains(r#"disabled aria-describedby="why-delete""#), "{html}");

    // A hand-made POST past the disabled button meets the store's rule: 409, still there.
    let html = assert_page(&act(&app, &admin.session, &admin.id, "delete").await, 409);
    assert!(html.contains("last active admin"), "{html}");
    assert_eq!(app.get_as("/auth/me", &admin.session).await.status, 200);
    // Locking oneself and changing one's own roles: 403 pages.
    assert_page(&act(&app, &admin.session, &admin.id, "lock").await, 403);
    assert_page(&act(&app, &admin.session, &admin.id, "roles").await, 403);
    assert_eq!(app.audit_count("user_deleted").await + app.audit_count("user_locked").await, 0);

    // With a second admin, the first one's page no longer shows the rule.
    let second = app.user_with_role("admin").await;
    let html = assert_page(&page(&app, &format!("/ui/admin/users/{}", admin.id), &second.session).await, 200);
    assert!(!html.contains("last active admin"), "{html}");
    assert!(!html.contains(r#"disabled aria-describedby="why-delete""#), "{html}");
}

#[tokio::test]
async fn attacker_chosen_text_is_escaped_in_the_console() {
    let app = TestApp::spawn().await;
    let admin = app.user_with_role("admin").await;
    let payload = r#""><script>alert(1)</script><img src=x onerror=alert(2)>{{7*7}}"#;
    let target = app.registered_user().await;
    let r = app.send_as(Method::PATCH, "/auth/me", &target.session, Some(&json!({ "display_name": payload }))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // A sign-in with the payload as its User-Agent lands in the audit log.
    let rb = app
        .request(Method::POST, "/auth/login")
        .header("user-agent", payload)
        .json(&json!({ "email": target.email, "password": STRONG_PASSWORD }));
    assert_eq!(TestApp::send(rb).await.status, 200);

    let pages = [
        format!("/ui/admin/users?email={}", encode(&target.email)),
        format!("/ui/admin/users/{}", target.id),
        format!("/ui/admin/audit?actor={}", target.id),
        format!("/ui/admin/users?email={}", encode("<script>x")),
    ];
    for path in &pages {
        let html = assert_page(&page(&app, path, &admin.session).await, 200);
        // The raw payload never appears; the layout's own `<script type="module" src=...>` may.
        assert!(!html.contains("<script>alert") && !html.contains("<img src=x"), "{path}: {html}");
        assert!(!html.contains("<script>x"), "{path}: {html}");
    }
    let html = page(&app, &pages[1], &admin.session).await.text();
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
    let html = page(&app, &pages[2], &admin.session).await.text();
    assert!(html.contains("&lt;img src=x onerror=alert(2)&gt;"), "the user agent is shown, escaped: {html}");
    let html = page(&app, &pages[3], &admin.session).await.text();
    assert!(html.contains("value=\"&lt;script&gt;x\""), "the echoed filter is escaped: {html}");
}

#[tokio::test]
async fn filters_are_checked_and_pages_follow_on() {
    let app = TestApp::spawn().await;
    let admin = app.user_with_role("admin").await;
    for bad in [
        "/ui/admin/audit?action=drop_table",
        "/ui/admin/audit?since=yesterday",
        "/ui/admin/audit?actor=not-an-email",
        "/ui/admin/audit?cursor=abc",
        "/ui/admin/audit?page=2",
        "/ui/admin/users?cursor=abc",
    ] {
        assert_page(&page(&app, bad, &admin.session).await, 400);
    }
    // A time range: nothing before 2000, everything since then.
    let html = assert_page(&page(&app, "/ui/admin/audit?until=2000-01-01T00:00", &admin.session).await, 200);
    assert!(html.contains("No event matches"), "{html}");
    let html = assert_page(&page(&app, "/ui/admin/audit?since=2000-01-01T00:00", &admin.session).await, 200);
    assert!(html.contains("login_success"), "{html}");

    // Users a page at a time, the search kept in the next page's link.
    let a = app.registered_user().await;
    let b = app.registered_user().await;
    let first = assert_page(&page(&app, "/ui/admin/users?email=example&limit=1", &admin.session).await, 200);
    let next = first.split("href=\"/ui/admin/users?").nth(1).and_then(|s| s.split('"').next()).unwrap();
    let next = next.replace("&amp;", "&");
    assert!(next.contains("email=example"), "{next}");
    let mut seen = first.matches("href=\"/ui/admin/users/").count();
    let mut url = format!("/ui/admin/users?{next}");
    for _ in 0..5 {
        let html = assert_page(&page(&app, &url, &admin.session).await, 200);
        seen += html.matches("href=\"/ui/admin/users/").count();
        match html.split("href=\"/ui/admin/users?").nth(1).and_then(|s| s.split('"').next()) {
            Some(n) => url = format!("/ui/admin/users?{}", n.replace("&amp;", "&")),
            None => break,
        }
    }
    assert!(seen >= 3, "admin, {} and {} each on a page of one", a.email, b.email);
}

#[tokio::test]
async fn the_policy_and_keys_pages_read_the_running_configuration() {
    let app = TestApp::builder().toml(crate::resources::RESOURCES).spawn().await;
    let admin = app.user_with_role("admin").await;
    let html = assert_page(&page(&app, "/ui/admin/policy", &admin.session).await, 200);
    for expected in
        ["orders", "things", "owner | role:admin | role:manager", "role manager", "own records", "all records"]
    {
        assert!(html.contains(expected), "{expected}: {html}");
    }
    let keys = app.get("/.well-known/jwks.json").await.json();
    let kid = keys["keys"][0]["kid"].as_str().unwrap().to_owned();
    let html = assert_page(&page(&app, "/ui/admin/keys", &admin.session).await, 200);
    assert!(html.contains(&kid) && html.contains("current"), "{html}");
    assert!(!html.contains("PRIVATE KEY") && !html.contains("\"d\""), "{html}");
    let html = assert_page(&page(&app, "/ui/admin", &admin.session).await, 200);
    assert!(html.contains("ready"), "{html}");
}

#[tokio::test]
async fn records_pages_use_the_record_policy_and_escape_field_values() {
    let app = TestApp::builder().toml(crate::resources::RESOURCES).spawn().await;
    let admin = app.user_with_role("admin").await;
    let owner = app.registered_user().await;
    let payload = r#"<script>alert(1)</script>"#;
    let r = app
        .send_as(Method::POST, "/api/orders", &owner.session, Some(&json!({ "item": payload, "quantity": 2 })))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();

    // Listed, filtered with the API's own parameters, the payload shown as text.
    let html =
        assert_page(&page(&app, "/ui/admin/records/orders?quantity=2&sort=-created_at", &admin.session).await, 200);
    assert!(html.contains(&id) && html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
    assert!(!html.contains("<script>alert"), "{html}");
    assert_page(&page(&app, "/ui/admin/records/orders?secret_column=1", &admin.session).await, 400);
    assert_page(&page(&app, "/ui/admin/records/orders", &owner.session).await, 403);
    let path = format!("/ui/admin/records/orders/{id}");
    let html = assert_page(&page(&app, &path, &admin.session).await, 200);
    assert!(!html.contains("<script>alert"), "{html}");

    // An edit is a PATCH by the admin: typed, validated, 303 back to the record.
    let edit = format!("{path}/edit");
    let fields = [("csrf_token", admin.session.csrf.as_str()), ("quantity", "7"), ("status", "paid")];
    let r = post_form(&app, &edit, &admin.session, &fields).await;
    assert_eq!(r.status, 303, "{}", r.text());
    let got = app.send_as(Method::GET, &format!("/api/orders/{id}"), &owner.session, None).await.json();
    assert_eq!((got["quantity"].clone(), got["status"].clone()), (json!(7), json!("paid")));
    let fields = [("csrf_token", admin.session.csrf.as_str()), ("quantity", "0")];
    assert_page(&post_form(&app, &edit, &admin.session, &fields).await, 400);
    let fields = [("quantity", "9")];
    assert_page(&post_form(&app, &edit, &admin.session, &fields).await, 403);
    let got = app.send_as(Method::GET, &format!("/api/orders/{id}"), &owner.session, None).await.json();
    assert_eq!(got["quantity"], json!(7), "refused edits changed nothing");

    // `things` grants only owners: the admin's pages are refused as the API refuses them.
    let r = app
        .send_as(
            Method::POST,
            "/api/things",
            &owner.session,
            Some(&json!({
        "code": "AB-1", "count": 1, "ratio": 0.5, "active": true, "kind": "a",
        "due": "2026-12-06T00:00:00Z", "ref": "8cdeda35-5950-4157-96c5-4dd18860108a" })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let thing = r.json()["id"].as_str().unwrap().to_owned();
    // `list = "owner"`: the admin lists only their own things, none of the owner's.
    let html = assert_page(&page(&app, "/ui/admin/records/things", &admin.session).await, 200);
    assert!(!html.contains(&thing) && html.contains("No record matches"), "{html}");
    assert_page(&page(&app, &format!("/ui/admin/records/things/{thing}"), &admin.session).await, 404);
    let del = [("csrf_token", admin.session.csrf.as_str())];
    assert_page(&post_form(&app, &format!("/ui/admin/records/things/{thing}/delete"), &admin.session, &del).await, 404);
    assert_eq!(app.send_as(Method::GET, &format!("/api/things/{thing}"), &owner.session, None).await.status, 200);

    // `orders` lets admins delete.
    let r = post_form(&app, &format!("{path}/delete"), &admin.session, &del).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(app.send_as(Method::GET, &format!("/api/orders/{id}"), &owner.session, None).await.status, 404);
}

#[tokio::test]
async fn ui_admin_creates_a_service_account_and_its_keys() {
    let app = TestApp::builder().toml(crate::resources::RESOURCES).spawn().await;
    let admin = app.user_with_role("admin").await;
    let user = app.registered_user().await;
    let payload = r#"<script>window.pwned=1</script>bot"#;
    let fields = [("csrf_token", admin.session.csrf.as_str()), ("name", payload), ("role", "user")];
    let users_before = app.count("users").await;

    // Not an admin (with their own valid token), no token, a smuggled field: refused, nothing made.
    let theirs = [("csrf_token", user.session.csrf.as_str()), ("name", "x"), ("role", "user")];
    assert!(
        assert_page(&post_form(&app, "/ui/admin/service-accounts", &user.session, &theirs).await, 403)
            .contains("for administrators")
    );
    assert_page(&post_form(&app, "/ui/admin/service-accounts", &admin.session, &fields[1..]).await, 403);
    let mut smuggled = fields.to_vec();
    smuggled.push(("password", "x"));
    assert_page(&post_form(&app, "/ui/admin/service-accounts", &admin.session, &smuggled).await, 400);
    assert_eq!(app.count("users").await, users_before);

    let r = post_form(&app, "/ui/admin/service-accounts", &admin.session, &fields).await;
    assert_eq!(r.status, 303, "{}", r.text());
    let detail = r.header("location").unwrap().to_owned();
    let id = detail.strip_prefix("/ui/admin/users/").unwrap().to_owned();
    assert_eq!(app.audit_count("service_account_created").await, 1);
    for path in ["/ui/admin/users", detail.as_str()] {
        let html = assert_page(&page(&app, path, &admin.session).await, 200);
        assert!(html.contains("Service account"), "{path}: {html}");
        assert!(!html.contains("<script>window.pwned") && html.contains("&lt;script&gt;window.pwned"), "{html}");
        crate::ui::assert_no_inline_code(&html);
    }
    assert!(assert_page(&page(&app, &detail, &admin.session).await, 200).contains(r#"id="api-keys-title""#));

    // A key for it, narrowed to creating orders, shown once; it acts as the service account.
    let keys = format!("{detail}/api-keys");
    let key_fields = [("csrf_token", admin.session.csrf.as_str()), ("name", "sync"), ("scope", "orders:create")];
    assert_page(&post_form(&app, &keys, &user.session, &key_fields).await, 403);
    let mut smuggled = key_fields.to_vec();
    smuggled.push(("user_id", admin.id.as_str()));
    assert_page(&post_form(&app, &keys, &admin.session, &smuggled).await, 400);
    // A person's id: 404, as on the API; an admin cannot mint a key in a person's name.
    let person = format!("/ui/admin/users/{}/api-keys", user.id);
    assert_page(&post_form(&app, &person, &admin.session, &key_fields).await, 404);
    assert_eq!(app.count("api_keys").await, 0);
    let r = post_form(&app, &keys, &admin.session, &key_fields).await;
    let html = assert_page(&r, 200);
    let key = crate::ui_account::shown_key(&html);
    let created = TestApp::send(
        app.request(Method::POST, "/api/orders").bearer_auth(&key).json(&json!({ "item": "x", "quantity": 1 })),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.json()["user_id"], id.as_str(), "owned by the service account");
    assert_eq!(TestApp::send(app.request(Method::GET, "/api/orders").bearer_auth(&key)).await.status, 403);
    assert!(!assert_page(&page(&app, &detail, &admin.session).await, 200).contains(&key));

    // Revoke from its page: the key is dead at once.
    let listed = app.get_bearer(&format!("/admin/api-keys?user={id}"), &admin.token).await.json();
    let key_id = listed["items"][0]["id"].as_str().unwrap().to_owned();
    let revoke = format!("{detail}/api-keys/revoke");
    assert_page(&post_form(&app, &revoke, &admin.session, &[("id", &key_id)]).await, 403);
    let r = post_form(&app, &revoke, &admin.session, &[("csrf_token", &admin.session.csrf), ("id", &key_id)]).await;
    assert_eq!((r.status, r.header("location")), (303, Some(detail.as_str())), "{}", r.text());
    assert_eq!(TestApp::send(app.request(Method::GET, "/api/orders").bearer_auth(&key)).await.status, 401);
}

//! The account pages without a browser: every change goes through the same flow as its JSON
//! twin (so its effect shows on the API), client text is escaped, the mailed links lead to the
//! pages, and two-step verification can be set up and used on the pages alone.

use reqwest::Method;

use crate::helpers::*;
use crate::mail_sink::{MAIL_TIMEOUT, MailSink};
use crate::mfa::{STEP, settled_now, totp_code};
use crate::ui::{Visitor, csrf_in};

async fn api_status(app: &TestApp, cookie: &str) -> u16 {
    let rb = app.request(Method::GET, "/auth/me").header("cookie", format!("__Host-rampart_session={cookie}"));
    TestApp::send(rb).await.status
}

#[tokio::test]
async fn account_changes_go_through_the_flows_and_client_text_is_escaped() {
    let app = TestApp::spawn().await;
    let (email, other) = app.user().await;
    let mut v = Visitor::new(&app);
    v.sign_in(&email, STRONG_PASSWORD).await;
    let token = csrf_in(&v.get("/ui/account").await.text());

    let payload = r#""><script>window.pwned=1</script><img src=x onerror=alert(1)>{{7*7}}"#;
    let r = v.post("/ui/account/profile", &[("csrf_token", &token), ("display_name", payload)]).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/account?notice=saved")), "{}", r.text());
    let html = v.get("/ui/account").await.text();
    assert!(!html.contains("<script>window.pwned") && !html.contains("<img src=x"), "unescaped: {html}");
    assert!(html.contains("&lt;script&gt;window.pwned=1&lt;/script&gt;"), "{html}");
    crate::ui::assert_no_inline_code(&html);
    let me = TestApp::send(app.request(Method::GET, "/auth/me").header("cookie", other.cookie_header())).await;
    assert_eq!(me.json()["display_name"], payload, "the same stored value the API sees");
    // Over the limit: the flow's message next to the field, 400.
    let long = "x".repeat(101);
    let r = v.post("/ui/account/profile", &[("csrf_token", &token), ("display_name", &long)]).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("f-display_name-error"));

    // The other session is listed with its id, and signing it out ends it on the API.
    let html = v.get("/ui/account").await.text();
    assert!(html.contains("This device"), "{html}");
    let sessions =
        TestApp::send(app.request(Method::GET, "/auth/sessions").header("cookie", other.cookie_header())).await.json();
    let other_id =
        sessions.as_array().unwrap().iter().find(|s| s["current"] == true).unwrap()["id"].as_str().unwrap().to_owned();
    assert!(html.contains(&other_id), "{html}");
    let r = v.post("/ui/account/sessions/revoke", &[("csrf_token", &token), ("id", &other_id)]).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/account?notice=session_revoked")));
    assert_eq!(api_status(&app, &other.cookie).await, 401);
    // Someone else's session id, or one already ended: 404 page, nothing done.
    let (_, stranger) = app.user().await;
    let their = TestApp::send(app.request(Method::GET, "/auth/sessions").header("cookie", stranger.cookie_header()))
        .await
        .json();
    let their_id = their[0]["id"].as_str().unwrap().to_owned();
    let r = v.post("/ui/account/sessions/revoke", &[("csrf_token", &token), ("id", &their_id)]).await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(api_status(&app, &stranger.cookie).await, 200);

    // Password change: the current password is required (403, audited as a failure), then it works.
    let before = app.audit_count_with("password_changed", Some("failure")).await;
    let wrong = [
        ("csrf_token", token.as_str()),
        ("username", email.as_str()),
        ("current_password", "not my password at all"),
        ("new_password", OTHER_STRONG_PASSWORD),
    ];
    let r = v.post("/ui/account/password", &wrong).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("The current password is not correct"), "{}", r.text());
    assert_eq!(app.audit_count_with("password_changed", Some("failure")).await, before + 1);
    let right = [
        ("csrf_token", token.as_str()),
        ("username", email.as_str()),
        ("current_password", STRONG_PASSWORD),
        ("new_password", OTHER_STRONG_PASSWORD),
    ];
    let r = v.post("/ui/account/password", &right).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/account?notice=password_changed")), "{}", r.text());
    assert_eq!(app.login(&email, STRONG_PASSWORD).await.0.status, 401);
    assert_eq!(app.login(&email, OTHER_STRONG_PASSWORD).await.0.status, 200);
    assert_eq!(v.get("/ui/account").await.status, 200, "this session stays");
}

/// Register on the page, confirm by the mailed link's page, forget the password, set a new one
/// from the mailed link's page. The links point at `/ui/verify#token=` and `/ui/reset#token=`.
#[tokio::test]
async fn register_verify_and_reset_by_the_mailed_links() {
    let sink = MailSink::start();
    let app = sink.configure(TestApp::builder()).spawn().await;
    let email = unique_email();
    let mut v = Visitor::new(&app);
    let token = v.form_token("/ui/register").await;
    let r = v.post("/ui/register", &[("csrf_token", &token), ("email", &email), ("password", STRONG_PASSWORD)]).await;
    assert_eq!(r.status, 303, "{}", r.text());
    let mail = sink.wait_for(&email, "Verify your email", MAIL_TIMEOUT).await;
    let mailed = mail.token();
    assert!(mail.body.contains(&format!("http://localhost/ui/verify#token={mailed}")), "{}", mail.body);
    let page = v.get("/ui/verify").await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("data-fragment-token"), "{}", page.text());
    let token = csrf_in(&page.text());
    let r = v.post("/ui/verify", &[("csrf_token", &token), ("token", "not-a-token")]).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = v.post("/ui/verify", &[("csrf_token", &token), ("token", &mailed)]).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/login?notice=verified")), "{}", r.text());
    let (_, s) = app.login(&email, STRONG_PASSWORD).await;
    let me = TestApp::send(app.request(Method::GET, "/auth/me").header("cookie", s.unwrap().cookie_header())).await;
    assert_eq!(me.json()["email_verified"], true);

    let token = v.form_token("/ui/forgot").await;
    let r = v.post("/ui/forgot", &[("csrf_token", &token), ("email", &email)]).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/forgot?notice=reset_sent")));
    let mail = sink.wait_for(&email, "Reset your password", MAIL_TIMEOUT).await;
    let mailed = mail.token();
    assert!(mail.body.contains(&format!("http://localhost/ui/reset#token={mailed}")), "{}", mail.body);
    let token = v.form_token("/ui/reset").await;
    let weak = v.post("/ui/reset", &[("csrf_token", &token), ("token", &mailed), ("new_password", "password")]).await;
    assert_eq!(weak.status, 400, "{}", weak.text());
    assert!(weak.text().contains("f-new_password-error"), "{}", weak.text());
    let r = v
        .post("/ui/reset", &[("csrf_token", &token), ("token", &mailed), ("new_password", OTHER_STRONG_PASSWORD)])
        .await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/login?notice=reset_done")), "{}", r.text());
    assert_eq!(app.login(&email, OTHER_STRONG_PASSWORD).await.0.status, 200);
    // Spent: the same link does nothing more.
    let again =
        v.post("/ui/reset", &[("csrf_token", &token), ("token", &mailed), ("new_password", STRONG_PASSWORD)]).await;
    assert_eq!(again.status, 400);
}

/// Two-step verification set up on the page (QR code as a data: image of our SVG), enabled with
/// the password and a code (recovery codes shown once, 200), then used to sign in: a TOTP code,
/// then a recovery code; turned off with the password and a code.
#[tokio::test]
async fn two_step_verification_on_the_pages() {
    let app = TestApp::spawn().await;
    let (email, _) = app.user().await;
    let mut v = Visitor::new(&app);
    v.sign_in(&email, STRONG_PASSWORD).await;
    let token = csrf_in(&v.get("/ui/account").await.text());
    let r = v.post("/ui/account/mfa/setup", &[("csrf_token", &token)]).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/account/mfa")));
    let html = v.get("/ui/account/mfa").await.text();
    assert!(html.contains(r#"src="data:image/svg+xml;base64,"#), "{html}");
    let start = html.find(r#"<code id="totp-secret">"#).unwrap() + r#"<code id="totp-secret">"#.len();
    let secret = html[start..start + html[start..].find('<').unwrap()].to_owned();
    let now = settled_now().await;
    let wrong_password =
        [("csrf_token", token.as_str()), ("code", &totp_code(&secret, now)), ("password", "not my password at all")];
    assert_eq!(v.post("/ui/account/mfa/enable", &wrong_password).await.status, 403);
    let r = v
        .post(
            "/ui/account/mfa/enable",
            &[("csrf_token", &token), ("code", &totp_code(&secret, now)), ("password", STRONG_PASSWORD)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let html = r.text();
    let codes: Vec<String> = html.split("<li><code>").skip(1).map(|c| c[..c.find('<').unwrap()].to_owned()).collect();
    assert_eq!(codes.len(), 10, "{html}");
    // Reloading (posting again) shows no codes.
    let again = v
        .post(
            "/ui/account/mfa/enable",
            &[("csrf_token", &token), ("code", &totp_code(&secret, now + STEP)), ("password", STRONG_PASSWORD)],
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.text());
    assert!(!again.text().contains(&codes[0]));

    let r = v.post("/ui/logout", &[("csrf_token", &token)]).await;
    assert_eq!(r.status, 303);
    let t = sign_in_to_code_page(&mut v, &email).await;
    let r = v.post("/ui/mfa", &[("csrf_token", &t), ("code", &totp_code(&secret, now + STEP))]).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/account")), "{}", r.text());
    let token = csrf_in(&v.get("/ui/account").await.text());
    assert_eq!(v.post("/ui/logout", &[("csrf_token", &token)]).await.status, 303);
    let t = sign_in_to_code_page(&mut v, &email).await;
    let r = v.post("/ui/mfa", &[("csrf_token", &t), ("code", &codes[0])]).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/account")), "{}", r.text());

    let token = csrf_in(&v.get("/ui/account/mfa").await.text());
    let r = v
        .post("/ui/account/mfa/disable", &[("csrf_token", &token), ("password", STRONG_PASSWORD), ("code", &codes[1])])
        .await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/account?notice=mfa_disabled")), "{}", r.text());
    let (r, _) = app.login(&email, STRONG_PASSWORD).await;
    assert_eq!(r.status, 200, "no second factor any more");
}

/// Password accepted, second factor asked for: the code page's form token.
async fn sign_in_to_code_page(v: &mut Visitor<'_>, email: &str) -> String {
    let t = v.form_token("/ui/login").await;
    let r = v.post("/ui/login", &[("csrf_token", &t), ("email", email), ("password", STRONG_PASSWORD)]).await;
    assert_eq!(r.header("location"), Some("/ui/mfa"), "{}", r.text());
    v.form_token("/ui/mfa").await
}

/// A form post with repeated fields (checkboxes), as a browser sends it, with `s`'s cookie.
async fn post_fields(app: &TestApp, path: &str, s: &Session, fields: &[(&str, &str)]) -> Resp {
    let rb = app
        .request(Method::POST, path)
        .header("cookie", s.cookie_header())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(fields).unwrap());
    TestApp::send(rb).await
}

/// The key a "new API key" page shows.
pub fn shown_key(html: &str) -> String {
    let at = html.find("rpk_").unwrap_or_else(|| panic!("no key in {html}"));
    let rest = &html[at..];
    rest[..rest.find('<').unwrap()].to_owned()
}

async fn with_key(app: &TestApp, key: &str, method: Method, path: &str) -> u16 {
    let mut rb = app.request(method.clone(), path).bearer_auth(key);
    if method == Method::POST {
        rb = rb.json(&serde_json::json!({ "item": "x", "quantity": 1 }));
    }
    TestApp::send(rb).await.status
}

#[tokio::test]
async fn ui_api_keys_are_made_narrowed_shown_once_and_revoked_on_the_account_page() {
    let app = TestApp::builder().toml(crate::resources::RESOURCES).spawn().await;
    let alice = app.user_with_role("manager").await;
    let bob = app.registered_user().await;
    let page = app.get_as("/ui/account", &alice.session).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    assert!(html.contains(r#"id="api-keys-title""#) && html.contains(r#"value="orders:read""#), "{html}");
    assert!(html.contains(r#"name="role" value="manager""#), "the owner's roles are offered: {html}");
    let form = "/ui/account/api-keys";
    let csrf = alice.session.csrf.as_str();
    let payload = r#"<script>window.pwned=1</script><img src=x onerror=alert(1)>"#;
    let fields = [
        ("csrf_token", csrf),
        ("name", payload),
        ("expires_in_days", "7"),
        ("role", "user"),
        ("scope", "orders:read"),
        ("scope", "orders:list"),
    ];

    // The form's token is the whole defence against a foreign page posting it: without it, or
    // with another session's, a 403 page and nothing stored.
    let missing: Vec<_> = fields.iter().copied().filter(|(k, _)| *k != "csrf_token").collect();
    assert_eq!(post_fields(&app, form, &alice.session, &missing).await.status, 403);
    let mut wrong = fields.to_vec();
    wrong[0] = ("csrf_token", bob.session.csrf.as_str());
    assert_eq!(post_fields(&app, form, &alice.session, &wrong).await.status, 403);
    // A smuggled owner (CVE-2025-61928): refused as an unknown field, never used.
    let mut smuggled = fields.to_vec();
    smuggled.push(("user_id", bob.id.as_str()));
    let r = post_fields(&app, form, &alice.session, &smuggled).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("unknown field"), "{}", r.text());
    // The flow's narrowing rules, as field errors: a role the owner lacks, a bad expiry.
    let mut not_mine = fields.to_vec();
    not_mine[3] = ("role", "admin");
    let r = post_fields(&app, form, &alice.session, &not_mine).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains(r#"aria-describedby="f-roles-error""#), "{}", r.text());
    let mut bad_days = fields.to_vec();
    bad_days[2] = ("expires_in_days", "soon");
    let r = post_fields(&app, form, &alice.session, &bad_days).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains(r#"aria-describedby="f-expires_in_days-hint f-expires_in_days-error""#), "{}", r.text());
    assert_eq!(app.count("api_keys").await, 0, "no refused form stored a key");

    // Created: a 200 page (not a redirect) showing the key, not cached, the name escaped.
    let r = post_fields(&app, form, &alice.session, &fields).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("cache-control").is_some_and(|c| c.contains("no-store")), "{:?}", r.headers);
    let html = r.text();
    assert!(!html.contains("<script>window.pwned") && html.contains("&lt;script&gt;window.pwned"), "{html}");
    crate::ui::assert_no_inline_code(&html);
    let key = shown_key(&html);
    assert_eq!(app.count("api_keys").await, 1);
    assert_eq!(app.audit_count("api_key_created").await, 1);

    // It works on the API within its narrowing: read and list orders, nothing else.
    assert_eq!(with_key(&app, &key, Method::GET, "/api/orders").await, 200);
    assert_eq!(with_key(&app, &key, Method::POST, "/api/orders").await, 403, "create is not in its scopes");
    assert_eq!(with_key(&app, &key, Method::GET, "/api/things").await, 403, "things are not in its scopes");
    let listed = TestApp::send(app.request(Method::GET, "/auth/api-keys").bearer_auth(&alice.token)).await.json();
    assert_eq!(listed[0]["roles"], serde_json::json!(["user"]), "{listed}");
    assert_eq!(listed[0]["name"], payload, "{listed}");
    assert!(bob_has_no_keys(&app, &bob).await);

    // The account page lists it, escaped, and never shows the key again.
    let html = app.get_as("/ui/account", &alice.session).await.text();
    assert!(!html.contains(&key) && !html.contains(&key[..40]), "the key is shown only once");
    assert!(html.contains(listed[0]["prefix"].as_str().unwrap()), "{html}");
    assert!(!html.contains("<script>window.pwned") && html.contains("&lt;script&gt;window.pwned"), "{html}");
    crate::ui::assert_no_inline_code(&html);

    // Revoke: another user (with their own valid token) gets a 404 and the key lives; a missing
    // token is a 403; the owner's revoke ends it at once.
    let id = listed[0]["id"].as_str().unwrap();
    let revoke = "/ui/account/api-keys/revoke";
    let r = post_fields(&app, revoke, &bob.session, &[("csrf_token", &bob.session.csrf), ("id", id)]).await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(post_fields(&app, revoke, &alice.session, &[("id", id)]).await.status, 403);
    assert_eq!(with_key(&app, &key, Method::GET, "/api/orders").await, 200);
    let r = post_fields(&app, revoke, &alice.session, &[("csrf_token", csrf), ("id", id)]).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/account?notice=api_key_revoked")), "{}", r.text());
    assert_eq!(with_key(&app, &key, Method::GET, "/api/orders").await, 401);
    assert_eq!(app.audit_count("api_key_revoked").await, 1);
    let r = post_fields(&app, revoke, &alice.session, &[("csrf_token", csrf), ("id", "not-an-id")]).await;
    assert_eq!(r.status, 404, "{}", r.text());
}

async fn bob_has_no_keys(app: &TestApp, bob: &TestUser) -> bool {
    let r = TestApp::send(app.request(Method::GET, "/auth/api-keys").bearer_auth(&bob.token)).await;
    r.json().as_array().is_some_and(Vec::is_empty)
}

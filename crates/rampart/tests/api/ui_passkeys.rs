//! Passkeys on the pages without a browser: the account page's list, rename and remove (the
//! same owner scope, recent sign-in, last-required-passkey rule and audit as the JSON routes,
//! and the form CSRF check), the push to enrol for a role that requires a passkey, and the
//! second-factor page's passkey (its start endpoint bound to the pre-session, its form answered
//! through the same second-factor flow). The ceremonies in a real browser: `browser.rs`.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;
use crate::passkeys::enrol;
use crate::ui::{Visitor, assert_no_inline_code, csrf_in};

/// The ids of the visitor's passkeys, as the JSON API lists them.
async fn passkey_ids(app: &TestApp, s: &Session) -> Vec<String> {
    let list = app.get_as("/auth/passkeys", s).await.json();
    list.as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn the_account_page_lists_renames_and_removes_passkeys_through_the_flows() {
    let app = TestApp::builder()
        .env("AUTH__REAUTH_WINDOW", "2s")
        .toml("[auth.passkeys]\nrequired_for_roles = [\"admin\"]")
        .spawn()
        .await;
    let u = app.registered_user().await;
    let mut v = Visitor::new(&app);
    v.sign_in(&u.email, STRONG_PASSWORD).await;
    let html = v.get("/ui/account").await.text();
    assert!(html.contains(r#"<span class="badge">Off</span>"#) && !html.contains("second-factors"), "{html}");
    let mut pk = enrol(&app, &u.session).await;
    enrol(&app, &u.session).await;
    let ids = passkey_ids(&app, &u.session).await;
    let html = v.get("/ui/account").await.text();
    // A passkey is a second factor (a password sign-in asks for it): the profile says so.
    assert!(html.contains(r#"<span class="hint" id="second-factors">passkey</span>"#), "{html}");
    assert!(!html.contains(r#"<span class="badge">Off</span>"#), "{html}");
    assert!(html.contains(r#"id="passkeys-table""#) && html.contains("Laptop"), "{html}");
    assert!(html.contains(&format!(r#"action="/ui/account/passkeys/{}/remove""#, ids[0])), "{html}");
    assert!(!html.contains(r#"id="passkey-required""#), "no push to enrol for a plain user: {html}");
    assert_no_inline_code(&html);
    let token = csrf_in(&html);
    let rename = format!("/ui/account/passkeys/{}/rename", ids[0]);
    let remove = format!("/ui/account/passkeys/{}/remove", ids[0]);

    // Rename: the name is shown escaped; a bad name is a page with the error, nothing renamed.
    let payload = r#""><img src=x onerror=alert(1)>"#;
    let r = v.post(&rename, &[("csrf_token", &token), ("name", payload)]).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/account?notice=passkey_renamed")), "{}", r.text());
    let html = v.get("/ui/account").await.text();
    assert!(!html.contains("<img src=x") && html.contains("&lt;img src=x"), "{html}");
    let listed = app.get_as("/auth/passkeys", &u.session).await.json();
    assert!(listed.as_array().unwrap().iter().any(|p| p["name"] == payload), "{listed}");
    let r = v.post(&rename, &[("csrf_token", &token), ("name", "  ")]).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("Passkey name: must not be empty"), "{}", r.text());
    // Without the form's token, or with another's: 403, nothing done.
    let r = v.post(&rename, &[("csrf_token", "forged"), ("name", "Forged")]).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = v.post(&rename, &[("name", "Forged")]).await;
    assert_eq!(r.status, 403, "{}", r.text());
    // Another user's passkey, or a malformed id: 404, like an unknown one.
    let mut stranger = Visitor::new(&app);
    let other = app.registered_user().await;
    stranger.sign_in(&other.email, STRONG_PASSWORD).await;
    let their_token = stranger.form_token("/ui/account").await;
    let r = stranger.post(&rename, &[("csrf_token", &their_token), ("name", "Mine now")]).await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = stranger.post(&remove, &[("csrf_token", &their_token)]).await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = v.post("/ui/account/passkeys/not-an-id/remove", &[("csrf_token", &token)]).await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = v.post(&remove, &[("csrf_token", "forged")]).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(app.count("passkeys").await, 2);
    let listed = app.get_as("/auth/passkeys", &u.session).await.json();
    assert!(!listed.to_string().contains("Forged") && !listed.to_string().contains("Mine now"), "{listed}");

    // Removing needs a sign-in within auth.reauth_window (2 s here): the page says so.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let r = v.post(&remove, &[("csrf_token", &token)]).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("you must sign in again"), "{}", r.text());
    assert_eq!(app.count("passkeys").await, 2);
    assert_eq!(app.audit_count("passkey_removed").await, 0);
    // After a fresh sign-in (password, then the passkey as the second factor) it goes, with
    // its audit event.
    let r = v.post("/ui/logout", &[("csrf_token", &token)]).await;
    assert_eq!(r.status, 303, "{}", r.text());
    let pre = to_second_factor(&mut v, &u.email).await;
    answer_with_passkey(&mut v, &pre, &mut pk).await;
    let token = v.form_token("/ui/account").await;
    let r = v.post(&remove, &[("csrf_token", &token)]).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/account?notice=passkey_removed")), "{}", r.text());
    assert_eq!(passkey_ids(&app, &u.session).await, vec![ids[1].clone()]);
    assert_eq!(app.audit_count("passkey_removed").await, 1);
    let r = v.post(&remove, &[("csrf_token", &token)]).await;
    assert_eq!(r.status, 404, "gone for good: {}", r.text());
}

#[tokio::test]
async fn a_role_that_requires_a_passkey_is_pushed_to_enrol_and_keeps_its_last_one() {
    let app = TestApp::builder().toml("[auth.passkeys]\nrequired_for_roles = [\"admin\"]").spawn().await;
    let admin = app.user_with_role("admin").await;
    let mut v = Visitor::new(&app);
    v.sign_in(&admin.email, STRONG_PASSWORD).await;
    let html = v.get("/ui/account").await.text();
    assert!(html.contains(r#"id="passkey-required""#), "the push to enrol: {html}");
    enrol(&app, &admin.session).await;
    let html = v.get("/ui/account").await.text();
    assert!(!html.contains(r#"id="passkey-required""#), "gone once enrolled: {html}");
    let id = passkey_ids(&app, &admin.session).await.remove(0);
    let r = v.post(&format!("/ui/account/passkeys/{id}/remove"), &[("csrf_token", &csrf_in(&html))]).await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("last passkey"), "{}", r.text());
    assert_eq!(app.count("passkeys").await, 1);
}

/// Signs in by password on the pages up to the second-factor page; returns its form token.
pub(crate) async fn to_second_factor(v: &mut Visitor<'_>, email: &str) -> String {
    let token = v.form_token("/ui/login").await;
    let r = v.post("/ui/login", &[("csrf_token", &token), ("email", email), ("password", STRONG_PASSWORD)]).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/mfa")), "{}", r.text());
    v.form_token("/ui/mfa").await
}

/// Answers the pending second factor with `pk` through the page's routes.
async fn answer_with_passkey(v: &mut Visitor<'_>, token: &str, pk: &mut crate::soft_authenticator::SoftPasskey) {
    let r = v.post_with("/ui/mfa/passkey/start", &[], &[("x-csrf-token", token)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let started: Value = r.json();
    let assertion = pk.assert(&started["options"]).to_string();
    let challenge_id = started["challenge_id"].as_str().unwrap();
    let fields = [("csrf_token", token), ("challenge_id", challenge_id), ("credential", assertion.as_str())];
    let r = v.post("/ui/mfa/passkey", &fields).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/account")), "{}", r.text());
}

#[tokio::test]
async fn the_second_factor_page_takes_a_passkey_bound_to_its_pre_session() {
    let app = TestApp::spawn().await;
    let m = crate::mfa::mfa_user(&app).await;
    let mut pk = enrol(&app, &m.session).await;
    let mut v = Visitor::new(&app);
    let token = to_second_factor(&mut v, &m.email).await;
    let html = v.get("/ui/mfa").await.text();
    assert!(html.contains(r#"id="passkey-mfa-button""#), "{html}");
    assert_no_inline_code(&html);

    // The start endpoint: only with the pre-session's token in X-CSRF-Token.
    let r = v.post("/ui/mfa/passkey/start", &[]).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = v.post_with("/ui/mfa/passkey/start", &[], &[("x-csrf-token", "forged")]).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = v.post_with("/ui/mfa/passkey/start", &[], &[("x-csrf-token", &token)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let started: Value = r.json();
    let challenge_id = started["challenge_id"].as_str().unwrap().to_owned();
    assert!(r.header("cache-control").is_some_and(|c| c.contains("no-store")));

    // A form that is not a passkey answer: a 4xx page, the login still pending.
    let r = v
        .post("/ui/mfa/passkey", &[("csrf_token", &token), ("challenge_id", &challenge_id), ("credential", "{")])
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("<html"), "a page: {}", r.text());
    let assertion = pk.assert(&started["options"]).to_string();
    // Without the form's token: refused before anything is checked.
    let r = v
        .post(
            "/ui/mfa/passkey",
            &[("csrf_token", "forged"), ("challenge_id", &challenge_id), ("credential", &assertion)],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(v.session().is_none());
    let r = v
        .post("/ui/mfa/passkey", &[("csrf_token", &token), ("challenge_id", &challenge_id), ("credential", &assertion)])
        .await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/account")), "{}", r.text());
    assert!(v.session().is_some(), "signed in");
    assert!(!v.cookies.contains_key("__Host-rampart_mfa"), "the pending login is gone");

    // Another browser: without a pending login there is nothing to start.
    let mut w = Visitor::new(&app);
    let token = w.form_token("/ui/login").await;
    let r = w.post_with("/ui/mfa/passkey/start", &[], &[("x-csrf-token", &token)]).await;
    assert_eq!(r.status, 401, "{}", r.text());
    // A user without a passkey is not offered one.
    let plain = crate::mfa::mfa_user(&app).await;
    let mut p = Visitor::new(&app);
    to_second_factor(&mut p, &plain.email).await;
    let html = p.get("/ui/mfa").await.text();
    assert!(html.contains(r#"name="code""#) && !html.contains("passkey-mfa"), "{html}");
}

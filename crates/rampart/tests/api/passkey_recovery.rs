//! Issue 14: an account whose only second factor is a passkey can still get past losing every
//! passkey. Its first passkey comes with 10 recovery codes (shown once, stored hashed), which
//! answer a password login's second factor once each, on the JSON API and on `/ui/mfa`; a user
//! who already holds codes (TOTP) gets none new; and the codes live exactly as long as some
//! second factor does.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::mfa::{assert_logged_in, challenge, grant_challenge, mfa_user, verify};
use crate::passkeys::{register_finish, register_start};
use crate::soft_authenticator::SoftPasskey;
use crate::ui::Visitor;

/// Adds a passkey for `s`; the 201 body.
async fn add_passkey(app: &TestApp, s: &Session) -> Value {
    let (cid, options) = register_start(app, s).await;
    let r = register_finish(app, s, &cid, &SoftPasskey::new().register(&options)).await;
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

/// The recovery codes of a 201 body; panics when there are none.
fn codes_of(added: &Value) -> Vec<String> {
    let codes = added["recovery_codes"].as_array().unwrap_or_else(|| panic!("no recovery codes in {added}"));
    codes.iter().map(|c| c.as_str().unwrap().to_owned()).collect()
}

/// The user's recovery codes in the database: (all, unused).
async fn stored_codes(app: &TestApp, user_id: &str) -> (i64, i64) {
    let pool = app.db().await;
    let n: (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN used_at IS NULL THEN 1 ELSE 0 END), 0) FROM recovery_codes WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    n
}

async fn user_id_of(app: &TestApp, s: &Session) -> String {
    app.get_as("/auth/me", s).await.json()["id"].as_str().unwrap().to_owned()
}

async fn remove_passkey(app: &TestApp, s: &Session, id: &Value) {
    let r = app.send_as(Method::DELETE, &format!("/auth/passkeys/{}", id.as_str().unwrap()), s, None).await;
    assert_eq!(r.status, 204, "{}", r.text());
}

#[tokio::test]
async fn a_first_passkey_comes_with_ten_recovery_codes_stored_hashed_and_a_second_with_none() {
    let app = TestApp::spawn().await;
    let u = app.registered_user().await;
    let first = add_passkey(&app, &u.session).await;
    let codes = codes_of(&first);
    assert_eq!(codes.len(), 10, "{first}");
    let mut distinct = codes.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 10, "recovery codes repeat: {codes:?}");
    assert_eq!(stored_codes(&app, &u.id).await, (10, 10));

    // The body is what the OpenAPI document declares for this 201: every member it lists (all
    // required), and no other (additionalProperties: false).
    let doc = app.get("/openapi.json").await.json();
    let declared = &doc["paths"]["/auth/passkeys/register/finish"]["post"]["responses"]["201"]["content"]["application/json"]
        ["schema"]["$ref"];
    let name = declared.as_str().unwrap().rsplit('/').next().unwrap();
    let schema = &doc["components"]["schemas"][name];
    assert_eq!(schema["additionalProperties"], json!(false), "{schema}");
    let mut props: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
    let mut members: Vec<&String> = first.as_object().unwrap().keys().collect();
    props.sort();
    members.sort();
    assert_eq!(props, members, "{schema} / {first}");
    assert!(schema["required"].as_array().unwrap().contains(&json!("recovery_codes")), "{schema}");
    assert_eq!(schema["properties"]["recovery_codes"]["type"], json!(["array", "null"]), "{schema}");

    // Hashed at rest: no form of any code is in the database (nor in the log).
    let db = app.db_file_bytes().await;
    let logs = app.logs_settled().await;
    for code in &codes {
        for form in [code.clone(), code.to_uppercase(), code.replace('-', "")] {
            assert!(!contains_bytes(&db, form.as_bytes()), "the database holds recovery code {form} in clear");
            assert!(!logs.contains(&form), "the log holds recovery code {form}");
        }
    }
    assert!(contains_bytes(&db, u.email.as_bytes()), "the check can see what it looks for");

    // A second passkey: the user holds unused codes, so none new (null, not a new set).
    let second = add_passkey(&app, &u.session).await;
    assert!(second.get("recovery_codes").is_some_and(Value::is_null), "{second}");
    assert_eq!(stored_codes(&app, &u.id).await, (10, 10));
    // The list is the passkeys alone: codes are never shown again.
    let list = app.get_as("/auth/passkeys", &u.session).await.text();
    assert!(!codes.iter().any(|c| list.contains(c.as_str())), "{list}");
}

#[tokio::test]
async fn a_recovery_code_completes_a_passkey_only_users_password_login_once() {
    let app = TestApp::spawn().await;
    let u = app.registered_user().await;
    let codes = codes_of(&add_passkey(&app, &u.session).await);
    // No TOTP: the passkey is the only second factor.
    assert_eq!(app.get_as("/auth/me", &u.session).await.json()["mfa_enabled"], json!(false));

    // Every passkey lost: the password, then a recovery code.
    let token = challenge(&app, &u.email).await;
    let r = verify(&app, &token, &codes[0]).await;
    let s = assert_logged_in(&r);
    assert_eq!(crate::audit::login_method(&app, &r).await.as_deref(), Some("password+recovery_code"));
    assert_eq!(app.get_as("/auth/me", &s).await.json()["id"], json!(u.id));
    // Single use: the same code on a fresh login is a wrong code (counted, no session).
    let token = challenge(&app, &u.email).await;
    let r = verify(&app, &token, &codes[0]).await;
    r.assert_problem(401);
    assert!(session_from(&r).is_none());
    assert_eq!(app.audit_count("mfa_failure").await, 1);
    // Typed as people do (upper case, spaces for dashes), another code completes that login.
    let typed = codes[1].to_uppercase().replace('-', " ");
    assert_logged_in(&verify(&app, &token, &typed).await);
    // The token grant takes one too.
    let token = grant_challenge(&app, &u.email).await;
    let r = verify(&app, &token, &codes[2]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["access_token"].is_string(), "{}", r.text());
    assert_eq!(stored_codes(&app, &u.id).await, (10, 7));
    // Another passkey-only user's codes are not this user's.
    let other = app.registered_user().await;
    let theirs = codes_of(&add_passkey(&app, &other.session).await);
    let token = challenge(&app, &u.email).await;
    verify(&app, &token, &theirs[0]).await.assert_problem(401);
}

#[tokio::test]
async fn a_user_who_holds_codes_gets_none_new_and_keeps_them_while_a_factor_remains() {
    let app = TestApp::spawn().await;
    let m = mfa_user(&app).await;
    let id = user_id_of(&app, &m.session).await;
    // A TOTP user adding a passkey: no new codes, the TOTP ones stand.
    let added = add_passkey(&app, &m.session).await;
    assert!(added["recovery_codes"].is_null(), "{added}");
    assert_eq!(stored_codes(&app, &id).await, (10, 10));
    assert_logged_in(&verify(&app, &challenge(&app, &m.email).await, &m.recovery[0]).await);

    // TOTP turned off while the passkey stays: the codes stay too (the passkey can still be lost).
    let r = crate::mfa::disable(&app, &m.session, STRONG_PASSWORD, &m.next_code()).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(stored_codes(&app, &id).await, (10, 9));
    assert_logged_in(&verify(&app, &challenge(&app, &m.email).await, &m.recovery[1]).await);

    // Removing that passkey, the last second factor, removes the codes: with no factor the
    // password alone signs in, and the old codes never come back.
    remove_passkey(&app, &m.session, &added["id"]).await;
    assert_eq!(stored_codes(&app, &id).await, (0, 0));
    let (r, _) = app.login(&m.email, STRONG_PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // A new first passkey issues a fresh set; the old codes are not in it and do not work.
    let fresh = codes_of(&add_passkey(&app, &m.session).await);
    assert!(!fresh.iter().any(|c| m.recovery.contains(c)));
    assert_eq!(stored_codes(&app, &id).await, (10, 10));
    let token = challenge(&app, &m.email).await;
    verify(&app, &token, &m.recovery[2]).await.assert_problem(401);
    assert_logged_in(&verify(&app, &token, &fresh[0]).await);
}

#[tokio::test]
async fn removing_the_last_passkey_of_a_passkey_only_user_removes_the_codes_and_pending_logins() {
    let app = TestApp::spawn().await;
    let u = app.registered_user().await;
    let first = add_passkey(&app, &u.session).await;
    let codes = codes_of(&first);
    let second = add_passkey(&app, &u.session).await;
    // One of two removed: a factor remains, the codes with it.
    remove_passkey(&app, &u.session, &first["id"]).await;
    assert_eq!(stored_codes(&app, &u.id).await, (10, 10));
    let pending = challenge(&app, &u.email).await;
    // The last one removed: the codes go, and so does the login waiting for a second factor.
    remove_passkey(&app, &u.session, &second["id"]).await;
    assert_eq!(stored_codes(&app, &u.id).await, (0, 0));
    let r = verify(&app, &pending, &codes[0]).await;
    r.assert_problem(401);
    assert!(session_from(&r).is_none());

    // A user who keeps TOTP keeps the codes when their only passkey goes.
    let m = mfa_user(&app).await;
    let id = user_id_of(&app, &m.session).await;
    let added = add_passkey(&app, &m.session).await;
    remove_passkey(&app, &m.session, &added["id"]).await;
    assert_eq!(stored_codes(&app, &id).await, (10, 10));
    assert_logged_in(&verify(&app, &challenge(&app, &m.email).await, &m.recovery[0]).await);
}

/// `/ui/mfa` for a passkey-only user: the form asks for a recovery code (there is no app), and
/// one completes the sign-in through the page.
#[tokio::test]
async fn the_second_factor_page_asks_a_passkey_only_user_for_a_recovery_code_and_takes_one() {
    let app = TestApp::spawn().await;
    let u = app.registered_user().await;
    let codes = codes_of(&add_passkey(&app, &u.session).await);
    let mut v = Visitor::new(&app);
    let token = crate::ui_passkeys::to_second_factor(&mut v, &u.email).await;
    let html = v.get("/ui/mfa").await.text();
    assert!(html.contains("one of your recovery codes"), "{html}");
    assert!(!html.contains("authenticator app"), "a passkey-only user has no app: {html}");
    assert!(html.contains(">Recovery code<") && !html.contains(r#"inputmode="numeric""#), "{html}");
    assert!(html.contains(r#"id="passkey-mfa-button""#), "{html}");
    crate::ui::assert_no_inline_code(&html);
    // A wrong code: the page again, still asking for a recovery code.
    let r = v.post("/ui/mfa", &[("csrf_token", &token), ("code", "aaaa-bbbb-cccc-dddd")]).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains(">Recovery code<"), "{}", r.text());
    let r = v.post("/ui/mfa", &[("csrf_token", &token), ("code", &codes[3])]).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/account")), "{}", r.text());
    assert!(v.session().is_some());
    assert_eq!(stored_codes(&app, &u.id).await, (10, 9));

    // A TOTP user's page still names the app.
    let m = mfa_user(&app).await;
    let mut w = Visitor::new(&app);
    crate::ui_passkeys::to_second_factor(&mut w, &m.email).await;
    let html = w.get("/ui/mfa").await.text();
    assert!(html.contains("authenticator app") && html.contains(r#"inputmode="numeric""#), "{html}");
}

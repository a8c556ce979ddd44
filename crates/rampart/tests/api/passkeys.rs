//! Passkeys, black box: registration and sign-in (session and token grants), a passkey as the
//! second factor, the list with rename and delete (recent sign-in, the last required passkey),
//! and every refusal the WebAuthn checks and our ceremony bookkeeping must make, each a 4xx
//! problem that stores nothing. The authenticator is the software one in `soft_authenticator`;
//! the verifier under test is webauthn-rs inside the server.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::mail_sink::{MAIL_TIMEOUT, MailSink};
use crate::raw_http::raw_big_post;
use crate::soft_authenticator::{Cbor, ORIGIN, RP_ID, SoftPasskey};

async fn post_as(app: &TestApp, path: &str, s: &Session, body: &Value) -> Resp {
    app.send_as(Method::POST, path, s, Some(body)).await
}

/// `register/start` with a cookie session: (challenge_id, options).
pub(crate) async fn register_start(app: &TestApp, s: &Session) -> (String, Value) {
    let r = post_as(app, "/auth/passkeys/register/start", s, &json!({ "name": "Laptop" })).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let b = r.json();
    (b["challenge_id"].as_str().unwrap().to_owned(), b["options"].clone())
}

pub(crate) async fn register_finish(app: &TestApp, s: &Session, challenge_id: &str, credential: &Value) -> Resp {
    let body = json!({ "challenge_id": challenge_id, "credential": credential });
    post_as(app, "/auth/passkeys/register/finish", s, &body).await
}

/// A new passkey for the signed-in `s`.
pub(crate) async fn enrol(app: &TestApp, s: &Session) -> SoftPasskey {
    let mut pk = SoftPasskey::new();
    let (cid, options) = register_start(app, s).await;
    let r = register_finish(app, s, &cid, &pk.register(&options)).await;
    assert_eq!(r.status, 201, "{}", r.text());
    pk
}

async fn login_start(app: &TestApp) -> (String, Value) {
    let r = app.post_json("/auth/passkeys/login/start", &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let b = r.json();
    (b["challenge_id"].as_str().unwrap().to_owned(), b["options"].clone())
}

async fn login_finish(app: &TestApp, challenge_id: &str, credential: &Value, grant: Option<&str>) -> Resp {
    let mut body = json!({ "challenge_id": challenge_id, "credential": credential });
    if let Some(g) = grant {
        body["grant"] = json!(g);
    }
    app.post_json("/auth/passkeys/login/finish", &body).await
}

async fn stored_counter(app: &TestApp, user_id: &str) -> i64 {
    let pool = app.db().await;
    let n: (i64,) = sqlx::query_as(&format!("SELECT MAX(sign_count) FROM passkeys WHERE user_id = '{user_id}'"))
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n.0
}

fn problem_type(r: &Resp, status: u16) -> String {
    r.assert_problem(status)["type"].as_str().unwrap().rsplit('/').next().unwrap().to_owned()
}

async fn failed_logins(app: &TestApp, user_id: &str) -> i64 {
    let pool = app.db().await;
    let n: (i64,) = sqlx::query_as(&format!("SELECT failed_logins FROM users WHERE id = '{user_id}'"))
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n.0
}

#[tokio::test]
async fn a_passkey_registers_and_signs_in_with_a_session_or_tokens_and_then_guards_the_password() {
    let app = TestApp::spawn().await;
    let u = app.registered_user().await;
    let (cid, options) = register_start(&app, &u.session).await;
    // The options are the WebAuthn JSON form of `publicKey` itself (not wrapped), for our rp,
    // asking for user verification and a discoverable credential, with no attestation.
    assert_eq!(options["rp"]["id"], json!("localhost"), "{options}");
    assert_eq!(options["attestation"], json!("none"), "{options}");
    assert_eq!(options["authenticatorSelection"]["userVerification"], json!("required"), "{options}");
    assert_eq!(options["authenticatorSelection"]["residentKey"], json!("required"), "{options}");
    assert!(options.get("publicKey").is_none() && options["challenge"].is_string(), "{options}");
    let mut pk = SoftPasskey::new();
    let r = register_finish(&app, &u.session, &cid, &pk.register(&options)).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    assert_eq!(created["name"], json!("Laptop"));
    assert_eq!(created["backed_up"], json!(false));
    assert!(created["last_used_at"].is_null() && created["created_at"].is_string(), "{created}");
    assert_eq!(app.audit_count("passkey_added").await, 1);
    // Added with a bearer token too.
    let (cid, options) = {
        let r = TestApp::send(
            app.request(Method::POST, "/auth/passkeys/register/start").bearer_auth(&u.token).json(&json!({})),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let b = r.json();
        (b["challenge_id"].as_str().unwrap().to_owned(), b["options"].clone())
    };
    let mut second = SoftPasskey::new();
    let body = json!({ "challenge_id": cid, "credential": second.register(&options), "name": "Phone" });
    let r =
        TestApp::send(app.request(Method::POST, "/auth/passkeys/register/finish").bearer_auth(&u.token).json(&body))
            .await;
    assert_eq!(r.status, 201, "{}", r.text());
    // The second registration excluded the first credential.
    let excluded = options["excludeCredentials"].as_array().unwrap();
    assert_eq!(excluded.len(), 1, "{options}");

    // Sign in, no email: a session, exactly like POST /auth/login.
    let (cid, options) = login_start(&app).await;
    let r = login_finish(&app, &cid, &pk.assert(&options), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["user"]["id"], json!(u.id));
    assert_eq!(crate::audit::login_method(&app, &r).await.as_deref(), Some("passkey"));
    let s = session_from(&r).expect("a session cookie");
    assert_eq!(app.get_as("/auth/me", &s).await.json()["id"], json!(u.id));
    // Or tokens, like the password grant.
    let (cid, options) = login_start(&app).await;
    let r = login_finish(&app, &cid, &second.assert(&options), Some("token")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let b = r.json();
    assert_eq!(b["token_type"], json!("Bearer"));
    assert!(b["refresh_token"].is_string());
    assert_eq!(crate::audit::login_method(&app, &r).await.as_deref(), Some("passkey"));
    assert_eq!(app.get_bearer("/auth/me", b["access_token"].as_str().unwrap()).await.status, 200);
    let list = app.get_as("/auth/passkeys", &s).await.json();
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    assert!(list[0]["last_used_at"].is_string(), "{list}");
    assert!(list[0].get("credential").is_none() && list[0].get("public_key").is_none(), "{list}");

    // The password alone no longer signs in: a passkey is a second factor too.
    let (r, session) = app.login(&u.email, STRONG_PASSWORD).await;
    assert_eq!(problem_type(&r, 401), "mfa-required");
    assert!(session.is_none());
    let mfa_token = r.json()["mfa_token"].as_str().unwrap().to_owned();
    // ... and the passkey answers it.
    let r = app.post_json("/auth/mfa/passkey/start", &json!({ "mfa_token": mfa_token })).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let b = r.json();
    let (cid, options) = (b["challenge_id"].as_str().unwrap().to_owned(), b["options"].clone());
    assert_eq!(options["allowCredentials"].as_array().unwrap().len(), 2, "{options}");
    let body = json!({ "mfa_token": mfa_token, "passkey": { "challenge_id": cid, "credential": pk.assert(&options) } });
    let r = app.post_json("/auth/mfa/verify", &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(session_from(&r).is_some());
    assert_eq!(crate::audit::login_method(&app, &r).await.as_deref(), Some("password+passkey"));
}

#[tokio::test]
async fn registration_refusals_are_4xx_problems_that_store_nothing() {
    let app = TestApp::spawn().await;
    let alice = app.registered_user().await;
    let bob = app.registered_user().await;
    let stored = || async { app.count("passkeys").await };

    // A challenge is single use: the same finish twice, and a fresh credential on a spent one.
    let mut pk = SoftPasskey::new();
    let (cid, options) = register_start(&app, &alice.session).await;
    let credential = pk.register(&options);
    assert_eq!(register_finish(&app, &alice.session, &cid, &credential).await.status, 201);
    let again = register_finish(&app, &alice.session, &cid, &SoftPasskey::new().register(&options)).await;
    assert_eq!(problem_type(&again, 400), "invalid-passkey-challenge");
    assert_eq!(stored().await, 1);

    // A credential id registered already, by another account: 409.
    let (cid, options) = register_start(&app, &bob.session).await;
    let mut copy = SoftPasskey::new();
    copy.credential_id = pk.credential_id.clone();
    let r = register_finish(&app, &bob.session, &cid, &copy.register(&options)).await;
    assert_eq!(problem_type(&r, 409), "passkey-taken");

    // Another user's challenge: Bob cannot finish what Alice started.
    let (cid, options) = register_start(&app, &alice.session).await;
    let r = register_finish(&app, &bob.session, &cid, &SoftPasskey::new().register(&options)).await;
    assert_eq!(problem_type(&r, 400), "invalid-passkey-challenge");
    // A challenge from another ceremony: a sign-in challenge does not register.
    let (cid, options) = login_start(&app).await;
    let mut fake = options.clone();
    fake["user"] = json!({ "id": "AAAA" });
    let r = register_finish(&app, &alice.session, &cid, &SoftPasskey::new().register(&fake)).await;
    assert_eq!(problem_type(&r, 400), "invalid-passkey-challenge");

    // What webauthn-rs refuses: a wrong origin, a wrong rp id hash, no user verification.
    for spoil in [
        (|p: &mut SoftPasskey| p.origin = "https://evil.example".into()) as fn(&mut SoftPasskey),
        |p| p.rp_id = "evil.example".into(),
        |p| p.user_verified = false,
    ] {
        let (cid, options) = register_start(&app, &alice.session).await;
        let mut p = SoftPasskey::new();
        spoil(&mut p);
        let r = register_finish(&app, &alice.session, &cid, &p.register(&options)).await;
        assert_eq!(problem_type(&r, 400), "validation", "{}", r.text());
        assert_eq!(r.error_fields(), vec!["credential".to_owned()]);
    }
    // Malformed attestation objects: not base64url, not CBOR, CBOR of the wrong shape.
    let p = SoftPasskey::new();
    let client_data = br#"{"type":"webauthn.create","challenge":"x","origin":"http://localhost"}"#;
    let mut wrong_shape = Cbor::default();
    wrong_shape.map(1).text("fmt").int(7);
    for bad in [json!("%%%not base64%%%"), json!("AAECAwQF"), json!(base64_url(&wrong_shape.out))] {
        let (cid, _) = register_start(&app, &alice.session).await;
        let mut credential = p.registration_json(b"", client_data);
        credential["response"]["attestationObject"] = bad;
        let r = register_finish(&app, &alice.session, &cid, &credential).await;
        r.assert_problem(400);
    }
    // Oversized: past limits.max_body_bytes, refused before it is read; and a large (but
    // admitted) attestation object of junk is a plain 400.
    let (cid, _) = register_start(&app, &alice.session).await;
    let huge = p.registration_json(&vec![0xA5; 70 * 1024], client_data);
    let body = serde_json::to_vec(&json!({ "challenge_id": cid, "credential": huge })).unwrap();
    // On a raw connection: the server answers 413 without reading the body and closes, which a
    // client library still busy sending reports as a reset instead of the answer.
    let headers = format!("Cookie: {}\r\nX-CSRF-Token: {}\r\n", alice.session.cookie_header(), alice.session.csrf);
    let addr = app.addr;
    let r = tokio::task::spawn_blocking(move || {
        raw_big_post(addr, "POST", "/auth/passkeys/register/finish", &headers, body, false)
    })
    .await
    .unwrap();
    r.assert_problem(413);
    let big = p.registration_json(&vec![0xA5; 40 * 1024], client_data);
    register_finish(&app, &alice.session, &cid, &big).await.assert_problem(400);

    assert_eq!(stored().await, 1, "nothing but the first passkey was stored");
    assert_eq!(app.audit_count("passkey_added").await, 1);
    // Without a sign-in: 401.
    let r = app.post_json("/auth/passkeys/register/start", &json!({})).await;
    r.assert_problem(401);
    // Nothing of the attestation reached the log.
    assert!(!app.logs().contains("AAECAwQF"), "client data logged");
}

fn base64_url(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

#[tokio::test]
async fn sign_in_refusals_are_4xx_problems_and_count_toward_the_lockout() {
    let app = TestApp::builder()
        .toml("[auth.passkeys]\nchallenge_ttl = \"1s\"")
        .env("RATE_LIMIT__LOCKOUT_AFTER_FAILURES", "5")
        .spawn()
        .await;
    let u = app.registered_user().await;
    let mut pk = enrol(&app, &u.session).await;

    // A replayed assertion: the challenge it signed is spent.
    let (cid, options) = login_start(&app).await;
    let assertion = pk.assert(&options);
    assert_eq!(login_finish(&app, &cid, &assertion, None).await.status, 200);
    let r = login_finish(&app, &cid, &assertion, None).await;
    assert_eq!(problem_type(&r, 400), "invalid-passkey-challenge");
    // A reused challenge with a fresh assertion: spent too.
    let r = login_finish(&app, &cid, &pk.assert(&options), None).await;
    assert_eq!(problem_type(&r, 400), "invalid-passkey-challenge");
    // An expired challenge (auth.passkeys.challenge_ttl = 1s here).
    let (cid, options) = login_start(&app).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let r = login_finish(&app, &cid, &pk.assert(&options), None).await;
    assert_eq!(problem_type(&r, 400), "invalid-passkey-challenge");
    // A registration challenge does not sign in.
    let (cid, options) = register_start(&app, &u.session).await;
    let r = login_finish(&app, &cid, &pk.assert(&options), None).await;
    assert_eq!(problem_type(&r, 400), "invalid-passkey-challenge");
    assert_eq!(failed_logins(&app, &u.id).await, 0, "no assertion was checked yet");

    // Assertions webauthn-rs refuses, each a failed login of the account the passkey names.
    let mut failures = 0;
    let mut refused = |r: Resp, what: &str| {
        assert_eq!(problem_type(&r, 401), "passkey-refused", "{what}: {}", r.text());
        assert!(session_from(&r).is_none(), "{what}");
        failures += 1;
        failures
    };
    // A wrong origin (a phishing site relaying the ceremony).
    let (cid, options) = login_start(&app).await;
    pk.origin = "https://evil.example".into();
    let n = refused(login_finish(&app, &cid, &pk.assert(&options), None).await, "origin");
    pk.origin = ORIGIN.into();
    assert_eq!(failed_logins(&app, &u.id).await, n);
    // A wrong rp id hash.
    let (cid, options) = login_start(&app).await;
    pk.rp_id = "evil.example".into();
    let n = refused(login_finish(&app, &cid, &pk.assert(&options), None).await, "rp id");
    pk.rp_id = RP_ID.into();
    assert_eq!(failed_logins(&app, &u.id).await, n);
    // Signed by another key that knows the credential id and user handle.
    let (cid, options) = login_start(&app).await;
    let mut impostor = SoftPasskey::impostor_of(&pk);
    impostor.counter = pk.counter + 10;
    let n = refused(login_finish(&app, &cid, &impostor.assert(&options), None).await, "other key");
    assert_eq!(failed_logins(&app, &u.id).await, n);
    // A counter that went backwards (a cloned authenticator): first a good sign-in at 50
    // (which also resets the failure count), then one at 10.
    let (cid, options) = login_start(&app).await;
    pk.counter = 49;
    assert_eq!(login_finish(&app, &cid, &pk.assert(&options), None).await.status, 200);
    assert_eq!(stored_counter(&app, &u.id).await, 50);
    assert_eq!(failed_logins(&app, &u.id).await, 0);
    let (cid, options) = login_start(&app).await;
    pk.counter = 10;
    refused(login_finish(&app, &cid, &pk.assert_with_counter(&options), None).await, "counter backwards");
    assert_eq!(failed_logins(&app, &u.id).await, 1);
    // The stored counter did not move for any refused assertion.
    assert_eq!(stored_counter(&app, &u.id).await, 50);
    // Four more failures lock the account: then even the real passkey is refused unchecked.
    for _ in 0..4 {
        let (cid, options) = login_start(&app).await;
        login_finish(&app, &cid, &pk.assert_with_counter(&options), None).await.assert_problem(401);
    }
    assert_eq!(failed_logins(&app, &u.id).await, 5);
    pk.counter = 100;
    let (cid, options) = login_start(&app).await;
    let r = login_finish(&app, &cid, &pk.assert(&options), None).await;
    r.assert_problem(423);
    assert_eq!(stored_counter(&app, &u.id).await, 50);
    assert!(app.audit_count_with("login_failure", Some("failure")).await >= 5);
}

#[tokio::test]
async fn list_rename_and_delete_need_the_owner_a_recent_sign_in_and_keep_a_required_last_passkey() {
    let app = TestApp::builder()
        .env("AUTH__REAUTH_WINDOW", "2s")
        .toml("[auth.passkeys]\nrequired_for_roles = [\"admin\"]")
        .spawn()
        .await;
    let u = app.registered_user().await;
    let other = app.registered_user().await;
    enrol(&app, &u.session).await;
    let mut pk2 = enrol(&app, &u.session).await;
    let id = app.get_as("/auth/passkeys", &u.session).await.json()[0]["id"].as_str().unwrap().to_owned();
    let path = format!("/auth/passkeys/{id}");

    // Rename: the owner only; another user gets 404, like an unknown id.
    let r = app.send_as(Method::PATCH, &path, &u.session, Some(&json!({ "name": "  Work key " }))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["name"], json!("Work key"));
    let r = app.send_as(Method::PATCH, &path, &other.session, Some(&json!({ "name": "mine" }))).await;
    r.assert_problem(404);
    let r = app.send_as(Method::PATCH, &path, &u.session, Some(&json!({ "name": "x".repeat(65) }))).await;
    assert_eq!(r.assert_problem(400)["errors"][0]["field"], json!("name"));
    let r = app.send_as(Method::PATCH, &path, &u.session, Some(&json!({ "name": "ok", "credential": "x" }))).await;
    r.assert_problem(400);
    assert!(app.get_as("/auth/passkeys", &other.session).await.json().as_array().unwrap().is_empty());
    app.send_as(Method::DELETE, &path, &other.session, None).await.assert_problem(404);

    // Deleting and adding need a sign-in within auth.reauth_window (2 s here).
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let r = app.send_as(Method::DELETE, &path, &u.session, None).await;
    assert_eq!(problem_type(&r, 403), "reauthentication-required");
    let r = post_as(&app, "/auth/passkeys/register/start", &u.session, &json!({})).await;
    assert_eq!(problem_type(&r, 403), "reauthentication-required");
    let r = TestApp::send(app.request(Method::DELETE, &path).bearer_auth(&u.token)).await;
    assert_eq!(problem_type(&r, 403), "reauthentication-required");
    assert_eq!(app.count("passkeys").await, 2);
    // A fresh sign-in (with the other passkey) may.
    let (cid, options) = login_start(&app).await;
    let fresh = session_from(&login_finish(&app, &cid, &pk2.assert(&options), None).await).unwrap();
    let r = app.send_as(Method::DELETE, &path, &fresh, None).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(app.audit_count("passkey_removed").await, 1);
    assert_eq!(app.count("passkeys").await, 1);
    // Gone for good: a second delete is 404.
    app.send_as(Method::DELETE, &path, &fresh, None).await.assert_problem(404);

    // An admin (whose role requires a passkey) cannot remove the last one.
    let admin = app.user_with_role("admin").await;
    // Until they have one, they sign in with the password and are told to add one.
    let (r, _) = app.login(&admin.email, STRONG_PASSWORD).await;
    assert_eq!(r.json()["passkey_enrollment_required"], json!(true), "{}", r.text());
    let (r, _) = app.login(&other.email, STRONG_PASSWORD).await;
    assert!(r.json().get("passkey_enrollment_required").is_none(), "{}", r.text());
    enrol(&app, &admin.session).await;
    let admin_key = app.get_as("/auth/passkeys", &admin.session).await.json()[0]["id"].as_str().unwrap().to_owned();
    let r = app.send_as(Method::DELETE, &format!("/auth/passkeys/{admin_key}"), &admin.session, None).await;
    r.assert_problem(409);
    // And the password alone no longer signs them in.
    let (r, _) = app.login(&admin.email, STRONG_PASSWORD).await;
    assert_eq!(problem_type(&r, 401), "mfa-required");

    // An admin's MFA reset removes the user's passkeys too.
    let r =
        TestApp::send(app.request(Method::POST, &format!("/admin/users/{}/mfa/reset", u.id)).bearer_auth(&admin.token))
            .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(app.get_as("/auth/passkeys", &fresh).await.json().as_array().unwrap().is_empty());
    let (cid, options) = login_start(&app).await;
    login_finish(&app, &cid, &pk2.assert(&options), None).await.assert_problem(401);
}

#[tokio::test]
async fn a_second_factor_challenge_is_bound_to_its_login() {
    let app = TestApp::spawn().await;
    let u = app.registered_user().await;
    let mut pk = enrol(&app, &u.session).await;
    let first = crate::mfa::challenge(&app, &u.email).await;
    let second = crate::mfa::challenge(&app, &u.email).await;
    let r = app.post_json("/auth/mfa/passkey/start", &json!({ "mfa_token": first })).await;
    let b = r.json();
    let (cid, options) = (b["challenge_id"].as_str().unwrap().to_owned(), b["options"].clone());
    // The ceremony of the first login does not complete the second.
    let body = json!({ "mfa_token": second, "passkey": { "challenge_id": cid, "credential": pk.assert(&options) } });
    let r = app.post_json("/auth/mfa/verify", &body).await;
    assert_eq!(problem_type(&r, 400), "invalid-passkey-challenge");
    // A sign-in challenge is no second-factor challenge.
    let (cid, options) = login_start(&app).await;
    let body = json!({ "mfa_token": second, "passkey": { "challenge_id": cid, "credential": pk.assert(&options) } });
    assert_eq!(problem_type(&app.post_json("/auth/mfa/verify", &body).await, 400), "invalid-passkey-challenge");
    // A code and a passkey together, or neither: 400.
    let body = json!({ "mfa_token": second, "code": "123456", "passkey": { "challenge_id": cid, "credential": {} } });
    app.post_json("/auth/mfa/verify", &body).await.assert_problem(400);
    // A bad signature counts as a failed second factor.
    let r = app.post_json("/auth/mfa/passkey/start", &json!({ "mfa_token": second })).await;
    let b = r.json();
    let (cid, options) = (b["challenge_id"].as_str().unwrap().to_owned(), b["options"].clone());
    let mut imp = SoftPasskey::impostor_of(&pk);
    imp.counter = pk.counter + 5;
    let body = json!({ "mfa_token": second, "passkey": { "challenge_id": cid, "credential": imp.assert(&options) } });
    assert_eq!(problem_type(&app.post_json("/auth/mfa/verify", &body).await, 401), "passkey-refused");
    assert_eq!(app.audit_count("mfa_failure").await, 1);
}

#[tokio::test]
async fn a_ceremony_started_on_one_instance_finishes_on_another() {
    if postgres_admin_url().is_none() || redis_url().is_none() {
        eprintln!("the two-instance passkey test needs {POSTGRES_ENV} and {REDIS_ENV}; not run in this pass");
        return;
    }
    let a = TestApp::spawn().await;
    let b = TestApp::builder().in_dir(a.dir.clone()).spawn().await;
    let u = a.registered_user().await;
    let mut pk = SoftPasskey::new();
    let (cid, options) = register_start(&a, &u.session).await;
    let r = register_finish(&b, &u.session, &cid, &pk.register(&options)).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let (cid, options) = login_start(&b).await;
    let assertion = pk.assert(&options);
    let r = login_finish(&a, &cid, &assertion, Some("token")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Spent for both.
    login_finish(&b, &cid, &assertion, None).await.assert_problem(400);
}

#[tokio::test]
async fn a_role_that_requires_passkeys_refuses_totp_once_enrolled_but_takes_recovery_codes() {
    let app = TestApp::builder().toml("[auth.passkeys]\nrequired_for_roles = [\"user\"]").spawn().await;
    let m = crate::mfa::mfa_user(&app).await;
    let mut pk = enrol(&app, &m.session).await;
    // Password + TOTP: refused with its own problem type, and the login is not spent: the same
    // mfa_token is then completed with a recovery code.
    let token = crate::mfa::challenge(&app, &m.email).await;
    let r = crate::mfa::verify(&app, &token, &m.next_code()).await;
    assert_eq!(problem_type(&r, 403), "passkey-required");
    assert!(session_from(&r).is_none());
    let r = crate::mfa::verify(&app, &token, &m.recovery[0]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(crate::audit::login_method(&app, &r).await.as_deref(), Some("password+recovery_code"));
    // Password + passkey works, with tokens too.
    let token = crate::mfa::grant_challenge(&app, &m.email).await;
    let b = app.post_json("/auth/mfa/passkey/start", &json!({ "mfa_token": token })).await.json();
    let body = json!({ "mfa_token": token, "passkey": { "challenge_id": b["challenge_id"], "credential": pk.assert(&b["options"]) } });
    let r = app.post_json("/auth/mfa/verify", &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["access_token"].is_string(), "{}", r.text());
    assert_eq!(crate::audit::login_method(&app, &r).await.as_deref(), Some("password+passkey"));
    // The last passkey of such a user stays.
    let id = app.get_as("/auth/passkeys", &m.session).await.json()[0]["id"].as_str().unwrap().to_owned();
    let r = app.send_as(Method::DELETE, &format!("/auth/passkeys/{id}"), &m.session, None).await;
    r.assert_problem(409);
}

const ADDED: &str = "A passkey was added to your account";
const REMOVED: &str = "A passkey was removed from your account";

/// What a ceremony puts on the wire that must stay out of mails and logs: the challenge id, the
/// WebAuthn challenge, and every value of the credential (its id, the client data, the
/// authenticator data, the signature or attestation, the user handle).
fn ceremony_values(challenge_id: &str, options: &Value, credential: &Value) -> Vec<String> {
    let mut values = vec![challenge_id.to_owned(), options["challenge"].as_str().unwrap().to_owned()];
    values.push(credential["id"].as_str().unwrap().to_owned());
    for (name, v) in credential["response"].as_object().unwrap() {
        if let Some(s) = v.as_str().filter(|s| !s.is_empty()) {
            values.push(s.to_owned());
        } else {
            assert_eq!(name, "transports", "a response member this helper does not know: {name}");
        }
    }
    values
}

/// Adding and removing a passkey each mail the owner (someone holding their session could be the
/// one doing it), and neither mail carries anything of the ceremony. A refused registration and
/// another user's refused removal mail no one.
#[tokio::test]
async fn adding_and_removing_a_passkey_mails_the_owner_and_nothing_of_the_ceremony() {
    let sink = MailSink::start();
    let app = sink.configure(TestApp::builder()).spawn().await;
    let u = app.registered_user().await;
    let other = app.registered_user().await;
    let (cid, options) = register_start(&app, &u.session).await;
    let mut phished = SoftPasskey::new();
    phished.origin = "https://evil.example".into();
    register_finish(&app, &u.session, &cid, &phished.register(&options)).await.assert_problem(400);

    let mut pk = SoftPasskey::new();
    let (cid, options) = register_start(&app, &u.session).await;
    let credential = pk.register(&options);
    let r = register_finish(&app, &u.session, &cid, &credential).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let path = format!("/auth/passkeys/{}", r.json()["id"].as_str().unwrap());
    let added = sink.wait_for(&u.email, ADDED, MAIL_TIMEOUT).await;
    assert!(added.body.contains("If this was not you"), "{}", added.body);

    app.send_as(Method::DELETE, &path, &other.session, None).await.assert_problem(404);
    let r = app.send_as(Method::DELETE, &path, &u.session, None).await;
    assert_eq!(r.status, 204, "{}", r.text());
    let removed = sink.wait_for(&u.email, REMOVED, MAIL_TIMEOUT).await;

    let mut secrets = ceremony_values(&cid, &options, &credential);
    secrets.extend([u.session.cookie.clone(), u.session.csrf.clone()]);
    for mail in [&added, &removed] {
        for secret in &secrets {
            assert!(!mail.body.contains(secret.as_str()) && !mail.subject.contains(secret.as_str()), "{secret} mailed");
        }
    }
    // One mail each, to the owner only: the refusals sent none.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.matching(&u.email, ADDED).len(), 1);
    assert_eq!(sink.matching(&u.email, REMOVED).len(), 1);
    assert!(sink.matching(&other.email, "passkey").is_empty());
}

/// A passkey answers only for the account it was registered to: another account's credential
/// claiming this user's handle is refused at sign-in, and cannot answer this user's second-factor
/// challenge. An assertion without user verification is refused. Each refusal stores nothing (no
/// login, no counter moved), and the log, even at debug level, holds the outcome and nothing of
/// any ceremony.
#[tokio::test]
async fn a_passkey_answers_only_for_its_own_account_and_the_log_keeps_only_the_outcome() {
    let app = TestApp::builder().env("LOG__LEVEL", "debug").spawn().await;
    let alice = app.registered_user().await;
    let bob = app.registered_user().await;
    let mut secrets = Vec::new();
    let mut alice_pk = SoftPasskey::new();
    let (cid, options) = register_start(&app, &alice.session).await;
    let credential = alice_pk.register(&options);
    assert_eq!(register_finish(&app, &alice.session, &cid, &credential).await.status, 201);
    secrets.extend(ceremony_values(&cid, &options, &credential));
    let mut bob_pk = enrol(&app, &bob.session).await;
    // A good sign-in, for the log to hold a success too.
    let (cid, options) = login_start(&app).await;
    let credential = alice_pk.assert(&options);
    assert_eq!(login_finish(&app, &cid, &credential, None).await.status, 200);
    secrets.extend(ceremony_values(&cid, &options, &credential));
    let (logins, sessions) = (app.audit_count("login_success").await, app.count("sessions").await);
    let counters = (stored_counter(&app, &alice.id).await, stored_counter(&app, &bob.id).await);

    // Bob's passkey, saying it is Alice's (her user handle): refused, and counted against no one.
    let (cid, options) = login_start(&app).await;
    let own_handle = std::mem::replace(&mut bob_pk.user_handle, alice_pk.user_handle.clone());
    let credential = bob_pk.assert(&options);
    bob_pk.user_handle = own_handle;
    let r = login_finish(&app, &cid, &credential, None).await;
    assert_eq!(problem_type(&r, 401), "passkey-refused");
    secrets.extend(ceremony_values(&cid, &options, &credential));
    assert_eq!((failed_logins(&app, &alice.id).await, failed_logins(&app, &bob.id).await), (0, 0));

    // Bob's passkey answering Alice's second-factor challenge (she has a passkey, so her password
    // asks for one): refused, a failed second factor of hers.
    let mfa_token = crate::mfa::challenge(&app, &alice.email).await;
    let b = app.post_json("/auth/mfa/passkey/start", &json!({ "mfa_token": mfa_token })).await.json();
    let (cid, options) = (b["challenge_id"].as_str().unwrap().to_owned(), b["options"].clone());
    let credential = bob_pk.assert(&options);
    let body = json!({ "mfa_token": mfa_token, "passkey": { "challenge_id": cid, "credential": credential } });
    let r = app.post_json("/auth/mfa/verify", &body).await;
    assert_eq!(problem_type(&r, 401), "passkey-refused");
    assert!(session_from(&r).is_none());
    secrets.extend(ceremony_values(&cid, &options, &credential));
    secrets.push(mfa_token);
    assert_eq!(failed_logins(&app, &alice.id).await, 1);

    // Alice's own passkey, but the authenticator did not verify the user (no PIN, no biometric).
    let (cid, options) = login_start(&app).await;
    alice_pk.user_verified = false;
    let credential = alice_pk.assert(&options);
    let r = login_finish(&app, &cid, &credential, None).await;
    assert_eq!(problem_type(&r, 401), "passkey-refused");
    secrets.extend(ceremony_values(&cid, &options, &credential));
    assert_eq!(failed_logins(&app, &alice.id).await, 2);

    // Nothing stored: no login, no session, no counter moved.
    assert_eq!(app.audit_count("login_success").await, logins);
    assert_eq!(app.count("sessions").await, sessions);
    assert_eq!((stored_counter(&app, &alice.id).await, stored_counter(&app, &bob.id).await), counters);

    // The log says what happened, and nothing the client sent.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logs = app.logs();
    assert!(logs.contains("passkey sign-in refused"), "{logs}");
    assert!(logs.contains("passkey second factor refused"), "{logs}");
    assert!(logs.contains("/auth/passkeys/login/finish") && logs.contains("\"status\":401"), "{logs}");
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "{secret} found in the log");
    }
}

//! TestUser may add or remove a second factor, and that the owner hears of it. Enrolment needs the
//! password as well as the session, so a stolen session or access token cannot enrol the thief's
//! authenticator and lock the owner out for good; an admin (over HTTP) or an operator (on the
//! command line) can remove every factor of a locked-out user; every change is mailed.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::mail_sink::{MAIL_FROM, MAIL_TIMEOUT, MailSink};
use crate::mfa::{
    MfaUser, STEP, assert_mfa_required, challenge, disable, enable, mfa_user, settled_now, setup, totp_code, verify,
};

const ADDED: &str = "A second factor was added to your account";
const REMOVED: &str = "Two-factor authentication was removed from your account";

/// A credential a thief may hold without the password.
enum Stolen<'a> {
    /// A browser session with its CSRF token.
    Cookie(&'a Session),
    /// A bearer access token.
    Bearer(&'a str),
}

impl Stolen<'_> {
    async fn post(&self, app: &TestApp, path: &str, body: Option<&Value>) -> Resp {
        match self {
            Stolen::Cookie(s) => app.send_as(Method::POST, path, s, body).await,
            Stolen::Bearer(token) => {
                let mut rb = app.request(Method::POST, path).bearer_auth(token);
                if let Some(b) = body {
                    rb = rb.json(b);
                }
                TestApp::send(rb).await
            }
        }
    }
}

/// What the thief does with a session or token of the victim's and an authenticator of their
/// own: set it up, then confirm it with a right code, without the password or with a guess.
/// Nothing may be enabled, and the owner's next login must not ask for a code.
#[tokio::test]
async fn a_stolen_session_or_token_cannot_enrol_an_authenticator() {
    let sink = MailSink::start();
    let app = sink.configure(TestApp::builder()).spawn().await;
    let (email, session) = app.user().await;
    let (access, _) = app.password_grant(&email).await;

    for stolen in [Stolen::Cookie(&session), Stolen::Bearer(&access)] {
        let r = stolen.post(&app, "/auth/mfa/totp/setup", None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let secret = r.json()["secret"].as_str().unwrap().to_owned();
        let code = totp_code(&secret, settled_now().await);

        let r = stolen.post(&app, "/auth/mfa/totp/enable", Some(&json!({ "code": code }))).await;
        r.assert_problem(400);
        assert_eq!(r.error_fields(), vec!["password".to_owned()], "{}", r.text());
        let guess = json!({ "code": code, "password": OTHER_STRONG_PASSWORD });
        let r = stolen.post(&app, "/auth/mfa/totp/enable", Some(&guess)).await;
        let body = r.assert_problem(403);
        assert!(body.get("recovery_codes").is_none(), "{body}");

        assert_eq!(app.get_as("/auth/me", &session).await.json()["mfa_enabled"], json!(false));
        let (r, s) = app.login(&email, STRONG_PASSWORD).await;
        assert_eq!(r.status, 200, "the owner's login asks for a factor the thief enrolled: {}", r.text());
        assert!(s.is_some());
    }
    assert_eq!(app.audit_count("mfa_enabled").await, 0);
    assert_eq!(app.audit_count_with("mfa_failure", Some("failure")).await, 2, "each wrong password is audited");

    // The owner, with the password: enabled, and told so by mail.
    let secret = setup(&app, &session).await["secret"].as_str().unwrap().to_owned();
    let r = enable(&app, &session, &totp_code(&secret, settled_now().await)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["recovery_codes"].as_array().map(Vec::len), Some(10));
    assert_mfa_required(&app.login(&email, STRONG_PASSWORD).await.0);
    let mail = sink.wait_for(&email, ADDED, MAIL_TIMEOUT).await;
    assert!(mail.body.contains("If this was not you"), "{}", mail.body);
    assert!(!mail.body.contains(&secret), "the mail holds the secret");
    // The refused attempts mailed nothing (one mail, for the one enrolment).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.matching(&email, ADDED).len(), 1);
}

#[tokio::test]
async fn turning_the_second_factor_off_mails_the_owner() {
    let sink = MailSink::start();
    let app = sink.configure(TestApp::builder()).spawn().await;
    let u = mfa_user(&app).await;
    let r = disable(&app, &u.session, STRONG_PASSWORD, &u.next_code()).await;
    assert_eq!(r.status, 204, "{}", r.text());
    let mail = sink.wait_for(&u.email, REMOVED, MAIL_TIMEOUT).await;
    assert!(mail.body.contains("signed-in session"), "{}", mail.body);
}

async fn admin(app: &TestApp) -> TestUser {
    app.user_with_role("admin").await
}

async fn reset(app: &TestApp, by: &TestUser, id: &str) -> Resp {
    TestApp::send(app.request(Method::POST, &format!("/admin/users/{id}/mfa/reset")).bearer_auth(&by.token)).await
}

/// After a reset: the password alone signs in, the account says MFA is off, and the owner can
/// enrol a new authenticator (a secret still in force would answer 409). But a login that passed
/// the password step before the reset cannot be completed, not even with the new factor: the reset
/// ended it.
async fn assert_factor_gone(app: &TestApp, u: &MfaUser, pending: &str) {
    verify(app, pending, &u.next_code()).await.assert_problem(401);
    verify(app, pending, &u.recovery[0]).await.assert_problem(401);
    let (r, s) = app.login(&u.email, STRONG_PASSWORD).await;
    assert_eq!(r.status, 200, "the login still asks for a second factor: {}", r.text());
    let s = s.unwrap();
    assert_eq!(app.get_as("/auth/me", &s).await.json()["mfa_enabled"], json!(false));
    let secret = setup(app, &s).await["secret"].as_str().unwrap().to_owned();
    let t = settled_now().await;
    let r = enable(app, &s, &totp_code(&secret, t)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    verify(app, pending, &totp_code(&secret, t + STEP)).await.assert_problem(401);
}

#[tokio::test]
async fn an_admin_resets_a_users_second_factor() {
    let sink = MailSink::start();
    let app = sink.configure(TestApp::builder()).spawn().await;
    let victim = mfa_user(&app).await;
    let victim_id = app.get_as("/auth/me", &victim.session).await.json()["id"].as_str().unwrap().to_owned();
    // A login that passed the password step before the reset, waiting for its code.
    let pending = challenge(&app, &victim.email).await;
    let boss = admin(&app).await;
    let (mallory_email, _) = app.user().await;
    let mallory = app.sign_in(&mallory_email).await;

    // Not an admin: 403, and nothing changed.
    reset(&app, &mallory, &victim_id).await.assert_problem(403);
    TestApp::send(app.request(Method::POST, &format!("/admin/users/{victim_id}/mfa/reset"))).await.assert_problem(401);
    assert_eq!(app.get_as("/auth/me", &victim.session).await.json()["mfa_enabled"], json!(true));
    // Unknown and malformed ids: 404. One's own factor goes through disable, not here.
    reset(&app, &boss, &uuid::Uuid::new_v4().to_string()).await.assert_problem(404);
    reset(&app, &boss, "not-a-uuid").await.assert_problem(404);
    reset(&app, &boss, &boss.id).await.assert_problem(403);
    assert_eq!(app.audit_count("mfa_reset").await, 0);

    let r = reset(&app, &boss, &victim_id).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_factor_gone(&app, &victim, &pending).await;

    let page = TestApp::send(app.request(Method::GET, "/admin/audit?action=mfa_reset").bearer_auth(&boss.token)).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let items = page.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["actor_id"], json!(boss.id));
    assert_eq!(items[0]["target"], json!(victim_id));
    assert_eq!(items[0]["outcome"], json!("success"));
    let mail = sink.wait_for(&victim.email, REMOVED, MAIL_TIMEOUT).await;
    assert!(mail.body.contains("administrator"), "{}", mail.body);
}

#[tokio::test]
async fn the_command_line_resets_a_users_second_factor() {
    let sink = MailSink::start();
    let app = sink.configure(TestApp::builder()).spawn().await;
    let victim = mfa_user(&app).await;
    let pending = challenge(&app, &victim.email).await;
    let cfg = app.config_path.display().to_string();
    let smtp = sink.url();
    let mail_env = [("RAMPART_MAIL__SMTP_URL", smtp.as_str()), ("RAMPART_MAIL__FROM", MAIL_FROM)];
    let cli = |email: &str| {
        run_cli(&["user", "mfa-reset", "--config", &cfg, "--email", email], None, app.dir.path(), &mail_env)
    };

    let (code, out, err) = cli(&victim.email.to_uppercase());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("removed every second factor"), "{out}");
    assert_factor_gone(&app, &victim, &pending).await;
    assert_eq!(app.audit_count_with("mfa_reset", Some("success")).await, 1);
    let mail = sink.wait_for(&victim.email, REMOVED, MAIL_TIMEOUT).await;
    assert!(mail.body.contains("administrator"), "{}", mail.body);

    // An unknown email is a runtime failure (1), a malformed one a usage error (2); one line each.
    let (code, _, err) = cli(&unique_email());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no user with email"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    let (code, _, err) = cli("not an email");
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert_eq!(app.audit_count("mfa_reset").await, 1);
}

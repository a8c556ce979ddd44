//! Email verification, attacked over HTTP: tokens are single use, short-lived, stored hashed and
//! bound to their purpose; when verification is required, registration does not reveal which
//! emails have accounts and no door lets an unverified account in.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;
use crate::mail_sink::{MAIL_TIMEOUT, MailSink};

const VERIFY_SUBJECT: &str = "Verify your email address";

async fn verify_email(app: &TestApp, token: &str) -> Resp {
    app.post_json("/auth/email/verify", &json!({ "token": token })).await
}

/// `email_verified` as the account itself sees it (logs in to ask).
async fn email_verified(app: &TestApp, email: &str) -> Value {
    let s = app.login(email, STRONG_PASSWORD).await.1.expect("login");
    app.get_as("/auth/me", &s).await.json()["email_verified"].clone()
}

fn tampered(token: &str) -> String {
    let first = if token.starts_with('A') { "B" } else { "A" };
    format!("{first}{}", &token[1..])
}

fn sets_session_cookie(r: &Resp) -> bool {
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| c.starts_with("__Host-rampart_session=") && !c.starts_with("__Host-rampart_session=;"))
}

#[tokio::test]
async fn the_mailed_token_verifies_the_address_once() {
    let sink = MailSink::start();
    let app = sink.configure(TestApp::builder()).spawn().await;
    let email = unique_email();
    assert_eq!(app.register(&email, STRONG_PASSWORD).await.status, 201);
    let mail = sink.wait_for(&email, VERIFY_SUBJECT, MAIL_TIMEOUT).await;
    assert_eq!(mail.subject, VERIFY_SUBJECT);
    let token = mail.token();
    assert!(mail.body.contains(&format!("http://localhost/ui/verify#token={token}")), "{}", mail.body);
    assert!(!contains_bytes(&app.db_file_bytes().await, token.as_bytes()), "the verification token is stored in clear");
    assert!(!app.logs().contains(&token), "the verification token was logged");
    assert_eq!(email_verified(&app, &email).await, json!(false));

    for bad in [tampered(&token), "A".repeat(43)] {
        verify_email(&app, &bad).await.assert_problem(400);
    }
    assert_eq!(email_verified(&app, &email).await, json!(false));
    let r = verify_email(&app, &token).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(email_verified(&app, &email).await, json!(true));
    verify_email(&app, &token).await.assert_problem(400);
    assert_eq!(app.audit_count("email_verified").await, 1);
}

#[tokio::test]
async fn an_expired_verification_token_is_refused() {
    let sink = MailSink::start();
    let app = sink.configure(TestApp::builder().env("AUTH__EMAIL_VERIFICATION_TTL", "2s")).spawn().await;
    let email = unique_email();
    assert_eq!(app.register(&email, STRONG_PASSWORD).await.status, 201);
    let token = sink.wait_for(&email, VERIFY_SUBJECT, MAIL_TIMEOUT).await.token();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    verify_email(&app, &token).await.assert_problem(400);
    assert_eq!(email_verified(&app, &email).await, json!(false));
}

/// A reset token that verified an address (or a verification token that reset a password)
/// would let whoever holds one kind of mail act as the other.
#[tokio::test]
async fn a_token_serves_only_its_own_purpose() {
    let sink = MailSink::start();
    let app = sink.configure(TestApp::builder()).spawn().await;
    let email = unique_email();
    assert_eq!(app.register(&email, STRONG_PASSWORD).await.status, 201);
    let verify_token = sink.wait_for(&email, VERIFY_SUBJECT, MAIL_TIMEOUT).await.token();
    let forgot = app.post_json("/auth/password/forgot", &json!({ "email": email })).await;
    assert_eq!(forgot.status, 202);
    let reset_token = sink.wait_for(&email, "Reset your password", MAIL_TIMEOUT).await.token();
    assert_ne!(verify_token, reset_token);

    verify_email(&app, &reset_token).await.assert_problem(400);
    let r = app
        .post_json("/auth/password/reset", &json!({ "token": verify_token, "new_password": OTHER_STRONG_PASSWORD }))
        .await;
    r.assert_problem(400);
    assert_eq!(email_verified(&app, &email).await, json!(false));
    assert_eq!(app.login(&email, OTHER_STRONG_PASSWORD).await.0.status, 401);

    // Each still does its own job.
    assert_eq!(verify_email(&app, &verify_token).await.status, 204);
    assert_eq!(email_verified(&app, &email).await, json!(true));
    let r = app
        .post_json("/auth/password/reset", &json!({ "token": reset_token, "new_password": OTHER_STRONG_PASSWORD }))
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
}

#[tokio::test]
async fn required_verification_makes_registration_answer_alike() {
    let app = TestApp::builder().env("AUTH__REQUIRE_EMAIL_VERIFICATION", "true").spawn().await;
    let email = unique_email();
    let first = app.register(&email, STRONG_PASSWORD).await;
    assert_eq!(first.status, 202, "{}", first.text());
    assert_eq!(first.json(), json!({ "status": "verification_sent" }));
    // Registering a taken address (as typed, or in other case) answers byte for byte the same.
    for (address, password) in [(email.clone(), OTHER_STRONG_PASSWORD), (email.to_uppercase(), OTHER_STRONG_PASSWORD)] {
        let again = app.register(&address, password).await;
        assert_eq!(again.status, 202);
        assert_eq!(again.body, first.body, "{}", again.text());
    }
    let fresh = app.register(&unique_email(), STRONG_PASSWORD).await;
    assert_eq!((fresh.status, &fresh.body), (202, &first.body));
    assert_eq!(app.count("users").await, 2);
    // The attacker's registration did not replace the owner's password.
    app.login(&email, OTHER_STRONG_PASSWORD).await.0.assert_problem(401);
    let owner = app.login(&email, STRONG_PASSWORD).await.0;
    owner.assert_problem(403);
}

#[tokio::test]
async fn unverified_accounts_cannot_log_in_until_verified() {
    let sink = MailSink::start();
    let app = sink.configure(TestApp::builder().env("AUTH__REQUIRE_EMAIL_VERIFICATION", "true")).spawn().await;
    let email = unique_email();
    assert_eq!(app.register(&email, STRONG_PASSWORD).await.status, 202);

    let r = app.login(&email, STRONG_PASSWORD).await.0;
    let body = r.assert_problem(403);
    assert!(body["type"].as_str().is_some_and(|t| t.ends_with("/email-not-verified")), "{body}");
    assert!(!sets_session_cookie(&r));
    // A wrong password learns nothing more than for an unknown email.
    let wrong = app.login(&email, OTHER_STRONG_PASSWORD).await.0;
    let unknown = app.login(&unique_email(), OTHER_STRONG_PASSWORD).await.0;
    wrong.assert_problem(401);
    assert_eq!(wrong.body, unknown.body);
    // The token grant is no side door.
    let grant = json!({ "grant_type": "password", "email": email, "password": STRONG_PASSWORD });
    let r = app.post_json("/auth/token", &grant).await;
    assert!(r.assert_problem(403).get("access_token").is_none());

    let token = sink.wait_for(&email, VERIFY_SUBJECT, MAIL_TIMEOUT).await.token();
    assert_eq!(verify_email(&app, &token).await.status, 204);
    let (r, s) = app.login(&email, STRONG_PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(app.get_as("/auth/me", &s.unwrap()).await.json()["email_verified"], json!(true));
    assert_eq!(app.post_json("/auth/token", &grant).await.status, 200);
}

/// The dev-profile `dev_mail` log line for `to` with this subject.
fn dev_mail(logs: &str, to: &str, subject: &str) -> Option<Value> {
    logs.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).find(|v| {
        let addressed = match &v["to"] {
            Value::String(s) => s.to_lowercase().contains(&to.to_lowercase()),
            Value::Array(a) => a.iter().any(|t| t.as_str().is_some_and(|t| t.eq_ignore_ascii_case(to))),
            _ => false,
        };
        v["message"] == json!("dev_mail") && addressed && v["subject"] == json!(subject)
    })
}

#[tokio::test]
async fn without_smtp_the_dev_profile_logs_the_mail_and_nothing_else_carries_the_token() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    assert_eq!(app.register(&email, STRONG_PASSWORD).await.status, 201);
    let started = Instant::now();
    let line = loop {
        if let Some(line) = dev_mail(&app.logs(), &email, VERIFY_SUBJECT) {
            break line;
        }
        assert!(started.elapsed() < MAIL_TIMEOUT, "no dev_mail line for {email}:\n{}", app.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let token = crate::mail_sink::token_in(line["body"].as_str().unwrap());
    let r = verify_email(&app, &token).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(email_verified(&app, &email).await, json!(true));
    // The mail line is the one place the token is written: not the request logs of the verify.
    let carrying = app.logs().lines().filter(|l| l.contains(&token)).count();
    assert_eq!(carrying, 1, "{}", app.logs());
}

/// The relay is down when the mail is due: registration still answers 201 at once (a mail failure
/// is never the user's problem), the failure is logged without the token, and the message is
/// retried until the relay comes up, then works like any other.
#[tokio::test]
async fn a_mail_the_relay_refused_is_retried_until_it_arrives() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let app = TestApp::builder()
        .env("MAIL__SMTP_URL", &format!("smtp://127.0.0.1:{port}"))
        .env("MAIL__FROM", crate::mail_sink::MAIL_FROM)
        .spawn()
        .await;
    let email = unique_email();
    let started = Instant::now();
    assert_eq!(app.register(&email, STRONG_PASSWORD).await.status, 201);
    assert!(started.elapsed() < Duration::from_secs(2), "registration waited for the mail");
    // The first attempt is refused (nothing listens yet) and logged as such.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !app.logs().contains("will retry") {
        assert!(Instant::now() < deadline, "no retry logged: {}", app.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sink = MailSink::start_on(port);
    let mail = sink.wait_for(&email, "Verify your email address", MAIL_TIMEOUT).await;
    let token = mail.token();
    assert!(!app.logs().contains(&token), "the token reached a log line");
    assert_eq!(verify_email(&app, &token).await.status, 204);
    assert_eq!(email_verified(&app, &email).await, json!(true));
}

/// Following a mailed reset link proves the address as much as a verification link does: an
/// account that never verified can recover its access by a reset, and is verified by it.
#[tokio::test]
async fn a_password_reset_verifies_the_address() {
    let sink = MailSink::start();
    let app = sink.configure(TestApp::builder().env("AUTH__REQUIRE_EMAIL_VERIFICATION", "true")).spawn().await;
    let email = unique_email();
    assert_eq!(app.register(&email, STRONG_PASSWORD).await.status, 202);
    app.login(&email, STRONG_PASSWORD).await.0.assert_problem(403);

    assert_eq!(app.post_json("/auth/password/forgot", &json!({ "email": email })).await.status, 202);
    let token = sink.wait_for(&email, "Reset your password", MAIL_TIMEOUT).await.token();
    let reset = json!({ "token": token, "new_password": OTHER_STRONG_PASSWORD });
    assert_eq!(app.post_json("/auth/password/reset", &reset).await.status, 204);
    let (r, s) = app.login(&email, OTHER_STRONG_PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(app.get_as("/auth/me", &s.unwrap()).await.json()["email_verified"], json!(true));
}

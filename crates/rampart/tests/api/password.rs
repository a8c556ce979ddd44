//! Password change, forgot and reset, attacked over HTTP: a stolen session cannot change the
//! password, a change or reset ends every other login at once, the forgot form does not reveal
//! accounts, reset tokens are single use, short-lived, stored hashed and mailed with the
//! configured origin only.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;
use crate::mail_sink::{MAIL_TIMEOUT, MailSink};

const THIRD_PASSWORD: &str = "quantum marmalade bicycle orchestra";
const RESET_SUBJECT: &str = "Reset your password";

async fn refresh(app: &TestApp, token: &str) -> Resp {
    app.post_json("/auth/token", &json!({ "grant_type": "refresh_token", "refresh_token": token })).await
}

async fn change(app: &TestApp, s: &Session, current: &str, new: &str) -> Resp {
    let body = json!({ "current_password": current, "new_password": new });
    app.send_as(Method::POST, "/auth/password/change", s, Some(&body)).await
}

async fn forgot(app: &TestApp, email: &str) -> Resp {
    app.post_json("/auth/password/forgot", &json!({ "email": email })).await
}

async fn reset(app: &TestApp, token: &str, new_password: &str) -> Resp {
    app.post_json("/auth/password/reset", &json!({ "token": token, "new_password": new_password })).await
}

async fn login_status(app: &TestApp, email: &str, password: &str) -> u16 {
    app.login(email, password).await.0.status
}

/// The token with its first character changed (the first, not the last: the last base64url
/// character of 32 bytes carries padding bits a lenient decoder would ignore).
fn tampered(token: &str) -> String {
    let first = if token.starts_with('A') { "B" } else { "A" };
    format!("{first}{}", &token[1..])
}

/// Asks for a reset and returns the mailed token.
async fn mailed_reset_token(app: &TestApp, sink: &MailSink, email: &str) -> String {
    assert_eq!(forgot(app, email).await.status, 202);
    sink.wait_for(email, RESET_SUBJECT, MAIL_TIMEOUT).await.token()
}

#[tokio::test]
async fn change_needs_the_current_password_and_a_strong_new_one() {
    let app = TestApp::spawn().await;
    let (email, s) = app.user().await;
    let body = json!({ "current_password": STRONG_PASSWORD, "new_password": OTHER_STRONG_PASSWORD });
    app.post_json("/auth/password/change", &body).await.assert_problem(401);
    let no_csrf = app.request(Method::POST, "/auth/password/change").header("cookie", s.cookie_header()).json(&body);
    TestApp::send(no_csrf).await.assert_problem(403);
    // A stolen session alone cannot take the account over: the current password is checked.
    change(&app, &s, OTHER_STRONG_PASSWORD, THIRD_PASSWORD).await.assert_problem(403);
    let weak = change(&app, &s, STRONG_PASSWORD, "password123").await;
    weak.assert_problem(400);
    assert!(weak.error_fields().contains(&"new_password".to_owned()), "{}", weak.text());
    // Nothing changed.
    assert_eq!(login_status(&app, &email, STRONG_PASSWORD).await, 200);
    for p in [OTHER_STRONG_PASSWORD, THIRD_PASSWORD, "password123"] {
        assert_eq!(login_status(&app, &email, p).await, 401, "{p}");
    }
    assert_eq!(app.get_as("/auth/me", &s).await.status, 200);
    // The refused attempts are audited as failures; no change was.
    assert_eq!(app.audit_count_with("password_changed", Some("success")).await, 0);
    assert_eq!(app.audit_count_with("password_changed", Some("failure")).await, 1);
}

#[tokio::test]
async fn change_ends_every_other_login_at_once() {
    let app = TestApp::spawn().await;
    let (email, current) = app.user().await;
    let other = app.login(&email, STRONG_PASSWORD).await.1.unwrap();
    let (access, refresh_token) = app.password_grant(&email).await;
    assert_eq!(app.get_as("/auth/me", &other).await.status, 200);
    assert_eq!(app.get_bearer("/auth/me", &access).await.status, 200);

    let r = change(&app, &current, STRONG_PASSWORD, OTHER_STRONG_PASSWORD).await;
    assert_eq!(r.status, 204, "{}", r.text());
    // The session that changed it carries on; every other login, and the unexpired access
    // token of the token login, are dead at once.
    assert_eq!(app.get_as("/auth/me", &current).await.status, 200);
    app.get_as("/auth/me", &other).await.assert_problem(401);
    app.get_bearer("/auth/me", &access).await.assert_problem(401);
    refresh(&app, &refresh_token).await.assert_problem(401);
    assert_eq!(login_status(&app, &email, STRONG_PASSWORD).await, 401);
    assert_eq!(login_status(&app, &email, OTHER_STRONG_PASSWORD).await, 200);
    assert_eq!(app.audit_count_with("password_changed", Some("success")).await, 1);
}

#[tokio::test]
async fn a_change_is_mailed_to_the_owner() {
    let sink = MailSink::start();
    let app = sink.configure(TestApp::builder()).spawn().await;
    let (email, s) = app.user().await;
    let r = change(&app, &s, STRONG_PASSWORD, OTHER_STRONG_PASSWORD).await;
    assert_eq!(r.status, 204, "{}", r.text());
    let mail = sink.wait_for(&email, "Your password was changed", MAIL_TIMEOUT).await;
    assert_eq!(mail.subject, "Your password was changed");
    assert!(mail.from.contains("no-reply@example.com"), "{}", mail.from);
    for p in [STRONG_PASSWORD, OTHER_STRONG_PASSWORD] {
        assert!(!mail.body.contains(p), "the mail carries a password:\n{}", mail.body);
    }
}

#[tokio::test]
async fn forgot_answers_alike_for_known_and_unknown_emails() {
    let sink = MailSink::start();
    let app = sink.configure(TestApp::builder()).spawn().await;
    let (email, _) = app.user().await;
    let nobody = unique_email();
    let unknown = forgot(&app, &nobody).await;
    let known = forgot(&app, &email).await;
    assert_eq!((known.status, unknown.status), (202, 202), "{} / {}", known.text(), unknown.text());
    assert_eq!(known.body, unknown.body, "bodies differ:\n{}\n{}", known.text(), unknown.text());
    assert_eq!(known.header("content-type"), unknown.header("content-type"));

    let mail = sink.wait_for(&email, RESET_SUBJECT, MAIL_TIMEOUT).await;
    assert_eq!(mail.subject, RESET_SUBJECT);
    assert!(mail.body.contains(&format!("http://localhost/ui/reset#token={}", mail.token())), "{}", mail.body);
    // Had the unknown address been mailed, that mail (asked for first) would be here by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(sink.messages().iter().all(|m| !m.is_to(&nobody)), "a mail went to an address with no account");
    assert_eq!(sink.matching(&email, RESET_SUBJECT).len(), 1);

    let bad = forgot(&app, "not-an-email").await;
    bad.assert_problem(400);
    assert_eq!(bad.error_fields(), vec!["email".to_owned()], "{}", bad.text());
}

#[tokio::test]
async fn forgot_spends_the_login_budget() {
    // A mail bomb against one inbox, or a sweep over many addresses, is a login-like attempt.
    let app = TestApp::builder().env("RATE_LIMIT__LOGIN_PER_IP_PER_MINUTE", "2").spawn().await;
    for _ in 0..2 {
        assert_eq!(forgot(&app, &unique_email()).await.status, 202);
    }
    let r = forgot(&app, &unique_email()).await;
    r.assert_problem(429);
    assert!(r.header("retry-after").and_then(|v| v.parse::<u64>().ok()).is_some_and(|s| s >= 1));
    assert_eq!(r.header("ratelimit-policy"), Some("\"login-ip\";q=2;w=60"));
    let r = app.login(&unique_email(), OTHER_STRONG_PASSWORD).await.0;
    r.assert_problem(429);
}

#[tokio::test]
async fn a_reset_token_works_once_and_ends_every_login() {
    let sink = MailSink::start();
    let app = sink.configure(TestApp::builder()).spawn().await;
    let (email, session) = app.user().await;
    let (access, refresh_token) = app.password_grant(&email).await;
    let token = mailed_reset_token(&app, &sink, &email).await;
    // Stored only as a hash, and never logged (the mail goes by SMTP here).
    assert!(!contains_bytes(&app.db_file_bytes().await, token.as_bytes()), "the reset token is stored in clear");
    assert!(!app.logs().contains(&token), "the reset token was logged");

    for bad in [tampered(&token), "A".repeat(43), "garbage".to_owned()] {
        reset(&app, &bad, OTHER_STRONG_PASSWORD).await.assert_problem(400);
    }
    // A weak password is refused without spending the token.
    let weak = reset(&app, &token, "password123").await;
    weak.assert_problem(400);
    assert!(weak.error_fields().contains(&"new_password".to_owned()), "{}", weak.text());
    assert_eq!(login_status(&app, &email, STRONG_PASSWORD).await, 200, "refused resets changed the password");

    let r = reset(&app, &token, OTHER_STRONG_PASSWORD).await;
    assert_eq!(r.status, 204, "{}", r.text());
    // Whoever held a session or a token before the reset (the reason for a reset) is out.
    app.get_as("/auth/me", &session).await.assert_problem(401);
    app.get_bearer("/auth/me", &access).await.assert_problem(401);
    refresh(&app, &refresh_token).await.assert_problem(401);
    assert_eq!(login_status(&app, &email, STRONG_PASSWORD).await, 401);
    assert_eq!(login_status(&app, &email, OTHER_STRONG_PASSWORD).await, 200);

    // Single use: the second use changes nothing.
    reset(&app, &token, THIRD_PASSWORD).await.assert_problem(400);
    assert_eq!(login_status(&app, &email, THIRD_PASSWORD).await, 401);
    assert_eq!(login_status(&app, &email, OTHER_STRONG_PASSWORD).await, 200);
    assert!(app.audit_count("password_reset_requested").await >= 1);
    assert_eq!(app.audit_count("password_reset_completed").await, 1);
}

#[tokio::test]
async fn an_expired_reset_token_is_refused() {
    let sink = MailSink::start();
    let app = sink.configure(TestApp::builder().env("AUTH__PASSWORD_RESET_TTL", "2s")).spawn().await;
    let (email, _) = app.user().await;
    let token = mailed_reset_token(&app, &sink, &email).await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    reset(&app, &token, OTHER_STRONG_PASSWORD).await.assert_problem(400);
    assert_eq!(login_status(&app, &email, STRONG_PASSWORD).await, 200);
    assert_eq!(login_status(&app, &email, OTHER_STRONG_PASSWORD).await, 401);
}

#[tokio::test]
async fn a_reset_unlocks_a_locked_account() {
    let sink = MailSink::start();
    let app = sink.configure(TestApp::builder().env("RATE_LIMIT__LOCKOUT_AFTER_FAILURES", "2")).spawn().await;
    let (email, _) = app.user().await;
    app.login(&email, OTHER_STRONG_PASSWORD).await.0.assert_problem(401);
    let second = app.login(&email, OTHER_STRONG_PASSWORD).await.0;
    assert!(matches!(second.status, 401 | 423), "{}", second.text());
    app.login(&email, STRONG_PASSWORD).await.0.assert_problem(423);
    // The owner hears of the lock.
    let mail = sink.wait_for(&email, "Your account was locked", MAIL_TIMEOUT).await;
    assert_eq!(mail.subject, "Your account was locked");

    let token = mailed_reset_token(&app, &sink, &email).await;
    let r = reset(&app, &token, THIRD_PASSWORD).await;
    assert_eq!(r.status, 204, "{}", r.text());
    let (r, s) = app.login(&email, THIRD_PASSWORD).await;
    assert_eq!(r.status, 200, "the reset did not lift the lock: {}", r.text());
    assert!(s.is_some());
}

/// Reset poisoning: an attacker asks for a reset of the victim's account with a forged host,
/// hoping the mailed link points at his server and the victim's click hands him the token.
#[tokio::test]
async fn reset_links_use_the_configured_origin_whatever_the_request_says() {
    let sink = MailSink::start();
    let app = sink.configure(TestApp::builder()).spawn().await;
    let (forwarded_victim, _) = app.user().await;
    let (host_victim, _) = app.user().await;

    let rb = app
        .request(Method::POST, "/auth/password/forgot")
        .header("x-forwarded-host", "evil.example")
        .header("x-forwarded-proto", "https")
        .header("forwarded", "host=evil.example;proto=https")
        .json(&json!({ "email": forwarded_victim }));
    assert_eq!(TestApp::send(rb).await.status, 202);
    let rb = app
        .request(Method::POST, "/auth/password/forgot")
        .header("host", "evil.example")
        .json(&json!({ "email": host_victim }));
    let by_host = TestApp::send(rb).await;
    // Refusing a foreign Host outright is fine too.
    assert!(by_host.status == 202 || (400..500).contains(&by_host.status), "{}", by_host.status);

    let mut victims = vec![forwarded_victim];
    if by_host.status == 202 {
        victims.push(host_victim);
    }
    for victim in &victims {
        let mail = sink.wait_for(victim, RESET_SUBJECT, MAIL_TIMEOUT).await;
        let link = format!("http://localhost/ui/reset#token={}", mail.token());
        assert!(mail.body.contains(&link), "{}", mail.body);
        assert!(!mail.body.contains("evil"), "the link follows the request's host:\n{}", mail.body);
    }
}

fn median(mut v: Vec<std::time::Duration>) -> std::time::Duration {
    v.sort();
    v[v.len() / 2]
}

/// `forgot` must not take longer for an address that has an account. The mail relay here accepts
/// connections and then never says a word: a server that looked the account up, stored a token or
/// talked SMTP before answering would hang (or at least slow down) on the known address only.
/// Answers stay 202 (a mail failure is never the user's 5xx), and the medians of the two, taken
/// interleaved, stay close.
#[tokio::test]
async fn forgot_takes_as_long_for_known_and_unknown_emails_even_when_mail_hangs() {
    let silent_relay = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let relay = format!("smtp://{}", silent_relay.local_addr().unwrap());
    let app = TestApp::builder()
        .env("MAIL__SMTP_URL", &relay)
        .env("MAIL__FROM", "Rampart <no-reply@example.com>")
        .spawn()
        .await;
    let email = unique_email();
    assert_eq!(app.register(&email, STRONG_PASSWORD).await.status, 201);
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..20 {
        let target = if i % 2 == 0 { email.clone() } else { unique_email() };
        let started = std::time::Instant::now();
        let r = forgot(&app, &target).await;
        let took = started.elapsed();
        assert_eq!(r.status, 202, "{}", r.text());
        assert!(took < std::time::Duration::from_secs(2), "forgot took {took:?}");
        if i >= 2 {
            if i % 2 == 0 { known.push(took) } else { unknown.push(took) }
        }
    }
    // An absolute margin, not a ratio: both medians are around a millisecond on loopback, where
    // a ratio is mostly noise; work done inline for the known address (a database round trip, an
    // SMTP greeting that never comes) would show as tens of milliseconds or a timeout.
    let (k, u) = (median(known), median(unknown));
    assert!(k <= u + std::time::Duration::from_millis(50), "known median {k:?} vs unknown median {u:?}");
    drop(silent_relay);
}

//! Registration attacked as an amplifier (of hashing, rows and mail) and as a way to claim
//! someone else's address before they do.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;
use crate::mail_sink::{MAIL_TIMEOUT, MailSink};

const VERIFY_SUBJECT: &str = "Verify your email address";
const SIGNUP_SUBJECT: &str = "Someone tried to sign up with your address";
const RESET_SUBJECT: &str = "Reset your password";

/// Each registration costs a hash, rows and a mail: it spends the per-IP login budget (shared
/// with login) before any of them.
#[tokio::test]
async fn registration_spends_the_per_ip_login_budget_before_hashing() {
    let app = TestApp::builder()
        .env("RATE_LIMIT__LOGIN_PER_IP_PER_MINUTE", "3")
        .env("RATE_LIMIT__LOGIN_GLOBAL_PER_MINUTE", "1000")
        .spawn()
        .await;
    for _ in 0..3 {
        assert_eq!(app.register(&unique_email(), STRONG_PASSWORD).await.status, 201);
    }
    let r = app.register(&unique_email(), STRONG_PASSWORD).await;
    r.assert_problem(429);
    assert!(r.header("retry-after").is_some());
    // One budget with login: spent by registrations, a login is refused too.
    app.login(&unique_email(), STRONG_PASSWORD).await.0.assert_problem(429);
    assert_eq!(app.count("users").await, 3);
}

#[tokio::test]
async fn registration_spends_the_global_login_budget() {
    let app = TestApp::builder()
        .env("RATE_LIMIT__LOGIN_PER_IP_PER_MINUTE", "1000")
        .env("RATE_LIMIT__LOGIN_GLOBAL_PER_MINUTE", "2")
        .spawn()
        .await;
    for _ in 0..2 {
        assert_eq!(app.register(&unique_email(), STRONG_PASSWORD).await.status, 201);
    }
    app.register(&unique_email(), STRONG_PASSWORD).await.assert_problem(429);
    assert_eq!(app.count("users").await, 2);
}

/// A loop of logins with the right password to an unverified account used to mail the owner a
/// fresh link each time.
#[tokio::test]
async fn verification_mail_goes_to_an_account_at_most_once_in_ten_minutes() {
    let sink = MailSink::start();
    let app = sink.configure(TestApp::builder().env("AUTH__REQUIRE_EMAIL_VERIFICATION", "true")).spawn().await;
    let email = unique_email();
    assert_eq!(app.register(&email, STRONG_PASSWORD).await.status, 202);
    sink.wait_for(&email, VERIFY_SUBJECT, MAIL_TIMEOUT).await;
    for _ in 0..5 {
        app.login(&email, STRONG_PASSWORD).await.0.assert_problem(403);
        app.login(&email, OTHER_STRONG_PASSWORD).await.0.assert_problem(401);
    }
    // Registering the address again does not add a verification mail either.
    assert_eq!(app.register(&email, OTHER_STRONG_PASSWORD).await.status, 202);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sink.matching(&email, VERIFY_SUBJECT).len(), 1);
}

/// Registrations can make the server send mail to any address; that mail must not crowd out
/// the mail that lets an owner back in. With a budget of 10 a minute, routine mail gets at most
/// half, and a password reset requested after the flood still goes out.
#[tokio::test]
async fn a_mail_flood_from_registrations_never_crowds_out_a_password_reset() {
    let sink = MailSink::start();
    let app = sink.configure(TestApp::builder().env("MAIL__MAX_PER_MINUTE", "10")).spawn().await;
    let owner = unique_email();
    assert_eq!(app.register(&owner, STRONG_PASSWORD).await.status, 201);
    let flood: Vec<String> = (0..30).map(|_| unique_email()).collect();
    for email in &flood {
        assert_eq!(app.register(email, STRONG_PASSWORD).await.status, 201);
    }
    let r = app.post_json("/auth/password/forgot", &json!({ "email": owner })).await;
    assert_eq!(r.status, 202);
    sink.wait_for(&owner, RESET_SUBJECT, MAIL_TIMEOUT).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let verifications = sink.messages().iter().filter(|m| m.subject == VERIFY_SUBJECT).count();
    assert!(verifications <= 6, "{verifications} verification mails went out under a budget of 10/min");
    assert!(verifications >= 1);
    assert!(app.metrics().await.contains("rampart_mail_total{outcome=\"dropped\",priority=\"routine\"}"));
}

/// The pre-account hijack: an attacker registers the victim's address first, with a password of
/// their own. The victim's own registration used to do nothing at all, while the attacker's
/// verification link waited in the victim's inbox: one click, and the attacker held a verified
/// account in the victim's name. Now the victim is told, can take the account over with a reset,
/// and the reset voids the attacker's verification link.
#[tokio::test]
async fn registering_a_claimed_address_lets_its_owner_take_it_back() {
    let sink = MailSink::start();
    let app = sink.configure(TestApp::builder().env("AUTH__REQUIRE_EMAIL_VERIFICATION", "true")).spawn().await;
    let victim = unique_email();
    const ATTACKER_PASSWORD: &str = "attacker owns this passphrase";
    assert_eq!(app.register(&victim, ATTACKER_PASSWORD).await.status, 202);
    let planted = sink.wait_for(&victim, VERIFY_SUBJECT, MAIL_TIMEOUT).await.token();

    // The victim signs up: the same answer as ever, and a mail to the victim's inbox.
    let r = app.register(&victim, STRONG_PASSWORD).await;
    assert_eq!(r.status, 202);
    assert_eq!(r.json(), json!({ "status": "verification_sent" }));
    let notice = sink.wait_for(&victim, SIGNUP_SUBJECT, MAIL_TIMEOUT).await;
    let reset = json!({ "token": notice.token(), "new_password": STRONG_PASSWORD });
    assert_eq!(app.post_json("/auth/password/reset", &reset).await.status, 204);

    // The link mailed under the attacker's password verifies nothing any more...
    app.post_json("/auth/email/verify", &json!({ "token": planted })).await.assert_problem(400);
    // ...the attacker's password is gone, and the owner is in (the reset proved the mailbox).
    app.login(&victim, ATTACKER_PASSWORD).await.0.assert_problem(401);
    assert_eq!(app.login(&victim, STRONG_PASSWORD).await.0.status, 200);
    // Audited: the second registration is a failed one on the existing account.
    assert_eq!(app.audit_count_with("register", Some("failure")).await, 1);
}

/// A changed password voids verification links issued under the old one, too.
#[tokio::test]
async fn a_password_change_voids_verification_links_mailed_before_it() {
    let sink = MailSink::start();
    let app = sink.configure(TestApp::builder()).spawn().await;
    let email = unique_email();
    assert_eq!(app.register(&email, STRONG_PASSWORD).await.status, 201);
    let link = sink.wait_for(&email, VERIFY_SUBJECT, MAIL_TIMEOUT).await.token();
    let s = app.login(&email, STRONG_PASSWORD).await.1.unwrap();
    let change = json!({ "current_password": STRONG_PASSWORD, "new_password": OTHER_STRONG_PASSWORD });
    assert_eq!(app.send_as(reqwest::Method::POST, "/auth/password/change", &s, Some(&change)).await.status, 204);
    app.post_json("/auth/email/verify", &json!({ "token": link })).await.assert_problem(400);
}

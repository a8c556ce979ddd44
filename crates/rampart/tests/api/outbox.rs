//! The durable mail outbox: queued mail survives `kill -9` and arrives exactly once; two instances
//! sharing one outbox never send a mail twice; a mail that keeps failing is given up after
//! `mail.give_up_after`, logged and counted, with growing waits between tries.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;
use crate::mail_sink::{MAIL_FROM, MailSink};

const RESET_SUBJECT: &str = "Reset your password";
const VERIFY_SUBJECT: &str = "Verify your email address";

/// A local port nothing listens on (a relay that is down), free for a sink started later. Chosen
/// below the kernel's ephemeral range, so that no other test's listener on port 0 and no outgoing
/// connection takes it meanwhile.
fn dead_port() -> u16 {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let low: u16 = range.split_whitespace().next().and_then(|p| p.parse().ok()).unwrap_or(32768);
    let span = low.saturating_sub(10_000).max(1);
    loop {
        let port = 10_000 + (uuid::Uuid::new_v4().as_u128() % u128::from(span)) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn relay_at(b: Builder, port: u16) -> Builder {
    b.env("MAIL__SMTP_URL", &format!("smtp://127.0.0.1:{port}")).env("MAIL__FROM", MAIL_FROM)
}

/// `(pending, claimed, tried)`: pending rows, those of them under a claim that has not run out,
/// and those of them tried at least twice.
async fn outbox_state(app: &TestApp) -> (i64, i64, i64) {
    let db = app.db().await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let row: (i64, i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), \
                COALESCE(SUM(CASE WHEN claimed_until IS NOT NULL AND claimed_until > $1 THEN 1 ELSE 0 END), 0), \
                COALESCE(SUM(CASE WHEN attempts >= 2 THEN 1 ELSE 0 END), 0) \
         FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL",
    )
    .bind(now)
    .fetch_one(&db)
    .await
    .unwrap();
    db.close().await;
    row
}

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Mails queued while the relay is down survive a `kill -9` of the server: a new server on the
/// same database sends every one of them once the relay is up, exactly once each, and erases
/// their bodies (the reset links) from the outbox.
#[tokio::test]
async fn queued_mail_survives_kill_9_and_arrives_exactly_once() {
    let port = dead_port();
    let mut first = relay_at(TestApp::builder(), port).spawn().await;
    let users: Vec<String> = (0..4).map(|_| unique_email()).collect();
    for email in &users {
        assert_eq!(first.register(email, STRONG_PASSWORD).await.status, 201);
        let r = first.post_json("/auth/password/forgot", &json!({ "email": email })).await;
        assert_eq!(r.status, 202);
    }
    // Every mail queued and tried at least twice against the dead relay, and none held by a claim
    // at the moment of the kill (a claim would only delay its row by the lease).
    let expected = i64::try_from(users.len() * 2).unwrap();
    wait_until("8 mails tried twice", Duration::from_secs(30), || async {
        let (pending, claimed, tried) = outbox_state(&first).await;
        pending == expected && tried == expected && claimed == 0
    })
    .await;
    first.stop(); // SIGKILL: no shutdown, no flush.
    assert!(first.logs().contains("mail send failed; will retry"), "{}", first.logs());

    let sink = MailSink::start_on(port);
    let second = relay_at(TestApp::builder().in_dir(Arc::clone(&first.dir)), port).spawn().await;
    for email in &users {
        sink.wait_for(email, RESET_SUBJECT, Duration::from_secs(40)).await;
        sink.wait_for(email, VERIFY_SUBJECT, Duration::from_secs(40)).await;
    }
    wait_until("an empty outbox", Duration::from_secs(10), || async { outbox_state(&second).await.0 == 0 }).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for email in &users {
        assert_eq!(sink.matching(email, RESET_SUBJECT).len(), 1, "reset mails to {email}");
        assert_eq!(sink.matching(email, VERIFY_SUBJECT).len(), 1, "verification mails to {email}");
    }
    // A reset link still works after the crash: the token and its mail were one transaction.
    let token = sink.matching(&users[0], RESET_SUBJECT)[0].token();
    let r = second
        .post_json("/auth/password/reset", &json!({ "token": token, "new_password": OTHER_STRONG_PASSWORD }))
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    // Sent rows keep no body: no live token rests in the database once its mail is out.
    let db = second.db().await;
    let bodies: Vec<(String,)> = sqlx::query_as("SELECT body FROM mail_outbox").fetch_all(&db).await.unwrap();
    db.close().await;
    assert_eq!(bodies.len(), users.len() * 2);
    assert!(bodies.iter().all(|(b,)| b.is_empty()), "a sent mail kept its body");
}

/// Two instances on one PostgreSQL database drain one outbox together: mails queued through both
/// while the relay is down, then both workers retrying the backlog at once when it comes up.
/// Every mail arrives exactly once, and both instances sent some (so the claims really raced).
#[tokio::test]
async fn two_instances_sharing_an_outbox_never_send_a_mail_twice() {
    if postgres_admin_url().is_none() {
        eprintln!("two_instances_sharing_an_outbox_never_send_a_mail_twice needs {POSTGRES_ENV}; not run in this pass");
        return;
    }
    const USERS: usize = 60;
    let port = dead_port();
    let builder = || relay_at(TestApp::builder(), port).env("MAIL__MAX_PER_MINUTE", "1000000");
    let a = builder().spawn().await;
    let b = builder().in_dir(Arc::clone(&a.dir)).spawn().await;
    let users: Vec<String> = (0..USERS).map(|_| unique_email()).collect();
    for (i, email) in users.iter().enumerate() {
        let app = if i % 2 == 0 { &a } else { &b };
        assert_eq!(app.register(email, STRONG_PASSWORD).await.status, 201);
        assert_eq!(app.post_json("/auth/password/forgot", &json!({ "email": email })).await.status, 202);
    }
    let expected = i64::try_from(USERS * 2).unwrap();
    wait_until("every mail queued", Duration::from_secs(30), || async { outbox_state(&a).await.0 == expected }).await;
    let sink = MailSink::start_on(port);
    wait_until("every mail received", Duration::from_secs(90), || async { sink.messages().len() >= USERS * 2 }).await;
    wait_until("an empty outbox", Duration::from_secs(10), || async { outbox_state(&b).await.0 == 0 }).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sink.messages().len(), USERS * 2, "a mail was sent twice");
    for email in &users {
        assert_eq!(sink.matching(email, RESET_SUBJECT).len(), 1, "reset mails to {email}");
        assert_eq!(sink.matching(email, VERIFY_SUBJECT).len(), 1, "verification mails to {email}");
    }
    let db = a.db().await;
    let senders: Vec<(String,)> =
        sqlx::query_as("SELECT DISTINCT claimed_by FROM mail_outbox").fetch_all(&db).await.unwrap();
    db.close().await;
    assert_eq!(senders.len(), 2, "both instances should have sent part of the outbox: {senders:?}");
    drop((a, b));
}

/// A mail the relay keeps refusing is retried with growing waits and given up after
/// `mail.give_up_after`: an error line naming no token, `rampart_mail_given_up_total`, and its
/// body erased.
#[tokio::test]
async fn a_mail_that_keeps_failing_is_given_up_logged_and_counted() {
    let port = dead_port();
    let app = relay_at(TestApp::builder(), port).env("MAIL__GIVE_UP_AFTER", "5s").spawn().await;
    let user = app.registered_user().await;
    let r = app.post_json("/auth/password/forgot", &json!({ "email": user.email })).await;
    assert_eq!(r.status, 202);
    wait_until("the give-up log line", Duration::from_secs(40), || async {
        app.logs().lines().filter(|l| l.contains("giving up")).count() >= 2
    })
    .await;
    let metrics = app.metrics().await;
    assert!(metrics.contains("rampart_mail_given_up_total{priority=\"security\"} 1"), "{metrics}");
    assert!(metrics.contains("rampart_mail_given_up_total{priority=\"routine\"} 1"), "{metrics}");
    let logs = app.logs();
    assert!(!logs.contains("#token="), "a mailed link reached the log");
    let given_up: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"].as_str().is_some_and(|m| m.contains("giving up")))
        .collect();
    assert!(given_up.iter().all(|v| v["level"] == json!("ERROR")), "{given_up:?}");
    // The waits between tries of the reset mail grew.
    let waits: Vec<i64> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == json!("mail send failed; will retry") && v["subject"] == json!(RESET_SUBJECT))
        .filter_map(|v| v["retry_in_ms"].as_i64())
        .collect();
    assert!(waits.len() >= 2, "{waits:?}");
    assert!(waits.windows(2).all(|w| w[1] >= w[0]), "retry waits did not grow: {waits:?}");
    assert!(waits.last() > waits.first(), "retry waits did not grow: {waits:?}");
    let db = app.db().await;
    let rows: Vec<(String, Option<i64>)> =
        sqlx::query_as("SELECT body, failed_at FROM mail_outbox").fetch_all(&db).await.unwrap();
    db.close().await;
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|(body, failed)| body.is_empty() && failed.is_some()), "{rows:?}");
}

//! The lockout attacked where checking and counting used to be apart: bursts of attempts
//! released together, a restart, a day of silence, and an admin's lock. Accounts and unknown
//! emails must behave alike throughout, or the lockout itself tells which accounts exist.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::*;

const LOCK_SECS: u64 = 2;

async fn lockout_app() -> TestApp {
    lockout_app_in(None).await
}

async fn lockout_app_in(dir: Option<std::sync::Arc<tempfile::TempDir>>) -> TestApp {
    let mut b = TestApp::builder()
        .env("RATE_LIMIT__LOCKOUT_AFTER_FAILURES", "5")
        .env("RATE_LIMIT__LOCKOUT_DURATION", &format!("{LOCK_SECS}s"));
    if let Some(dir) = dir {
        b = b.in_dir(dir);
    }
    b.spawn().await
}

/// Sends `n` wrong-password logins for `email` at once, over connections opened beforehand (so
/// that they reach the server together), and returns the statuses.
async fn burst(app: &TestApp, email: &str, n: usize) -> Vec<u16> {
    join_all((0..n).map(|_| app.get("/healthz"))).await;
    let body = json!({ "email": email, "password": OTHER_STRONG_PASSWORD });
    let answers = join_all((0..n).map(|_| app.post_json("/auth/login", &body))).await;
    answers.iter().map(|r| r.status).collect()
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

/// Ten guesses sent together at a fresh account get the five the rule allows; the others are
/// refused without being checked.
#[tokio::test]
async fn a_burst_gets_no_more_guesses_than_the_threshold() {
    let app = lockout_app().await;
    let (email, _) = app.user().await;
    for target in [email, unique_email()] {
        let statuses = burst(&app, &target, 10).await;
        assert_eq!(count(&statuses, 401), 5, "{target}: {statuses:?}");
        assert_eq!(count(&statuses, 423), 5, "{target}: {statuses:?}");
    }
}

/// After a lock expires the count does not restart: the rule allows one guess per lock period.
/// Checked-then-counted, a burst released at expiry all passed the "not locked" read and every
/// guess was hashed; reserved first, exactly one is.
#[tokio::test]
async fn a_burst_after_the_lock_expires_gets_one_guess() {
    let app = lockout_app().await;
    let (email, _) = app.user().await;
    for target in [email.clone(), unique_email()] {
        for _ in 0..5 {
            app.login(&target, OTHER_STRONG_PASSWORD).await.0.assert_problem(401);
        }
        app.login(&target, OTHER_STRONG_PASSWORD).await.0.assert_problem(423);
        for round in 0..2 {
            tokio::time::sleep(Duration::from_millis(LOCK_SECS * 1000 + 300)).await;
            let statuses = burst(&app, &target, 10).await;
            assert_eq!(count(&statuses, 401), 1, "{target}, round {round}: {statuses:?}");
            assert_eq!(count(&statuses, 423), 9, "{target}, round {round}: {statuses:?}");
        }
    }
    // Only the guesses that were made are audited as failures; the rest as refusals.
    assert_eq!(app.audit_count_with("login_failure", Some("failure")).await, 2 * (5 + 2));
    // The right password still works once the lock is over: a reservation never outlives its
    // request.
    tokio::time::sleep(Duration::from_millis(LOCK_SECS * 1000 + 300)).await;
    assert_eq!(app.login(&email, STRONG_PASSWORD).await.0.status, 200);
}

/// The unknown-email counter used to live in memory (or in Redis for 24 h) while an account's
/// lived in the database forever: after a restart, two attempts told a real account (423) from
/// an unknown one (401). Both are durable now.
#[tokio::test]
async fn failure_counts_survive_a_restart_for_accounts_and_unknown_emails_alike() {
    let mut app = lockout_app().await;
    let (email, _) = app.user().await;
    let nobody = unique_email();
    for target in [&email, &nobody] {
        for _ in 0..4 {
            app.login(target, OTHER_STRONG_PASSWORD).await.0.assert_problem(401);
        }
    }
    let dir = app.dir.clone();
    app.stop();
    let app = lockout_app_in(Some(dir)).await;
    for target in [&email, &nobody] {
        app.login(target, OTHER_STRONG_PASSWORD).await.0.assert_problem(401);
        let r = app.login(target, OTHER_STRONG_PASSWORD).await.0;
        assert_eq!(r.status, 423, "{target}: {}", r.text());
    }
}

/// A count is forgotten after a day without failures, for an account exactly as for an unknown
/// email (the database's counter used to be kept forever). The day is simulated by moving the
/// last failure back in the database.
#[tokio::test]
async fn failure_counts_are_forgotten_after_a_quiet_day_alike() {
    let app = lockout_app().await;
    let (email, _) = app.user().await;
    let nobody = unique_email();
    for target in [&email, &nobody] {
        for _ in 0..4 {
            app.login(target, OTHER_STRONG_PASSWORD).await.0.assert_problem(401);
        }
    }
    let day_ago_and_more = rampart_now_ms() - 25 * 3600 * 1000;
    let pool = app.db().await;
    for table in ["users", "unknown_login_failures"] {
        sqlx::query(&format!("UPDATE {table} SET last_failed_at = $1 WHERE last_failed_at IS NOT NULL"))
            .bind(day_ago_and_more)
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
    for target in [&email, &nobody] {
        // Four more: without forgetting, the first of them would lock.
        for i in 0..4 {
            let r = app.login(target, OTHER_STRONG_PASSWORD).await.0;
            assert_eq!(r.status, 401, "{target}, attempt {i}: {}", r.text());
        }
        app.login(target, OTHER_STRONG_PASSWORD).await.0.assert_problem(401);
        app.login(target, OTHER_STRONG_PASSWORD).await.0.assert_problem(423);
    }
}

fn rampart_now_ms() -> i64 {
    i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

/// An admin's lock lasts until it is lifted, but its `Retry-After` must not say so: no
/// automatic lock (and so no unknown email) can answer more than `lockout_duration`.
#[tokio::test]
async fn an_admin_lock_answers_no_longer_retry_after_than_an_automatic_one() {
    let app = TestApp::builder().env("RATE_LIMIT__LOCKOUT_DURATION", "15m").spawn().await;
    let (email, _) = app.user().await;
    let pool = app.db().await;
    // As `PATCH /admin/users/{id} {"locked": true}` stores it (admin.rs tests drive that route).
    sqlx::query("UPDATE users SET locked_until = 253402300799000 WHERE email_normalized = $1")
        .bind(&email)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let r = app.login(&email, STRONG_PASSWORD).await.0;
    r.assert_problem(423);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry), "Retry-After {retry}");
}

/// A stolen session must not turn `POST /auth/password/change` into an unlimited password
/// oracle: a wrong current password counts towards the lockout like a failed login.
#[tokio::test]
async fn wrong_current_passwords_on_change_count_towards_the_lockout() {
    let app = lockout_app().await;
    let (email, session) = app.user().await;
    let change = |current: &'static str| json!({ "current_password": current, "new_password": "an entirely new passphrase here" });
    for _ in 0..5 {
        let r = app
            .send_as(reqwest::Method::POST, "/auth/password/change", &session, Some(&change(OTHER_STRONG_PASSWORD)))
            .await;
        r.assert_problem(403);
    }
    let r = app.send_as(reqwest::Method::POST, "/auth/password/change", &session, Some(&change(STRONG_PASSWORD))).await;
    assert_eq!(r.status, 423, "{}", r.text());
    assert_eq!(app.login(&email, STRONG_PASSWORD).await.0.status, 423);
}

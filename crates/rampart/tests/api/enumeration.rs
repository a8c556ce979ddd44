//! An unknown email and a wrong password must be indistinguishable: same status, same bytes,
//! and (thanks to the dummy hash) the same Argon2 work.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn unknown_email_and_wrong_password_get_identical_answers() {
    let app = TestApp::spawn().await;
    let (email, _) = app.user().await;
    let wrong = app.login(&email, OTHER_STRONG_PASSWORD).await.0;
    let unknown = app.login(&unique_email(), OTHER_STRONG_PASSWORD).await.0;
    wrong.assert_problem(401);
    assert_eq!(wrong.status, unknown.status);
    assert_eq!(wrong.body, unknown.body, "bodies differ:\n{}\n{}", wrong.text(), unknown.text());
    assert_eq!(wrong.json()["detail"], json!("invalid email or password"));
    for h in ["content-type", "www-authenticate", "cache-control", "content-length"] {
        assert_eq!(wrong.header(h), unknown.header(h), "header {h} differs");
    }
    assert!(wrong.header("set-cookie").is_none() && unknown.header("set-cookie").is_none());
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// With real (OWASP) Argon2 parameters a hash costs tens of milliseconds, far more than the
/// database lookup, so skipping it for unknown emails would show as a large ratio. The bound is
/// generous (a factor of two either way) because the machine is shared and noisy.
#[tokio::test]
async fn unknown_email_costs_as_much_as_wrong_password() {
    let app = TestApp::builder()
        .env("AUTH__PASSWORD_HASH__MEMORY_KIB", "19456")
        .env("AUTH__PASSWORD_HASH__ITERATIONS", "2")
        .spawn()
        .await;
    let (email, _) = app.user().await;
    // Interleaved, so drift in machine load hits both paths alike.
    let (w, u, ratio) = wrong_password_vs_unknown_email(&app, &email).await;
    assert!(
        (0.5..=2.0).contains(&ratio),
        "unknown email median {u:?} vs wrong password median {w:?} (ratio {ratio:.2})"
    );
}

/// After the Argon2 parameters are raised, an account whose hash was made with the old (cheaper)
/// ones must not answer faster than an unknown email, which is checked against a dummy hash at
/// the new price. `serve` wraps the old hashes at start.
#[tokio::test]
async fn an_old_hash_costs_as_much_as_an_unknown_email_after_the_parameters_are_raised() {
    // Made at the harness's cheap parameters (1 MiB, one pass).
    let mut old = TestApp::spawn().await;
    let (email, _) = old.user().await;
    let dir = old.dir.clone();
    old.stop();

    let app = TestApp::builder()
        .in_dir(dir)
        .env("AUTH__PASSWORD_HASH__MEMORY_KIB", "19456")
        .env("AUTH__PASSWORD_HASH__ITERATIONS", "2")
        .spawn()
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !app.logs().contains("password hashes checked against the current parameters") {
        assert!(Instant::now() < deadline, "no wrapping pass: {}", app.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (w, u, ratio) = wrong_password_vs_unknown_email(&app, &email).await;
    assert!(
        (0.5..=2.0).contains(&ratio),
        "unknown email median {u:?} vs old-hash account median {w:?} (ratio {ratio:.2})"
    );
    // The owner still gets in, and the wrapped hash is then replaced by a plain current one.
    assert_eq!(app.login(&email, STRONG_PASSWORD).await.0.status, 200);
}

/// Wrong passwords for `email` interleaved with logins to unknown emails: (wrong password median,
/// unknown email median, their ratio).
async fn wrong_password_vs_unknown_email(app: &TestApp, email: &str) -> (Duration, Duration, f64) {
    timing_ratio(7, 401, |second| {
        let target = if second { unique_email() } else { email.to_owned() };
        async move { app.login(&target, OTHER_STRONG_PASSWORD).await.0.status }
    })
    .await
}

/// Interleaved medians of the first and the second kind of request (after a warm-up), each
/// answered `expected`, and `median(second) / median(first)`.
async fn timing_ratio<F, Fut>(rounds: usize, expected: u16, mut request: F) -> (Duration, Duration, f64)
where
    F: FnMut(bool) -> Fut,
    Fut: std::future::Future<Output = u16>,
{
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..(rounds * 2 + 4) {
        let second = i % 2 == 1;
        let started = Instant::now();
        let status = request(second).await;
        let took = started.elapsed();
        assert_eq!(status, expected, "request {i}");
        if i < 4 {
            continue;
        }
        if second { b.push(took) } else { a.push(took) }
    }
    let (ma, mb) = (median(a), median(b));
    let ratio = mb.as_secs_f64() / ma.as_secs_f64();
    eprintln!("timing: first median {ma:?}, second median {mb:?}, ratio {ratio:.2}");
    (ma, mb, ratio)
}

/// With verification required, registering a new address and a taken one answer alike; the
/// work behind them must be alike too (one hash, one insert attempt, one audit row, one mail
/// queued in the background), or the time tells which addresses have accounts. The harness's
/// cheap hash makes the database work a large part of each answer.
#[tokio::test]
async fn registering_a_taken_address_takes_as_long_as_a_new_one() {
    let app = TestApp::builder().env("AUTH__REQUIRE_EMAIL_VERIFICATION", "true").spawn().await;
    let taken = unique_email();
    assert_eq!(app.register(&taken, STRONG_PASSWORD).await.status, 202);
    let (new, old, ratio) = timing_ratio(30, 202, |second| {
        let email = if second { taken.clone() } else { unique_email() };
        let app = &app;
        async move { app.register(&email, STRONG_PASSWORD).await.status }
    })
    .await;
    assert!(
        (0.6..=1.6).contains(&ratio),
        "taken address median {old:?} vs new address median {new:?} (ratio {ratio:.2})"
    );
}

/// A 423 costs the same for a locked account and a locked unknown email (the unknown email's
/// lock used to cost an extra Redis round trip).
#[tokio::test]
async fn a_locked_account_and_a_locked_unknown_email_answer_as_fast() {
    let app = TestApp::builder().env("RATE_LIMIT__LOCKOUT_AFTER_FAILURES", "1").spawn().await;
    let (email, _) = app.user().await;
    let nobody = unique_email();
    for target in [&email, &nobody] {
        app.login(target, OTHER_STRONG_PASSWORD).await.0.assert_problem(401);
    }
    let (known, unknown, ratio) = timing_ratio(20, 423, |second| {
        let target = if second { nobody.clone() } else { email.clone() };
        let app = &app;
        async move { app.login(&target, OTHER_STRONG_PASSWORD).await.0.status }
    })
    .await;
    assert!(
        (0.5..=2.0).contains(&ratio),
        "locked unknown median {unknown:?} vs locked account median {known:?} (ratio {ratio:.2})"
    );
}

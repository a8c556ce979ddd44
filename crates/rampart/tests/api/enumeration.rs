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
    let (mut wrong, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..16 {
        // Interleaved, so drift in machine load hits both paths alike.
        let target = if i % 2 == 0 { email.clone() } else { unique_email() };
        let started = Instant::now();
        let r = app.login(&target, OTHER_STRONG_PASSWORD).await.0;
        let took = started.elapsed();
        assert_eq!(r.status, 401);
        if i < 2 {
            continue; // warm-up
        }
        if i % 2 == 0 { wrong.push(took) } else { unknown.push(took) }
    }
    let (w, u) = (median(wrong), median(unknown));
    let ratio = u.as_secs_f64() / w.as_secs_f64();
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
    let (mut wrong, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..16 {
        let target = if i % 2 == 0 { email.clone() } else { unique_email() };
        let started = Instant::now();
        let r = app.login(&target, OTHER_STRONG_PASSWORD).await.0;
        let took = started.elapsed();
        assert_eq!(r.status, 401);
        if i < 2 {
            continue;
        }
        if i % 2 == 0 { wrong.push(took) } else { unknown.push(took) }
    }
    let (w, u) = (median(wrong), median(unknown));
    let ratio = u.as_secs_f64() / w.as_secs_f64();
    assert!(
        (0.5..=2.0).contains(&ratio),
        "unknown email median {u:?} vs old-hash account median {w:?} (ratio {ratio:.2})"
    );
    // The owner still gets in, and the wrapped hash is then replaced by a plain current one.
    assert_eq!(app.login(&email, STRONG_PASSWORD).await.0.status, 200);
}

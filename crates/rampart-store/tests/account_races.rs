//! Fast, function-level checks of the account decisions that races and replays attack, on a
//! temporary SQLite database (the black-box suite attacks the same through HTTP, on SQLite and
//! PostgreSQL): the lockout reservation under concurrency, and the TOTP step that works once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::time::Duration;

use rampart_core::resources::Registry;
use rampart_store::{AttemptKey, LockRule, MfaProof, NewUser, Reservation, Store, StoreOptions};

async fn store(dir: &tempfile::TempDir) -> Store {
    let url = format!("sqlite://{}/races.db", dir.path().display());
    let opts = StoreOptions { url: &url, max_connections: 4, busy_timeout: Duration::from_secs(5) };
    Store::migrate(&opts, &Registry::default(), None).await.unwrap();
    Store::connect(&opts).await.unwrap()
}

async fn user(store: &Store, id: &str) {
    let email = format!("{id}@example.com");
    let new = NewUser { id, email: &email, email_normalized: &email, password_hash: "$x", roles: &["user"], now: 1 };
    store.insert_user(&new).await.unwrap();
}

const NOW: i64 = 1_700_000_000_000;

fn rule(now: i64) -> LockRule {
    LockRule { threshold: 5, now, lock_until: now + 60_000 }
}

/// Reservations taken together: `n` at once, returning how many were granted.
async fn burst(store: &Store, key: AttemptKey<'_>, now: i64, n: usize) -> (usize, usize) {
    let answers = futures_util::future::join_all((0..n).map(|_| store.reserve_attempt(key, rule(now)))).await;
    let granted = answers.iter().filter(|a| matches!(a, Ok(Reservation::Granted { .. }))).count();
    let locked = answers.iter().filter(|a| matches!(a, Ok(Reservation::Locked(_)))).count();
    (granted, locked)
}

#[tokio::test]
async fn concurrent_reservations_get_what_the_lockout_rule_allows() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    user(&store, "u1").await;
    for key in [AttemptKey::User("u1"), AttemptKey::Unknown("nobody@example.com")] {
        // A fresh account: the threshold, then locked.
        assert_eq!(burst(&store, key, NOW, 10).await, (5, 5), "{key:?}");
        // After the lock: one guess per lock period, however many are sent at once.
        let later = NOW + 61_000;
        assert_eq!(burst(&store, key, later, 10).await, (1, 9), "{key:?}");
        assert_eq!(burst(&store, key, later + 61_000, 10).await, (1, 9), "{key:?}");
    }
}

#[tokio::test]
async fn a_released_reservation_lifts_only_its_own_lock() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    user(&store, "u2").await;
    let key = AttemptKey::User("u2");
    for _ in 0..4 {
        assert!(matches!(store.reserve_attempt(key, rule(NOW)).await.unwrap(), Reservation::Granted { lock: None }));
    }
    // The fifth reaches the threshold and locks; a right secret gives it back, lock included.
    let Reservation::Granted { lock: Some(lock) } = store.reserve_attempt(key, rule(NOW)).await.unwrap() else {
        panic!("the fifth attempt sets the lock")
    };
    store.release_attempt(key, Some(lock)).await.unwrap();
    assert!(matches!(store.reserve_attempt(key, rule(NOW)).await.unwrap(), Reservation::Granted { lock: Some(_) }));
    // Locked by that one; releasing someone else's lock value lifts nothing.
    store.release_attempt(key, Some(lock + 1)).await.unwrap();
    assert!(matches!(store.reserve_attempt(key, rule(NOW)).await.unwrap(), Reservation::Locked(_)));
}

#[tokio::test]
async fn a_totp_step_works_once_and_only_forward() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    user(&store, "u3").await;
    assert!(store.put_pending_totp("u3", "sealed", NOW).await.unwrap());
    let step = NOW / 30_000;
    assert!(store.enable_totp("u3", step, &[], NOW, &notice("u3@example.com")).await.unwrap());
    for challenge in ["c1", "c2", "c3", "c4"] {
        store.insert_mfa_challenge(challenge, "u3", "cookie", NOW, NOW + 300_000).await.unwrap();
    }
    // The step that enabled the factor is spent; so is any earlier one.
    assert!(!store.complete_mfa("c1", "u3", MfaProof::Totp(step), NOW).await.unwrap());
    assert!(!store.complete_mfa("c1", "u3", MfaProof::Totp(step - 1), NOW).await.unwrap());
    // The next step works once, on one challenge only, also when raced on two.
    let (a, b) = tokio::join!(
        store.complete_mfa("c2", "u3", MfaProof::Totp(step + 1), NOW),
        store.complete_mfa("c3", "u3", MfaProof::Totp(step + 1), NOW)
    );
    assert_eq!(u8::from(a.unwrap()) + u8::from(b.unwrap()), 1);
    assert!(!store.complete_mfa("c4", "u3", MfaProof::Totp(step + 1), NOW).await.unwrap());
    assert!(store.complete_mfa("c4", "u3", MfaProof::Totp(step + 2), NOW).await.unwrap());
}

fn notice(to: &str) -> rampart_store::OutgoingMail {
    rampart_store::OutgoingMail {
        to: to.to_owned(),
        subject: "A second factor was added".into(),
        body: "notice".into(),
        priority: rampart_store::MailPriority::Security,
    }
}

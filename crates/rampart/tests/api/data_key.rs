//! Data-key rotation, attacked over HTTP and the CLI: a TOTP secret sealed under the old key keeps
//! working while the old key is the previous one, `rampart data-key rotate` moves every sealed
//! secret (pending or enabled) to the new key, and a server without the key that sealed a secret
//! fails closed (503, no key or secret anywhere) instead of letting the second factor through.

use serde_json::Value;

use crate::helpers::*;
use crate::mfa::{assert_logged_in, challenge, disable, enable, mfa_user, settled_now, setup, totp_code, verify};

const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_B: &str = "HxweHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=";

async fn sealed_values(app: &TestApp) -> Vec<String> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT secret_enc FROM totp_secrets ORDER BY user_id")
        .fetch_all(&app.db().await)
        .await
        .unwrap();
    rows.into_iter().map(|(s,)| s).collect()
}

/// The key-id part of a sealed value (`v2.<id>.<body>`).
fn key_id(sealed: &str) -> String {
    let mut parts = sealed.split('.');
    assert_eq!(parts.next(), Some("v2"), "{sealed}");
    parts.next().unwrap().to_owned()
}

/// Forgets the TOTP steps spent so far, so that the code already used proves again that the
/// secret opens, without waiting 30 s for the next step.
async fn forget_spent_steps(app: &TestApp) {
    sqlx::query("UPDATE totp_secrets SET last_step = NULL").execute(&app.db().await).await.unwrap();
}

fn rotate(app: &TestApp, env: &[(&str, &str)]) -> (i32, String, String) {
    let cfg = app.config_path.display().to_string();
    run_cli(&["data-key", "rotate", "--config", &cfg], None, app.dir.path(), env)
}

#[tokio::test]
async fn totp_keeps_working_through_a_data_key_rotation() {
    let mut old = TestApp::builder().env("DATA_KEY", KEY_A).spawn().await;
    let alice = mfa_user(&old).await;
    // Bob has started enrolling but not confirmed: his pending secret must move too.
    let (_, bob) = old.user().await;
    let bob_secret = setup(&old, &bob).await["secret"].as_str().unwrap().to_owned();
    let under_a = sealed_values(&old).await;
    assert_eq!(under_a.len(), 2);
    let id_a = key_id(&under_a[0]);
    assert!(under_a.iter().all(|s| key_id(s) == id_a));
    old.stop();

    // Every instance restarted with B current and A previous: A's secrets still open.
    let ring_env = [("RAMPART_DATA_KEY", KEY_B), ("RAMPART_DATA_KEY_PREVIOUS", KEY_A)];
    let mut ring =
        TestApp::builder().env("DATA_KEY", KEY_B).env("DATA_KEY_PREVIOUS", KEY_A).in_dir(old.dir.clone()).spawn().await;
    let token = challenge(&ring, &alice.email).await;
    assert_logged_in(&verify(&ring, &token, &alice.next_code()).await);
    // New seals use B.
    let (_, carol) = ring.user().await;
    setup(&ring, &carol).await;
    let id_b = sealed_values(&ring).await.iter().map(|s| key_id(s)).find(|id| *id != id_a).expect("a value under B");

    let (code, out, err) = rotate(&ring, &ring_env);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.lines().count(), 1, "a one-line summary: {out}");
    assert!(out.contains("re-encrypted 2 TOTP secret(s)") && out.contains("1 already under it"), "{out}");
    assert!(!out.contains(KEY_A) && !out.contains(KEY_B) && !err.contains(KEY_A), "{out}{err}");
    let after = sealed_values(&ring).await;
    assert!(after.iter().all(|s| key_id(s) == id_b), "{after:?}");
    assert!(after.iter().all(|s| !under_a.contains(s)));
    assert_eq!(ring.audit_count_with("data_key_rotated", Some("success")).await, 1);
    // Interrupted or not, running it again is safe: nothing left to do.
    let (code, out, err) = rotate(&ring, &ring_env);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("re-encrypted 0 TOTP secret(s)") && out.contains("3 already under it"), "{out}");
    ring.stop();

    // The previous key removed: every secret still opens under B alone.
    let only_b = TestApp::builder().env("DATA_KEY", KEY_B).in_dir(old.dir.clone()).spawn().await;
    forget_spent_steps(&only_b).await;
    let token = challenge(&only_b, &alice.email).await;
    assert_logged_in(&verify(&only_b, &token, &alice.next_code()).await);
    let r = enable(&only_b, &bob, &totp_code(&bob_secret, settled_now().await)).await;
    assert_eq!(r.status, 200, "Bob's pending secret, re-encrypted, confirms: {}", r.text());
}

#[tokio::test]
async fn without_the_rotation_the_new_key_alone_fails_closed() {
    let mut old = TestApp::builder().env("DATA_KEY", KEY_A).spawn().await;
    let alice = mfa_user(&old).await;
    let id_a = key_id(&sealed_values(&old).await[0]);
    old.stop();

    // The operator dropped A before rotating: the code is right, but the secret cannot be read.
    let mut only_b = TestApp::builder()
        .env("DATA_KEY", KEY_B)
        .env("RATE_LIMIT__LOCKOUT_AFTER_FAILURES", "2")
        .in_dir(old.dir.clone())
        .spawn()
        .await;
    // Answers that are not the user's fault never add up to a lock.
    for _ in 0..2 {
        let token = challenge(&only_b, &alice.email).await;
        verify(&only_b, &token, &alice.next_code()).await.assert_problem(503);
    }
    let token = challenge(&only_b, &alice.email).await;
    let r = verify(&only_b, &token, &alice.next_code()).await;
    let body: Value = r.assert_problem(503);
    assert!(session_from(&r).is_none(), "no session without the second factor");
    let text = r.text();
    assert!(!text.contains(&id_a) && !text.contains("data key") && !text.contains(&alice.secret), "{text}");
    // Not counted as a wrong code (the user is not to blame), and the log names the key id to
    // put back, never a key or the secret.
    assert_eq!(only_b.audit_count("mfa_failure").await, 0, "{body}");
    let logs = only_b.logs_when(|l| l.contains(&id_a) && l.contains("RAMPART_DATA_KEY_PREVIOUS")).await;
    assert!(logs.contains(&id_a) && logs.contains("RAMPART_DATA_KEY_PREVIOUS"), "{logs}");
    for secret in [KEY_A, KEY_B, alice.secret.as_str()] {
        assert!(!logs.contains(secret), "a secret in the logs");
    }
    // The rotation cannot help without A either: it says so, exit 1, audited as a failure.
    let (code, out, err) = rotate(&only_b, &[("RAMPART_DATA_KEY", KEY_B)]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("RAMPART_DATA_KEY_PREVIOUS") && err.lines().count() == 1, "{err}");
    assert!(!err.contains(KEY_A) && !err.contains(KEY_B), "{err}");
    assert_eq!(only_b.audit_count_with("data_key_rotated", Some("failure")).await, 1);
    // Turning TOTP off with the right password is refused the same way, and not counted either.
    for _ in 0..2 {
        disable(&only_b, &alice.session, STRONG_PASSWORD, &alice.next_code()).await.assert_problem(503);
    }
    // A recovery code still gets the user in (a lock would answer 423 here).
    let token = challenge(&only_b, &alice.email).await;
    assert_logged_in(&verify(&only_b, &token, &alice.recovery[0]).await);
    only_b.stop();

    // Putting A back as the previous key restores TOTP: the 503 spent nothing.
    let ring =
        TestApp::builder().env("DATA_KEY", KEY_B).env("DATA_KEY_PREVIOUS", KEY_A).in_dir(old.dir.clone()).spawn().await;
    let token = challenge(&ring, &alice.email).await;
    assert_logged_in(&verify(&ring, &token, &alice.next_code()).await);
}

//! Argon2id: the configured parameters (OWASP minimum by default), rehash when they rise, and a
//! bounded pool that refuses at once when saturated.

use std::time::Duration;

use crate::helpers::*;

async fn stored_hash(app: &TestApp, email: &str) -> String {
    let pool = app.db().await;
    let (h,): (String,) = sqlx::query_as("SELECT password_hash FROM users WHERE email_normalized = $1")
        .bind(email.to_lowercase())
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    h
}

#[tokio::test]
async fn default_parameters_are_the_owasp_minimum() {
    // No Argon2 override: the built-in defaults apply.
    let app = TestApp::builder()
        .env("AUTH__PASSWORD_HASH__MEMORY_KIB", "19456")
        .env("AUTH__PASSWORD_HASH__ITERATIONS", "2")
        .spawn()
        .await;
    let email = unique_email();
    assert_eq!(app.register(&email, STRONG_PASSWORD).await.status, 201);
    let h = stored_hash(&app, &email).await;
    assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
    assert!(!h.contains(STRONG_PASSWORD));
}

#[tokio::test]
async fn built_in_defaults_without_any_override() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, format!("[server]\nlisten = \"127.0.0.1:0\"\n[database]\nurl = \"sqlite://{d}/x.db\"\n"))
        .unwrap();
    let (code, out, err) = run_cli(
        &["user", "create", "--config", cfg.to_str().unwrap(), "--email", "d@example.com"],
        Some(STRONG_PASSWORD),
        dir.path(),
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    let pool = db_at(&dir.path().join("x.db")).await;
    let (h,): (String,) = sqlx::query_as("SELECT password_hash FROM users").fetch_one(&pool).await.unwrap();
    assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
}

#[tokio::test]
async fn login_rehashes_when_parameters_rise() {
    let mut old = TestApp::spawn().await;
    let email = unique_email();
    assert_eq!(old.register(&email, STRONG_PASSWORD).await.status, 201);
    assert!(stored_hash(&old, &email).await.contains("m=1024,t=1,"));
    let dir = old.dir.clone();
    old.stop();

    let new = TestApp::builder()
        .in_dir(dir)
        .env("AUTH__PASSWORD_HASH__MEMORY_KIB", "2048")
        .env("AUTH__PASSWORD_HASH__ITERATIONS", "2")
        .spawn()
        .await;
    let (r, _) = new.login(&email, STRONG_PASSWORD).await;
    assert_eq!(r.status, 200, "old hashes still verify: {}", r.text());
    let mut upgraded = String::new();
    for _ in 0..50 {
        upgraded = stored_hash(&new, &email).await;
        if upgraded.contains("m=2048,t=2,") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(upgraded.contains("m=2048,t=2,"), "not rehashed: {upgraded}");
    assert_eq!(new.login(&email, STRONG_PASSWORD).await.0.status, 200);
    // A wrong password does not trigger a rehash (nor work).
    assert_eq!(new.login(&email, OTHER_STRONG_PASSWORD).await.0.status, 401);
}

#[tokio::test]
async fn a_saturated_hashing_pool_answers_503_at_once() {
    let app = TestApp::builder()
        .env("AUTH__HASH_WORKERS", "1")
        .env("AUTH__HASH_QUEUE", "1")
        .env("AUTH__PASSWORD_HASH__MEMORY_KIB", "65536")
        .env("AUTH__PASSWORD_HASH__ITERATIONS", "3")
        .spawn()
        .await;
    let logins: Vec<_> = (0..16)
        .map(|_| {
            let client = app.client.clone();
            let url = app.url("/auth/login");
            tokio::spawn(async move {
                let body = serde_json::json!({ "email": unique_email(), "password": STRONG_PASSWORD });
                let r = client.post(url).json(&body).send().await.unwrap();
                let status = r.status().as_u16();
                let retry = r.headers().get("retry-after").is_some();
                let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
                (status, retry, ct)
            })
        })
        .collect();
    let mut busy = 0;
    for l in logins {
        let (status, retry, ct) = l.await.unwrap();
        assert!(status == 401 || status == 503, "unexpected {status}");
        if status == 503 {
            busy += 1;
            assert!(retry, "503 without Retry-After");
            assert_eq!(ct.as_deref(), Some("application/problem+json"));
        }
    }
    assert!(busy > 0, "sixteen concurrent logins all queued on a one-slot pool");
    assert_eq!(app.get("/healthz").await.status, 200);
}

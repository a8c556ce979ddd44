//! Bearer tokens: issued and verifiable by an independent library; every classic JWT attack
//! refused (each paired with a valid token accepted); refresh rotation, reuse detection, the
//! concurrent-refresh allowance, revocation and key rotation.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use reqwest::Method;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::{Value, json};

use crate::helpers::*;

struct Grant {
    access: String,
    refresh: String,
    body: Value,
}

async fn password_grant(app: &TestApp, email: &str) -> Grant {
    let r = app
        .post_json("/auth/token", &json!({ "grant_type": "password", "email": email, "password": STRONG_PASSWORD }))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    Grant {
        access: body["access_token"].as_str().unwrap().into(),
        refresh: body["refresh_token"].as_str().unwrap().into(),
        body,
    }
}

async fn refresh(app: &TestApp, token: &str, ua: &str) -> Resp {
    TestApp::send(
        app.request(Method::POST, "/auth/token")
            .header("user-agent", ua)
            .json(&json!({ "grant_type": "refresh_token", "refresh_token": token })),
    )
    .await
}

async fn me(app: &TestApp, token: &str) -> Resp {
    TestApp::send(app.request(Method::GET, "/auth/me").header("authorization", format!("Bearer {token}"))).await
}

async fn new_user(app: &TestApp) -> String {
    let email = unique_email();
    assert_eq!(app.register(&email, STRONG_PASSWORD).await.status, 201);
    email
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap()
}

fn header_of(token: &str) -> Value {
    serde_json::from_slice(&B64.decode(token.split('.').next().unwrap()).unwrap()).unwrap()
}

/// The server's own private key (the test can read the temp keys directory).
fn server_key(app: &TestApp) -> (String, Vec<u8>) {
    let dir = app.dir.path().join("keys");
    let entry = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.path().extension().is_some_and(|x| x == "pem"))
        .unwrap();
    let kid = entry.path().file_stem().unwrap().to_str().unwrap().to_owned();
    (kid, std::fs::read(entry.path()).unwrap())
}

fn sign_rs256(pem: &[u8], kid: &str, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(kid.to_owned());
    encode(&h, claims, &EncodingKey::from_rsa_pem(pem).unwrap()).unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn pyjwt(token: &str, jwks: &str, alg: &str) -> Result<Value, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/pyjwt_verify.py");
    let out = std::process::Command::new("python3")
        .args([script, token, jwks, "http://localhost", "http://localhost", alg])
        .output()
        .expect("python3 is needed for the independent JWT check (scripts/test installs PyJWT)");
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[tokio::test]
async fn tokens_verify_with_pyjwt_against_the_jwks() {
    for alg in ["RS256", "EdDSA"] {
        let app = TestApp::builder().env("AUTH__JWT_ALGORITHM", alg).spawn().await;
        let email = new_user(&app).await;
        let g = password_grant(&app, &email).await;
        assert_eq!(g.body["token_type"], json!("Bearer"));
        assert_eq!(g.body["expires_in"], json!(600));
        assert_eq!(g.refresh.len(), 43);
        let jwks = app.get("/.well-known/jwks.json").await;
        assert_eq!(jwks.status, 200);
        let claims = pyjwt(&g.access, &jwks.text(), alg).unwrap_or_else(|e| panic!("PyJWT refused a {alg} token: {e}"));
        let me = me(&app, &g.access).await.json();
        assert_eq!(claims["sub"], me["id"]);
        assert_eq!(claims["roles"], json!(["user"]));
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 600);
        for c in ["sid", "jti", "nbf"] {
            assert!(claims.get(c).is_some(), "missing {c}");
        }
        assert_eq!(header_of(&g.access)["alg"], json!(alg));
        // The same independent check fails on a tampered token (so it is really checking).
        let mut parts: Vec<String> = g.access.split('.').map(str::to_owned).collect();
        let mut c = claims_of(&g.access);
        c["roles"] = json!(["admin"]);
        parts[1] = B64.encode(serde_json::to_vec(&c).unwrap());
        assert!(pyjwt(&parts.join("."), &jwks.text(), alg).is_err());
    }
}

#[tokio::test]
async fn forged_and_invalid_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let email = new_user(&app).await;
    let g = password_grant(&app, &email).await;
    let (kid, pem) = server_key(&app);
    let base = claims_of(&g.access);

    // The control: a token we sign ourselves with the server's key and the right claims passes,
    // so every refusal below is about the one thing each case changes.
    let mut fresh = base.clone();
    fresh["iat"] = json!(now());
    fresh["nbf"] = json!(now());
    fresh["exp"] = json!(now() + 300);
    let control = sign_rs256(&pem, &kid, &fresh);
    assert_eq!(me(&app, &control).await.status, 200, "the control token must be accepted");
    assert_eq!(me(&app, &g.access).await.status, 200);

    let mut cases: Vec<(&str, String)> = Vec::new();
    let sig = g.access.split('.').nth(2).unwrap().to_owned();
    let payload = g.access.split('.').nth(1).unwrap().to_owned();

    // alg: none, with and without a signature.
    let none = B64.encode(json!({ "alg": "none", "typ": "JWT", "kid": kid }).to_string());
    cases.push(("alg none", format!("{none}.{payload}.")));
    cases.push(("alg none with sig", format!("{none}.{payload}.{sig}")));
    // Key confusion: HS256 with the RSA public key as the HMAC secret.
    let private =
        <rsa::RsaPrivateKey as rsa::pkcs8::DecodePrivateKey>::from_pkcs8_pem(std::str::from_utf8(&pem).unwrap())
            .unwrap();
    let public_pem = private.to_public_key().to_public_key_pem(LineEnding::LF).unwrap();
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some(kid.clone());
    cases.push(("HS256 key confusion", encode(&h, &fresh, &EncodingKey::from_secret(public_pem.as_bytes())).unwrap()));
    // Tampered payload (roles escalated), original signature kept.
    let mut admin = fresh.clone();
    admin["roles"] = json!(["user", "admin"]);
    let ctrl_parts: Vec<&str> = control.split('.').collect();
    cases.push(("tampered payload", format!("{}.{}.{}", ctrl_parts[0], B64.encode(admin.to_string()), ctrl_parts[2])));
    // An attacker's own key: unknown kid, and embedded jwk / jku / x5u headers.
    let attacker = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let attacker_pem = attacker.to_pkcs8_pem(LineEnding::LF).unwrap();
    let attacker_key = EncodingKey::from_rsa_pem(attacker_pem.as_bytes()).unwrap();
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some("attacker".into());
    cases.push(("unknown kid", encode(&h, &fresh, &attacker_key).unwrap()));
    let jwk_json = json!({ "kty": "RSA", "kid": kid, "n": B64.encode(rsa::traits::PublicKeyParts::n(&attacker).to_bytes_be()), "e": "AQAB" });
    let raw_header = |extra: Value| {
        let mut hdr = json!({ "alg": "RS256", "typ": "JWT", "kid": kid });
        for (k, v) in extra.as_object().unwrap() {
            hdr[k] = v.clone();
        }
        hdr
    };
    for (name, extra) in [
        ("embedded jwk", json!({ "jwk": jwk_json })),
        ("jku header", json!({ "jku": "https://evil.example/jwks.json" })),
        ("x5u header", json!({ "x5u": "https://evil.example/cert.pem" })),
    ] {
        // Signed with the real server key, so only the header field can be the reason for refusal.
        let header = B64.encode(raw_header(extra).to_string());
        let body = B64.encode(fresh.to_string());
        let signing_input = format!("{header}.{body}");
        let sig = jsonwebtoken::crypto::sign(
            signing_input.as_bytes(),
            &EncodingKey::from_rsa_pem(&pem).unwrap(),
            Algorithm::RS256,
        )
        .unwrap();
        cases.push((name, format!("{signing_input}.{sig}")));
    }
    // Valid signatures from the real key, wrong claims.
    for (name, field, value) in [
        ("wrong iss", "iss", json!("https://evil.example")),
        ("wrong aud", "aud", json!("someone-else")),
        ("expired", "exp", json!(now() - 120)),
        ("not yet valid", "nbf", json!(now() + 120)),
    ] {
        let mut c = fresh.clone();
        c[field] = value;
        cases.push((name, sign_rs256(&pem, &kid, &c)));
    }
    // Syntactically broken.
    for (name, t) in [("empty", ""), ("garbage", "abc"), ("three dots", "a.b.c"), ("two parts", "eyJ.eyJ")] {
        cases.push((name, t.to_owned()));
    }
    cases.push(("huge", "a".repeat(10_000)));

    for (name, token) in &cases {
        let r = me(&app, token).await;
        assert_eq!(r.status, 401, "{name}: {}", r.text());
        r.assert_problem(401);
        assert!(r.header("www-authenticate").is_some_and(|h| h.starts_with("Bearer")), "{name}");
    }
    // Still fine after the barrage.
    assert_eq!(me(&app, &control).await.status, 200);
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_login() {
    let app = TestApp::spawn().await;
    let email = new_user(&app).await;
    let g = password_grant(&app, &email).await;

    let r1 = refresh(&app, &g.refresh, "app/1").await;
    assert_eq!(r1.status, 200, "{}", r1.text());
    let b1 = r1.json();
    let (a1, t1) = (b1["access_token"].as_str().unwrap().to_owned(), b1["refresh_token"].as_str().unwrap().to_owned());
    assert_ne!(t1, g.refresh, "rotation: every use returns a new refresh token");
    assert_eq!(claims_of(&a1)["sid"], claims_of(&g.access)["sid"]);
    assert_eq!(me(&app, &a1).await.status, 200);

    // The thief replays the first token from another client: refused, and the whole login dies.
    let replay = refresh(&app, &g.refresh, "thief/1").await;
    replay.assert_problem(401);
    assert_eq!(refresh(&app, &t1, "app/1").await.status, 401, "the legitimate successor dies too");
    assert_eq!(me(&app, &a1).await.status, 401, "access tokens of the login die at once");
    assert_eq!(me(&app, &g.access).await.status, 401);

    let pool = app.db().await;
    let n: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_log WHERE action = 'refresh_token_reuse'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n.0, 1);
    // A new login still works.
    let again = password_grant(&app, &email).await;
    assert_eq!(me(&app, &again.access).await.status, 200);
}

#[tokio::test]
async fn concurrent_refresh_by_the_same_client_is_not_replay() {
    let app = TestApp::builder().env("AUTH__REFRESH_REUSE_GRACE", "5s").spawn().await;
    let email = new_user(&app).await;
    let g = password_grant(&app, &email).await;
    // Two tabs refresh with the same token at the same moment.
    let (a, b) = tokio::join!(refresh(&app, &g.refresh, "browser/1"), refresh(&app, &g.refresh, "browser/1"));
    assert_eq!((a.status, b.status), (200, 200), "{} / {}", a.text(), b.text());
    let (ta, tb) = (
        a.json()["refresh_token"].as_str().unwrap().to_owned(),
        b.json()["refresh_token"].as_str().unwrap().to_owned(),
    );
    assert_ne!(ta, tb);
    // Both tabs carry on.
    assert_eq!(refresh(&app, &ta, "browser/1").await.status, 200);
    assert_eq!(refresh(&app, &tb, "browser/1").await.status, 200);
    assert_eq!(me(&app, a.json()["access_token"].as_str().unwrap()).await.status, 200);
}

#[tokio::test]
async fn replay_after_the_grace_window_is_reuse_even_from_the_same_client() {
    let app = TestApp::builder().env("AUTH__REFRESH_REUSE_GRACE", "1s").spawn().await;
    let email = new_user(&app).await;
    let g = password_grant(&app, &email).await;
    let next = refresh(&app, &g.refresh, "browser/1").await;
    assert_eq!(next.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(refresh(&app, &g.refresh, "browser/1").await.status, 401);
    assert_eq!(refresh(&app, next.json()["refresh_token"].as_str().unwrap(), "browser/1").await.status, 401);
}

#[tokio::test]
async fn logout_and_revoke_take_effect_at_once() {
    let app = TestApp::spawn().await;
    let email = new_user(&app).await;

    // Bearer logout revokes the sid: the still-unexpired token is refused immediately.
    let g = password_grant(&app, &email).await;
    assert_eq!(me(&app, &g.access).await.status, 200);
    let out = TestApp::send(
        app.request(Method::POST, "/auth/logout").header("authorization", format!("Bearer {}", g.access)),
    )
    .await;
    assert_eq!(out.status, 204, "{}", out.text());
    assert_eq!(me(&app, &g.access).await.status, 401);
    assert_eq!(refresh(&app, &g.refresh, "x").await.status, 401);

    // /auth/revoke with the refresh token: 204, and the login is gone.
    let g = password_grant(&app, &email).await;
    let r = app.post_json("/auth/revoke", &json!({ "refresh_token": g.refresh })).await;
    assert_eq!(r.status, 204);
    assert_eq!(me(&app, &g.access).await.status, 401);
    assert_eq!(refresh(&app, &g.refresh, "x").await.status, 401);
    // Any other token: still 204, nothing learned.
    for t in ["garbage", "a".repeat(43).as_str()] {
        assert_eq!(app.post_json("/auth/revoke", &json!({ "refresh_token": t })).await.status, 204);
    }
    // Another login of the same user is untouched.
    let other = password_grant(&app, &email).await;
    assert_eq!(me(&app, &other.access).await.status, 200);
}

#[tokio::test]
async fn revocations_survive_a_restart() {
    let mut app = TestApp::spawn().await;
    let email = new_user(&app).await;
    let g = password_grant(&app, &email).await;
    let out = TestApp::send(
        app.request(Method::POST, "/auth/logout").header("authorization", format!("Bearer {}", g.access)),
    )
    .await;
    assert_eq!(out.status, 204);
    let dir = app.dir.clone();
    app.stop();
    let again = TestApp::builder().in_dir(dir).spawn().await;
    assert_eq!(me(&again, &g.access).await.status, 401, "a revoked token came back to life after a restart");
}

#[tokio::test]
async fn bearer_requests_need_no_csrf_token_and_token_grants_fail_like_login() {
    let app = TestApp::spawn().await;
    let email = new_user(&app).await;
    let g = password_grant(&app, &email).await;
    let r = TestApp::send(
        app.request(Method::PATCH, "/auth/me")
            .header("authorization", format!("Bearer {}", g.access))
            .json(&json!({ "display_name": "Bearer Bea" })),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Uniform failures, as login.
    let wrong = app
        .post_json(
            "/auth/token",
            &json!({ "grant_type": "password", "email": email, "password": OTHER_STRONG_PASSWORD }),
        )
        .await;
    let unknown = app
        .post_json(
            "/auth/token",
            &json!({ "grant_type": "password", "email": unique_email(), "password": OTHER_STRONG_PASSWORD }),
        )
        .await;
    wrong.assert_problem(401);
    assert_eq!(wrong.body, unknown.body);
    let bad = app.post_json("/auth/token", &json!({ "grant_type": "client_credentials" })).await;
    assert_eq!(bad.assert_problem(400)["errors"][0]["field"], json!("grant_type"));
    let bad = app.post_json("/auth/token", &json!({ "grant_type": "password", "email": email })).await;
    assert_eq!(bad.error_fields(), vec!["password".to_owned()]);
    let bad =
        app.post_json("/auth/token", &json!({ "grant_type": "refresh_token", "refresh_token": {"$ne": null} })).await;
    bad.assert_problem(400);
}

/// `rampart keys rotate` on a server that reloads its keys every second, then long enough for the
/// new key to be loaded and to start signing (it signs once it is a reload interval old).
async fn rotate_keys(app: &TestApp) {
    let cfg = app.config_path.display().to_string();
    let (code, out, err) = run_cli(
        &["keys", "rotate", "--config", &cfg],
        None,
        app.dir.path(),
        &[("RAMPART_AUTH__KEYS_RELOAD_INTERVAL", "1s")],
    );
    assert_eq!(code, 0, "{out}{err}");
    tokio::time::sleep(std::time::Duration::from_millis(3000)).await;
}

#[tokio::test]
async fn key_rotation_keeps_old_tokens_valid_and_lists_both_keys() {
    let app = TestApp::builder().env("AUTH__KEYS_RELOAD_INTERVAL", "1s").spawn().await;
    let email = new_user(&app).await;
    let before = password_grant(&app, &email).await;
    let old_kid = header_of(&before.access)["kid"].as_str().unwrap().to_owned();

    rotate_keys(&app).await;
    // Reloaded within a second; the new key signs once it is a reload interval old.
    let jwks = app.get("/.well-known/jwks.json").await.json();
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids.len(), 2, "{jwks}");
    assert!(kids.contains(&old_kid.as_str()));

    let after = password_grant(&app, &email).await;
    let new_kid = header_of(&after.access)["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid, "the new key signs after rotation");
    assert_eq!(me(&app, &before.access).await.status, 200, "a token signed before the rotation still works");
    assert_eq!(me(&app, &after.access).await.status, 200);
    assert!(pyjwt(&before.access, &app.get("/.well-known/jwks.json").await.text(), "RS256").is_ok());
}

#[tokio::test]
async fn a_validly_signed_token_that_lives_longer_than_the_ttl_is_refused() {
    // TTL 10 min, leeway 30 s: a token's `exp - iat` may be at most 630 s.
    let app = TestApp::spawn().await;
    let email = new_user(&app).await;
    let g = password_grant(&app, &email).await;
    let (kid, pem) = server_key(&app);
    let base = claims_of(&g.access);
    let signed = |iat: i64, nbf: i64, exp: i64| {
        let mut c = base.clone();
        c["iat"] = json!(iat);
        c["nbf"] = json!(nbf);
        c["exp"] = json!(exp);
        sign_rs256(&pem, &kid, &c)
    };
    let t = now();
    // The control: the server's own key and the longest lifetime the configuration allows.
    assert_eq!(me(&app, &signed(t, t, t + 630)).await.status, 200, "a token within TTL + leeway must pass");
    // The same key (think: leaked, or an older config with a longer TTL), a lifetime beyond it.
    for (name, token) in [
        ("one hour", signed(t, t, t + 3600)),
        ("one year", signed(t, t, t + 365 * 86400)),
        ("ttl + leeway + 1 s", signed(t, t, t + 631)),
        // A short `exp - iat` that starts in the future is a long-lived token in disguise.
        ("iat in the future", signed(t + 86400, t, t + 86400 + 300)),
    ] {
        let r = me(&app, &token).await;
        r.assert_problem(401);
        assert!(r.header("www-authenticate").is_some_and(|h| h.starts_with("Bearer")), "{name}");
    }
    // Verified tokens are cached: asking twice changes nothing.
    assert_eq!(me(&app, &signed(t, t, t + 3600)).await.status, 401);
}

#[tokio::test]
async fn a_removed_key_stops_verifying_its_tokens_at_once_even_cached_ones() {
    let app = TestApp::builder().env("AUTH__KEYS_RELOAD_INTERVAL", "1s").spawn().await;
    let email = new_user(&app).await;
    let old = password_grant(&app, &email).await;
    let old_kid = header_of(&old.access)["kid"].as_str().unwrap().to_owned();

    // A second key, which signs once it is a reload interval old.
    rotate_keys(&app).await;
    let new = password_grant(&app, &email).await;
    assert_ne!(header_of(&new.access)["kid"].as_str().unwrap(), old_kid, "the new key signs");
    // The old key's token verifies with the ring as it is now, and is cached from here on.
    assert_eq!(me(&app, &old.access).await.status, 200);
    assert_eq!(me(&app, &old.access).await.status, 200);

    // The operator removes the old key (compromised, say). Once the ring is reloaded, its tokens
    // are refused, not when their cached verification would have expired.
    std::fs::remove_file(app.dir.path().join("keys").join(format!("{old_kid}.pem"))).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(3000)).await;
    let jwks = app.get("/.well-known/jwks.json").await.json();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1, "the ring was reloaded: {jwks}");
    me(&app, &old.access).await.assert_problem(401);
    assert_eq!(me(&app, &new.access).await.status, 200, "tokens of the remaining key still work");
}

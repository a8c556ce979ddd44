//! TOTP multi-factor authentication, attacked over HTTP: the second factor cannot be skipped,
//! guessed without limit, replayed, raced, borrowed from another account or read from the
//! database file. Codes are computed independently with pyotp (RFC 6238), never by the server's
//! own code.

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// The TOTP time step, in seconds.
pub(crate) const STEP: u64 = 30;

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The current unix time, at least 3 s before the end of its 30 s step (waiting for the next
/// step otherwise), so that a code computed now is checked by the server in the same step.
pub(crate) async fn settled_now() -> u64 {
    let t = now_unix();
    if t % STEP >= STEP - 4 {
        tokio::time::sleep(Duration::from_millis((STEP - t % STEP) * 1000 + 200)).await;
    }
    now_unix()
}

fn python(script: &str, args: &[String]) -> Vec<String> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 with pyotp is needed for the MFA tests (scripts/requirements-test.txt)");
    assert!(out.status.success(), "pyotp failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect()
}

/// pyotp's codes for `secret` at each of `at_unix` (SHA-1, 6 digits, 30 s: what authenticator
/// apps use).
fn totp_codes(secret: &str, at_unix: &[u64]) -> Vec<String> {
    let mut args = vec![secret.to_owned()];
    args.extend(at_unix.iter().map(u64::to_string));
    python("import pyotp, sys\nt = pyotp.TOTP(sys.argv[1])\nfor x in sys.argv[2:]: print(t.at(int(x)))", &args)
}

pub(crate) fn totp_code(secret: &str, at_unix: u64) -> String {
    totp_codes(secret, &[at_unix]).remove(0)
}

/// The code an authenticator app that scanned `uri` would show at `at_unix`.
fn uri_code(uri: &str, at_unix: u64) -> String {
    let script = "import pyotp, sys\nprint(pyotp.parse_uri(sys.argv[1]).at(int(sys.argv[2])))";
    python(script, &[uri.to_owned(), at_unix.to_string()]).remove(0)
}

/// `n` distinct six-digit codes valid in no step within two of `at_unix`'s: sure wrong guesses.
fn wrong_codes(secret: &str, at_unix: u64, n: usize) -> Vec<String> {
    let window: Vec<u64> = (0..5).map(|k| at_unix - 2 * STEP + k * STEP).collect();
    let valid = totp_codes(secret, &window);
    let base: u32 = valid[2].parse().unwrap();
    (1..).map(|k: u32| format!("{:06}", (base + k * 7919) % 1_000_000)).filter(|c| !valid.contains(c)).take(n).collect()
}

/// RFC 4648 base32, as authenticator apps decode the secret.
fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut acc, mut bits, mut out) = (0u64, 0u32, Vec::new());
    for c in s.trim_end_matches('=').bytes() {
        let v = ALPHABET.iter().position(|a| *a == c.to_ascii_uppercase()).expect("base32") as u64;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

pub(crate) struct MfaUser {
    pub(crate) email: String,
    /// The cookie session MFA was enabled from (logged in before MFA was on).
    pub(crate) session: Session,
    pub(crate) secret: String,
    pub(crate) recovery: Vec<String>,
    /// The unix time whose code enabled MFA.
    pub(crate) enabled_at: u64,
}

impl MfaUser {
    /// The code of the step after the enabling one: not used yet, and accepted (one step of
    /// skew) for at least a minute after enabling.
    pub(crate) fn next_code(&self) -> String {
        totp_code(&self.secret, self.enabled_at + STEP)
    }

    fn wrong_codes(&self, n: usize) -> Vec<String> {
        wrong_codes(&self.secret, self.enabled_at, n)
    }
}

pub(crate) async fn setup(app: &TestApp, s: &Session) -> Value {
    let r = app.send_as(Method::POST, "/auth/mfa/totp/setup", s, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// Enables TOTP as its owner does: with a code and the current password.
pub(crate) async fn enable(app: &TestApp, s: &Session, code: &str) -> Resp {
    let body = json!({ "code": code, "password": STRONG_PASSWORD });
    app.send_as(Method::POST, "/auth/mfa/totp/enable", s, Some(&body)).await
}

pub(crate) async fn disable(app: &TestApp, s: &Session, password: &str, code: &str) -> Resp {
    let body = json!({ "password": password, "code": code });
    app.send_as(Method::POST, "/auth/mfa/totp/disable", s, Some(&body)).await
}

/// A fresh user with TOTP enabled.
pub(crate) async fn mfa_user(app: &TestApp) -> MfaUser {
    let (email, session) = app.user().await;
    let secret = setup(app, &session).await["secret"].as_str().unwrap().to_owned();
    let enabled_at = settled_now().await;
    let r = enable(app, &session, &totp_code(&secret, enabled_at)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let recovery = r.json()["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().into()).collect();
    MfaUser { email, session, secret, recovery, enabled_at }
}

fn sets_session_cookie(r: &Resp) -> bool {
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| c.starts_with("__Host-rampart_session=") && !c.starts_with("__Host-rampart_session=;"))
}

/// The answer to the right password of an MFA account: a 401 that asks for the second factor
/// and grants nothing yet. Returns the `mfa_token`.
pub(crate) fn assert_mfa_required(r: &Resp) -> String {
    let body = r.assert_problem(401);
    assert!(body["type"].as_str().is_some_and(|t| t.ends_with("/mfa-required")), "{body}");
    assert!(!sets_session_cookie(r), "a session before the second factor: {:?}", r.headers);
    assert!(body.get("access_token").is_none() && body.get("refresh_token").is_none(), "{body}");
    body["mfa_token"].as_str().expect("mfa_token").to_owned()
}

/// Logs in with the right password; returns the MFA challenge token.
pub(crate) async fn challenge(app: &TestApp, email: &str) -> String {
    assert_mfa_required(&app.login(email, STRONG_PASSWORD).await.0)
}

pub(crate) async fn grant_challenge(app: &TestApp, email: &str) -> String {
    let grant = json!({ "grant_type": "password", "email": email, "password": STRONG_PASSWORD });
    assert_mfa_required(&app.post_json("/auth/token", &grant).await)
}

pub(crate) async fn verify(app: &TestApp, mfa_token: &str, code: &str) -> Resp {
    app.post_json("/auth/mfa/verify", &json!({ "mfa_token": mfa_token, "code": code })).await
}

/// A completed login: 200 and a working session.
pub(crate) fn assert_logged_in(r: &Resp) -> Session {
    assert_eq!(r.status, 200, "{}", r.text());
    session_from(r).expect("a completed login sets the session cookie")
}

fn assert_locked(r: &Resp) {
    r.assert_problem(423);
    let retry: u64 = r.header("retry-after").expect("Retry-After").parse().expect("whole seconds");
    assert!(retry >= 1);
}

#[tokio::test]
async fn setup_and_enable_follow_the_lifecycle() {
    let app = TestApp::spawn().await;
    let (email, s) = app.user().await;

    // Credentials are needed, and a cookie session needs its CSRF token.
    TestApp::send(app.request(Method::POST, "/auth/mfa/totp/setup")).await.assert_problem(401);
    let no_csrf = app.request(Method::POST, "/auth/mfa/totp/setup").header("cookie", s.cookie_header());
    TestApp::send(no_csrf).await.assert_problem(403);
    // Nothing to enable before a setup.
    enable(&app, &s, "123456").await.assert_problem(409);

    // A second setup before enabling replaces the pending secret.
    let first = setup(&app, &s).await["secret"].as_str().unwrap().to_owned();
    let body = setup(&app, &s).await;
    let secret = body["secret"].as_str().unwrap().to_owned();
    assert_ne!(first, secret);
    // 160 bits in unpadded RFC 4648 base32, the form authenticator apps take.
    assert_eq!(secret.len(), 32, "{secret}");
    assert!(secret.bytes().all(|c| c.is_ascii_uppercase() || (b'2'..=b'7').contains(&c)), "{secret}");
    assert_eq!(base32_decode(&secret).len(), 20);
    let uri = body["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")) && uri.contains("issuer="), "{uri}");
    let qr = body["qr_svg"].as_str().unwrap();
    assert!((qr.starts_with("<svg") || qr.starts_with("<?xml")) && qr.contains("</svg>"), "{qr}");
    // An app that scans the URI shows the codes the secret gives (no odd period or digits).
    let t = settled_now().await;
    assert_eq!(uri_code(uri, t), totp_code(&secret, t));

    // Neither the replaced secret's code nor a wrong one enables MFA.
    for code in [totp_code(&first, t), wrong_codes(&secret, t, 1).remove(0)] {
        let r = enable(&app, &s, &code).await;
        r.assert_problem(400);
        assert_eq!(r.error_fields(), vec!["code".to_owned()], "{}", r.text());
    }
    assert_eq!(app.get_as("/auth/me", &s).await.json()["mfa_enabled"], json!(false));
    app.login(&email, STRONG_PASSWORD).await.1.expect("no MFA before it is enabled");

    let r = enable(&app, &s, &totp_code(&secret, t)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let mut codes: Vec<String> =
        r.json()["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    assert_eq!(codes.len(), 10);
    assert!(codes.iter().all(|c| c.len() >= 8), "{codes:?}");
    codes.sort();
    codes.dedup();
    assert_eq!(codes.len(), 10, "recovery codes repeat");
    assert_eq!(app.get_as("/auth/me", &s).await.json()["mfa_enabled"], json!(true));

    // Once on, no setup could swap the secret under the user, and no second enable.
    app.send_as(Method::POST, "/auth/mfa/totp/setup", &s, None).await.assert_problem(409);
    enable(&app, &s, &totp_code(&secret, t + STEP)).await.assert_problem(409);
    // The login now asks for the second factor.
    challenge(&app, &email).await;
}

#[tokio::test]
async fn login_with_mfa_needs_the_second_factor() {
    let app = TestApp::spawn().await;
    let u = mfa_user(&app).await;
    let token = challenge(&app, &u.email).await;
    // The challenge token is no credential.
    app.get_bearer("/auth/me", &token).await.assert_problem(401);
    // A wrong password says nothing about MFA: the same bytes as an unknown email.
    let wrong = app.login(&u.email, OTHER_STRONG_PASSWORD).await.0;
    let unknown = app.login(&unique_email(), OTHER_STRONG_PASSWORD).await.0;
    assert_eq!(wrong.assert_problem(401)["detail"], json!("invalid email or password"));
    assert_eq!(wrong.body, unknown.body, "{} / {}", wrong.text(), unknown.text());
    assert!(!sets_session_cookie(&wrong));
    // A made-up challenge token gets nowhere, even with the right code.
    for fake in ["garbage".to_owned(), "A".repeat(43), format!("{token}x")] {
        let r = verify(&app, &fake, &u.next_code()).await;
        assert!(matches!(r.status, 400 | 401), "{fake}: {} {}", r.status, r.text());
        assert!(!sets_session_cookie(&r));
    }

    let s = assert_logged_in(&verify(&app, &token, &u.next_code()).await);
    let me = app.get_as("/auth/me", &s).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["email"], json!(u.email));
    assert_eq!(me.json()["mfa_enabled"], json!(true));
    // The challenge is single use, even with a good (recovery) code.
    let again = verify(&app, &token, &u.recovery[0]).await;
    again.assert_problem(401);
    assert!(!sets_session_cookie(&again));
}

#[tokio::test]
async fn the_token_grant_needs_the_second_factor_too() {
    let app = TestApp::spawn().await;
    let u = mfa_user(&app).await;
    let token = grant_challenge(&app, &u.email).await;
    let r = verify(&app, &token, &u.next_code()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!sets_session_cookie(&r), "a token grant completes as a token grant");
    let body = r.json();
    assert_eq!(body["token_type"], json!("Bearer"));
    assert!(body["expires_in"].as_u64().is_some_and(|e| e > 0), "{body}");
    let access = body["access_token"].as_str().unwrap();
    assert!(body["refresh_token"].as_str().is_some_and(|t| t.len() == 43), "{body}");
    let me = app.get_bearer("/auth/me", access).await;
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["email"], json!(u.email));
    verify(&app, &token, &u.recovery[0]).await.assert_problem(401);
}

#[tokio::test]
async fn another_accounts_codes_do_not_pass() {
    let app = TestApp::spawn().await;
    let alice = mfa_user(&app).await;
    let mallory = mfa_user(&app).await;
    // Mallory knows Alice's password, but holds only his own authenticator and recovery codes.
    let token = challenge(&app, &alice.email).await;
    verify(&app, &token, &mallory.next_code()).await.assert_problem(401);
    verify(&app, &token, &mallory.recovery[0]).await.assert_problem(401);
    // The same challenge still completes with Alice's own code: the refusals were about whose code.
    let s = assert_logged_in(&verify(&app, &token, &alice.next_code()).await);
    assert_eq!(app.get_as("/auth/me", &s).await.json()["email"], json!(alice.email));
}

#[tokio::test]
async fn the_challenge_expires() {
    let app = TestApp::builder().env("AUTH__MFA_CHALLENGE_TTL", "2s").spawn().await;
    let u = mfa_user(&app).await;
    let token = challenge(&app, &u.email).await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let r = verify(&app, &token, &u.next_code()).await;
    r.assert_problem(401);
    assert!(!sets_session_cookie(&r));
    // A fresh challenge with a good factor passes: only the age was wrong.
    let fresh = challenge(&app, &u.email).await;
    assert_logged_in(&verify(&app, &fresh, &u.recovery[0]).await);
}

#[tokio::test]
async fn five_wrong_codes_kill_the_challenge() {
    let app = TestApp::spawn().await;
    let u = mfa_user(&app).await;
    let before = app.audit_count("mfa_failure").await;
    let token = challenge(&app, &u.email).await;
    for code in u.wrong_codes(5) {
        verify(&app, &token, &code).await.assert_problem(401);
    }
    // The sixth guess is refused even when it is right: six tries per challenge would be a
    // brute force with more chances than the five allowed.
    verify(&app, &token, &u.next_code()).await.assert_problem(401);
    verify(&app, &token, &u.recovery[0]).await.assert_problem(401);
    // A new challenge works (the limit is per challenge; the lockout is far away here).
    let fresh = challenge(&app, &u.email).await;
    assert_logged_in(&verify(&app, &fresh, &u.recovery[1]).await);
    assert!(app.audit_count("mfa_failure").await - before >= 5, "every failed code is audited");
}

#[tokio::test]
async fn a_used_totp_code_cannot_be_replayed() {
    let app = TestApp::spawn().await;
    let u = mfa_user(&app).await;
    let code = u.next_code();
    assert_logged_in(&verify(&app, &challenge(&app, &u.email).await, &code).await);

    // Someone who watched the code being typed tries it on a fresh challenge: refused.
    let token = challenge(&app, &u.email).await;
    verify(&app, &token, &code).await.assert_problem(401);
    // So is the code of an earlier step (the one that enabled MFA).
    verify(&app, &token, &totp_code(&u.secret, u.enabled_at)).await.assert_problem(401);
    // The challenge itself was fine: the refusals were about the codes.
    assert_logged_in(&verify(&app, &token, &u.recovery[0]).await);
}

#[tokio::test]
async fn a_code_raced_on_three_challenges_passes_once() {
    let app = TestApp::spawn().await;
    let u = mfa_user(&app).await;
    let (t1, t2, t3) =
        (challenge(&app, &u.email).await, grant_challenge(&app, &u.email).await, challenge(&app, &u.email).await);
    let code = u.next_code();
    let (a, b, c) = tokio::join!(verify(&app, &t1, &code), verify(&app, &t2, &code), verify(&app, &t3, &code));
    let mut statuses = [a.status, b.status, c.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 401, 401], "{} / {} / {}", a.text(), b.text(), c.text());
}

#[tokio::test]
async fn codes_beyond_one_step_of_skew_are_refused() {
    let app = TestApp::spawn().await;
    let u = mfa_user(&app).await;
    let token = challenge(&app, &u.email).await;
    let t = settled_now().await;
    for at in [t + 3 * STEP, t - 3 * STEP] {
        verify(&app, &token, &totp_code(&u.secret, at)).await.assert_problem(401);
    }
    // One step ahead is within the allowed skew: the same challenge passes with it.
    assert_logged_in(&verify(&app, &token, &totp_code(&u.secret, t + STEP)).await);
}

/// The same code with its last character changed to another of the same kind.
fn altered(code: &str) -> String {
    let mut chars: Vec<char> = code.chars().collect();
    let last = chars.len() - 1;
    chars[last] = match chars[last] {
        '0' => '1',
        d if d.is_ascii_digit() => '0',
        'a' => 'b',
        l if l.is_ascii_lowercase() => 'a',
        'A' => 'B',
        _ => 'A',
    };
    chars.into_iter().collect()
}

#[tokio::test]
async fn each_recovery_code_works_once() {
    let app = TestApp::spawn().await;
    let u = mfa_user(&app).await;
    assert_logged_in(&verify(&app, &challenge(&app, &u.email).await, &u.recovery[0]).await);
    let token = challenge(&app, &u.email).await;
    verify(&app, &token, &u.recovery[0]).await.assert_problem(401);
    // A guess of the right shape is no recovery code.
    verify(&app, &token, &altered(&u.recovery[2])).await.assert_problem(401);
    // The others are still there, each for one use.
    assert_logged_in(&verify(&app, &token, &u.recovery[1]).await);
    let token = challenge(&app, &u.email).await;
    verify(&app, &token, &u.recovery[1]).await.assert_problem(401);
    assert_logged_in(&verify(&app, &token, &u.recovery[2]).await);
}

#[tokio::test]
async fn the_secret_and_recovery_codes_are_not_stored_or_logged_in_clear() {
    let app = TestApp::spawn().await;
    let u = mfa_user(&app).await;
    let raw = base32_decode(&u.secret);
    let db = app.db_file_bytes().await;
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let mut needles: Vec<(String, Vec<u8>)> = vec![
        ("secret (raw bytes)".into(), raw.clone()),
        ("secret (base32)".into(), u.secret.clone().into_bytes()),
        ("secret (lowercase base32)".into(), u.secret.to_lowercase().into_bytes()),
        ("secret (hex)".into(), hex.clone().into_bytes()),
        ("secret (uppercase hex)".into(), hex.to_uppercase().into_bytes()),
        ("secret (base64)".into(), base64::engine::general_purpose::STANDARD.encode(&raw).into_bytes()),
        ("secret (base64url)".into(), base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw).into_bytes()),
    ];
    for code in &u.recovery {
        for form in [code.clone(), code.to_uppercase(), code.to_lowercase(), code.replace('-', "")] {
            needles.push((format!("recovery code {code}"), form.into_bytes()));
        }
    }
    let logs = app.logs_settled().await;
    for (what, needle) in &needles {
        assert!(!contains_bytes(&db, needle), "the database file holds the {what} in clear");
        assert!(!contains_bytes(logs.as_bytes(), needle), "the logs hold the {what}");
    }
    // The check can see what it looks for: the account's email is stored in clear.
    assert!(contains_bytes(&db, u.email.as_bytes()));
}

#[tokio::test]
async fn disabling_mfa_needs_the_password_and_a_code() {
    let app = TestApp::spawn().await;
    let alice = mfa_user(&app).await;
    // A stolen session with the code but not the password, or the password but not the code.
    disable(&app, &alice.session, OTHER_STRONG_PASSWORD, &alice.next_code()).await.assert_problem(403);
    disable(&app, &alice.session, STRONG_PASSWORD, &alice.wrong_codes(1)[0]).await.assert_problem(403);
    let body = json!({ "password": STRONG_PASSWORD, "code": alice.next_code() });
    let no_csrf =
        app.request(Method::POST, "/auth/mfa/totp/disable").header("cookie", alice.session.cookie_header()).json(&body);
    TestApp::send(no_csrf).await.assert_problem(403);
    app.post_json("/auth/mfa/totp/disable", &body).await.assert_problem(401);
    assert_eq!(app.get_as("/auth/me", &alice.session).await.json()["mfa_enabled"], json!(true));
    challenge(&app, &alice.email).await;

    // With both (a user untouched by failed attempts, so the code is surely unused): off.
    let bob = mfa_user(&app).await;
    let r = disable(&app, &bob.session, STRONG_PASSWORD, &bob.next_code()).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(app.get_as("/auth/me", &bob.session).await.json()["mfa_enabled"], json!(false));
    let (r, s) = app.login(&bob.email, STRONG_PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(s.is_some());
    assert_eq!(app.audit_count("mfa_disabled").await, 1);
}

#[tokio::test]
async fn mfa_verify_spends_the_login_budget() {
    let app = TestApp::builder().env("RATE_LIMIT__LOGIN_PER_IP_PER_MINUTE", "5").spawn().await;
    // Three login attempts spent here (the registration, the session that enables MFA, and
    // enable's password check) ...
    let u = mfa_user(&app).await;
    let (wrong, right) = (u.wrong_codes(1).remove(0), u.next_code());
    // ... a fourth by the password step, a fifth by one wrong code ...
    let token = challenge(&app, &u.email).await;
    verify(&app, &token, &wrong).await.assert_problem(401);
    // ... and the brute force stops, before the code is even looked at.
    let r = verify(&app, &token, &right).await;
    r.assert_problem(429);
    let retry: u64 = r.header("retry-after").expect("Retry-After").parse().expect("whole seconds");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(r.header("ratelimit-policy"), Some("\"login-ip\";q=5;w=60"));
    // One bucket: a login for any account from this address is refused too.
    let r = app.login(&unique_email(), OTHER_STRONG_PASSWORD).await.0;
    r.assert_problem(429);
    assert_eq!(r.header("ratelimit-policy"), Some("\"login-ip\";q=5;w=60"));
}

#[tokio::test]
async fn failed_codes_lock_the_account() {
    let app = TestApp::builder().env("RATE_LIMIT__LOCKOUT_AFTER_FAILURES", "3").spawn().await;
    let u = mfa_user(&app).await;
    let token = challenge(&app, &u.email).await;
    let wrong = u.wrong_codes(3);
    verify(&app, &token, &wrong[0]).await.assert_problem(401);
    verify(&app, &token, &wrong[1]).await.assert_problem(401);
    let third = verify(&app, &token, &wrong[2]).await;
    assert!(matches!(third.status, 401 | 423), "{}", third.text());
    // Locked: the right code is refused on the still-live challenge, and so is the password.
    assert_locked(&verify(&app, &token, &u.next_code()).await);
    assert_locked(&app.login(&u.email, STRONG_PASSWORD).await.0);
    // An automatic lockout ends no existing login.
    assert_eq!(app.get_as("/auth/me", &u.session).await.status, 200);
}

/// An attacker who has the password could otherwise guess codes forever: a few wrong codes,
/// the password again (which would reset the count), a few more.
#[tokio::test]
async fn the_right_password_does_not_reset_the_code_failures() {
    let app = TestApp::builder().env("RATE_LIMIT__LOCKOUT_AFTER_FAILURES", "3").spawn().await;
    let u = mfa_user(&app).await;
    let wrong = u.wrong_codes(3);
    let first = challenge(&app, &u.email).await;
    verify(&app, &first, &wrong[0]).await.assert_problem(401);
    verify(&app, &first, &wrong[1]).await.assert_problem(401);
    // The password step again: not locked yet (two failures of three).
    let second = challenge(&app, &u.email).await;
    let third = verify(&app, &second, &wrong[2]).await;
    assert!(matches!(third.status, 401 | 423), "{}", third.text());
    assert_locked(&verify(&app, &second, &u.next_code()).await);
}

/// Codes sent together after a lock expires: checked-then-counted, every one was looked at
/// (each challenge allows five); reserved first, the rule's one guess per lock period holds.
#[tokio::test]
async fn a_burst_of_codes_after_the_lock_expires_gets_one_guess() {
    let app = TestApp::builder()
        .env("RATE_LIMIT__LOCKOUT_AFTER_FAILURES", "3")
        .env("RATE_LIMIT__LOCKOUT_DURATION", "2s")
        .spawn()
        .await;
    let u = mfa_user(&app).await;
    // Challenges taken before the lock (the right password does not count as a failure).
    let mut live = Vec::new();
    for _ in 0..3 {
        live.push(challenge(&app, &u.email).await);
    }
    let wrong = u.wrong_codes(10);
    for code in &wrong[..3] {
        let r = verify(&app, &live[0], code).await;
        assert!(matches!(r.status, 401 | 423), "{}", r.text());
    }
    assert_locked(&verify(&app, &live[1], &wrong[3]).await);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    futures_util::future::join_all((0..10).map(|_| app.get("/healthz"))).await;
    let answers =
        futures_util::future::join_all((0..10).map(|i| verify(&app, &live[1 + i % 2], &wrong[i % wrong.len()]))).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 423).count(), 9, "{statuses:?}");
}

/// A stolen session must not turn the current-password check of disable into an unlimited
/// password oracle: wrong passwords count towards the lockout like failed logins.
#[tokio::test]
async fn wrong_passwords_on_disable_count_towards_the_lockout() {
    let app = TestApp::builder().env("RATE_LIMIT__LOCKOUT_AFTER_FAILURES", "3").spawn().await;
    let u = mfa_user(&app).await;
    for _ in 0..3 {
        let r = disable(&app, &u.session, OTHER_STRONG_PASSWORD, &u.next_code()).await;
        r.assert_problem(403);
    }
    assert_locked(&disable(&app, &u.session, STRONG_PASSWORD, &u.next_code()).await);
    assert_locked(&app.login(&u.email, STRONG_PASSWORD).await.0);
}

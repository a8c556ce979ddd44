//! Hostile input on the JSON endpoints: operator objects, SQL injection, oversized and deeply
//! nested bodies, wrong content types, unknown fields, wrong types, broken JSON, weak passwords.
//! Every refusal is a 4xx problem+json (never a 5xx) and leaves the database as it was; every
//! family is paired with the valid request being accepted, so a server refusing everything fails.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::raw_http::raw_big_post;

const SQL_STRINGS: &[&str] = &[
    "' OR '1'='1",
    "'; DROP TABLE users; --",
    "admin'--",
    "\" OR 1=1 --",
    "' UNION SELECT id, password_hash FROM users --",
    "1; DELETE FROM sessions",
];

/// The three JSON endpoints under attack.
#[derive(Clone, Copy, Debug)]
enum Target<'a> {
    Register,
    Login,
    PatchMe(&'a Session),
}

impl Target<'_> {
    fn method(&self) -> Method {
        match self {
            Target::PatchMe(_) => Method::PATCH,
            _ => Method::POST,
        }
    }
    fn path(&self) -> &'static str {
        match self {
            Target::Register => "/auth/register",
            Target::Login => "/auth/login",
            Target::PatchMe(_) => "/auth/me",
        }
    }
    /// Cookie and CSRF header lines for a raw request.
    fn raw_credentials(&self) -> String {
        match self {
            Target::PatchMe(s) => format!("Cookie: {}\r\nX-CSRF-Token: {}\r\n", s.cookie_header(), s.csrf),
            _ => String::new(),
        }
    }
}

fn all(s: &Session) -> [Target<'_>; 3] {
    [Target::Register, Target::Login, Target::PatchMe(s)]
}

/// Sends `body` as is, with the given Content-Type (none when `None`).
async fn send_body(app: &TestApp, target: Target<'_>, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> Resp {
    let mut rb = app.request(target.method(), target.path());
    if let Target::PatchMe(s) = target {
        rb = rb.header("cookie", s.cookie_header()).header("x-csrf-token", &s.csrf);
    }
    if let Some(ct) = content_type {
        rb = rb.header("content-type", ct);
    }
    TestApp::send(rb.body(body.into())).await
}

async fn send_json(app: &TestApp, target: Target<'_>, body: &Value) -> Resp {
    send_body(app, target, Some("application/json"), serde_json::to_vec(body).unwrap()).await
}

/// What the database holds that an attack might change.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    users: i64,
    sessions: i64,
    /// (email, display_name, roles) of every user, in id order.
    rows: Vec<(String, Option<String>, String)>,
}

async fn snapshot(app: &TestApp) -> Snapshot {
    let tables = app.table_names().await;
    let pool = app.db().await;
    for t in ["users", "sessions", "audit_log"] {
        assert!(tables.iter().any(|n| n == t), "table {t} is gone: {tables:?}");
    }
    let rows: Vec<(String, Option<String>, String)> =
        sqlx::query_as("SELECT email, display_name, roles FROM users ORDER BY id").fetch_all(&pool).await.unwrap();
    pool.close().await;
    Snapshot { users: app.count("users").await, sessions: app.count("sessions").await, rows }
}

/// A refusal: this 4xx as problem+json, and no session handed out.
fn assert_refused(r: &Resp, status: u16, what: &str) -> Value {
    assert!((400..500).contains(&r.status), "{what}: expected {status}, got {} {}", r.status, r.text());
    assert_eq!(r.status, status, "{what}: {}", r.text());
    let body = r.assert_problem(status);
    assert!(session_from(r).is_none() && r.header("set-cookie").is_none(), "{what}: a refused request set a cookie");
    body
}

/// A validation refusal naming `field` in `errors[]`.
fn assert_field_error(r: &Resp, field: &str, what: &str) {
    assert_refused(r, 400, what);
    let fields = r.error_fields();
    assert!(fields.iter().any(|f| f == field), "{what}: errors[] should name {field:?}, got {fields:?}: {}", r.text());
}

/// A server with one registered, logged-in user; the email and session.
async fn setup() -> (TestApp, String, Session) {
    let app = TestApp::spawn().await;
    let (email, s) = app.user().await;
    (app, email, s)
}

/// The valid request of each endpoint is accepted (so the refusals above are not blanket ones).
async fn assert_valid_requests_accepted(app: &TestApp, email: &str, s: &Session) {
    let fresh = unique_email();
    let r = send_json(app, Target::Register, &json!({ "email": fresh, "password": STRONG_PASSWORD })).await;
    assert_eq!(r.status, 201, "valid register refused: {}", r.text());
    let r = send_json(app, Target::Login, &json!({ "email": email, "password": STRONG_PASSWORD })).await;
    assert_eq!(r.status, 200, "valid login refused: {}", r.text());
    assert!(session_from(&r).is_some());
    let r = send_json(app, Target::PatchMe(s), &json!({ "display_name": "Valid Name" })).await;
    assert_eq!(r.status, 200, "valid PATCH refused: {}", r.text());
    assert_eq!(r.json()["display_name"], json!("Valid Name"));
}

#[tokio::test]
async fn operator_payloads_are_refused_naming_the_field() {
    let (app, email, s) = setup().await;
    let before = snapshot(&app).await;

    // (target, body, field the refusal must name)
    let fresh = unique_email();
    let cases: Vec<(Target<'_>, Value, &str)> = vec![
        (Target::Register, json!({ "email": { "$ne": null }, "password": { "$ne": null } }), "email"),
        (Target::Register, json!({ "$gt": "" }), "$gt"),
        (Target::Register, json!({ "email": { "$gt": "" }, "password": STRONG_PASSWORD }), "email"),
        (Target::Register, json!({ "email": fresh, "password": { "$ne": null } }), "password"),
        (Target::Login, json!({ "email": { "$ne": null }, "password": { "$ne": null } }), "email"),
        (Target::Login, json!({ "$gt": "" }), "$gt"),
        (Target::Login, json!({ "email": email, "password": { "$ne": null } }), "password"),
        (Target::Login, json!({ "email": email, "password": { "$gt": "" } }), "password"),
        (Target::Login, json!({ "email": { "$regex": ".*" }, "password": STRONG_PASSWORD }), "email"),
        (Target::Login, json!({ "email": email, "password": STRONG_PASSWORD, "$where": "1 == 1" }), "$where"),
        (Target::PatchMe(&s), json!({ "display_name": { "$ne": null } }), "display_name"),
        (Target::PatchMe(&s), json!({ "display_name": { "$set": { "roles": ["admin"] } } }), "display_name"),
        (Target::PatchMe(&s), json!({ "$gt": "" }), "$gt"),
        (Target::PatchMe(&s), json!({ "$set": { "roles": "admin" } }), "$set"),
    ];
    for (target, body, field) in &cases {
        let r = send_json(&app, *target, body).await;
        assert_field_error(&r, field, &format!("{target:?} {body}"));
    }

    assert_eq!(snapshot(&app).await, before);
    let me = app.get_as("/auth/me", &s).await.json();
    assert_eq!(me["roles"], json!(["user"]));
    assert_eq!(me["display_name"], Value::Null);
    assert_valid_requests_accepted(&app, &email, &s).await;
}

#[tokio::test]
async fn sql_injection_strings_are_inert_in_every_field() {
    let (app, email, s) = setup().await;
    let before = snapshot(&app).await;

    for sql in SQL_STRINGS {
        // Not an address: refused as one, naming the field.
        let r = send_json(&app, Target::Register, &json!({ "email": sql, "password": STRONG_PASSWORD })).await;
        assert_field_error(&r, "email", &format!("register email {sql:?}"));

        // Login: as the email, or appended to a real one, or as the password of a real account.
        for e in [sql.to_string(), format!("{email}{sql}")] {
            let r = send_json(&app, Target::Login, &json!({ "email": e, "password": sql })).await;
            assert!(r.status == 400 || r.status == 401, "login email {e:?}: {} {}", r.status, r.text());
            assert_refused(&r, r.status, &format!("login email {e:?}"));
        }
        let r = send_json(&app, Target::Login, &json!({ "email": email, "password": sql })).await;
        let body = assert_refused(&r, 401, &format!("login password {sql:?}"));
        assert_eq!(body["detail"], json!("invalid email or password"));
    }
    assert_eq!(snapshot(&app).await, before, "refused attempts stored something");

    // Register with SQL in the password: either refused by the policy (naming the field), or
    // accepted and then it is just a password: it logs in with itself, not with a tautology.
    for sql in SQL_STRINGS {
        let fresh = unique_email();
        let r = send_json(&app, Target::Register, &json!({ "email": fresh, "password": sql })).await;
        match r.status {
            400 => assert_field_error(&r, "password", &format!("register password {sql:?}")),
            201 => {
                let (ok, _) = app.login(&fresh, sql).await;
                assert_eq!(ok.status, 200, "{}", ok.text());
                // A tautology that is not this password does not log in.
                let (bad, _) = app.login(&fresh, "' OR ''='").await;
                bad.assert_problem(401);
            }
            other => panic!("register password {sql:?}: {other} {}", r.text()),
        }
    }

    // A syntactically valid address full of SQL metacharacters is an ordinary address: stored
    // byte for byte, one row, and logging in needs its own password.
    let users_before = app.count("users").await;
    let sqlish = format!("o'reilly'--{}@example.com", uuid::Uuid::new_v4().simple());
    let r = app.register(&sqlish, STRONG_PASSWORD).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["email"], json!(sqlish));
    assert_eq!(app.count("users").await, users_before + 1);
    let pool = app.db().await;
    let stored: (String,) = sqlx::query_as("SELECT email FROM users WHERE email_normalized = $1")
        .bind(sqlish.to_lowercase())
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(stored.0, sqlish);
    let (r, _) = app.login(&sqlish, "' OR '1'='1").await;
    r.assert_problem(401);
    let (r, _) = app.login(&sqlish, STRONG_PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text());

    // display_name is free text: SQL in it is data, stored and returned verbatim, and touches no
    // other row or table.
    let (_, other) = app.user().await;
    let other_name = "Other User";
    let r = send_json(&app, Target::PatchMe(&other), &json!({ "display_name": other_name })).await;
    assert_eq!(r.status, 200, "{}", r.text());
    for sql in SQL_STRINGS {
        let users_before = app.count("users").await;
        let sessions_before = app.count("sessions").await;
        let r = send_json(&app, Target::PatchMe(&s), &json!({ "display_name": sql })).await;
        assert_eq!(r.status, 200, "display_name {sql:?}: {}", r.text());
        assert_eq!(r.json()["display_name"], json!(sql));
        let me = app.get_as("/auth/me", &s).await.json();
        assert_eq!(me["display_name"], json!(sql));
        assert_eq!(me["roles"], json!(["user"]));
        let them = app.get_as("/auth/me", &other).await.json();
        assert_eq!(them["display_name"], json!(other_name), "after {sql:?}");
        let after = snapshot(&app).await;
        assert_eq!(after.users, users_before, "after {sql:?}");
        assert_eq!(after.sessions, sessions_before, "after {sql:?}");
        assert_eq!(
            after.rows.iter().filter(|r| r.1.as_deref() == Some(*sql)).count(),
            1,
            "only the caller's row holds {sql:?}"
        );
    }
    assert_valid_requests_accepted(&app, &email, &s).await;
}

#[tokio::test]
async fn ten_megabyte_bodies_are_413_with_or_without_content_length() {
    let (app, email, s) = setup().await;
    let before = snapshot(&app).await;
    // Well-formed JSON that, read in full, would be a valid request with a long password or name:
    // only the size limit can answer 413.
    let filler = "x".repeat(10 * 1024 * 1024);
    for target in all(&s) {
        let body = match target {
            Target::PatchMe(_) => json!({ "display_name": filler }),
            Target::Login => json!({ "email": email, "password": filler }),
            Target::Register => json!({ "email": unique_email(), "password": filler }),
        };
        let body = serde_json::to_vec(&body).unwrap();
        assert!(body.len() > 10 * 1024 * 1024);
        for chunked in [false, true] {
            let (addr, extra, path, method, b) =
                (app.addr, target.raw_credentials(), target.path(), target.method(), body.clone());
            let r = tokio::task::spawn_blocking(move || raw_big_post(addr, method.as_str(), path, &extra, b, chunked))
                .await
                .unwrap();
            assert_refused(&r, 413, &format!("{target:?} chunked={chunked}"));
        }
    }
    assert_eq!(snapshot(&app).await, before);
    // Just over the default limit (64 KiB) is enough for 413, and the server is still serving.
    // (On a connection of its own: the server closes it after refusing the unread body.)
    let r = TestApp::send(
        one_shot_client()
            .post(app.url("/auth/login"))
            .json(&json!({ "email": email, "password": "y".repeat(65 * 1024) })),
    )
    .await;
    assert_refused(&r, 413, "65 KiB login");
    assert_valid_requests_accepted(&app, &email, &s).await;
}

/// Refused for its depth (docs/api.md: at most 32), not for whatever type error or parser
/// recursion limit lies behind it.
fn assert_too_deep(r: &Resp, what: &str) {
    let problem = assert_refused(r, 400, what);
    let detail = problem["detail"].as_str().unwrap_or("").to_ascii_lowercase();
    assert!(
        ["deep", "depth", "nest"].iter().any(|w| detail.contains(w)),
        "{what}: the refusal does not say the body is nested too deep: {problem}"
    );
}

#[tokio::test]
async fn deeply_nested_json_is_refused_before_parsing() {
    let (app, email, s) = setup().await;
    let before = snapshot(&app).await;
    let arrays = |depth: usize| "[".repeat(depth) + &"]".repeat(depth);
    for target in all(&s) {
        for depth in [40, 200, 30_000] {
            let body = match target {
                Target::PatchMe(_) => format!(r#"{{"display_name": {}}}"#, arrays(depth)),
                _ => format!(r#"{{"email": {}, "password": "{STRONG_PASSWORD}"}}"#, arrays(depth)),
            };
            assert!(body.len() < 64 * 1024, "stay under the body limit");
            let r = send_body(&app, target, Some("application/json"), body).await;
            assert_too_deep(&r, &format!("{target:?} {depth} deep arrays"));
        }
        // Objects nest as well as arrays.
        let objects = "{\"a\":".repeat(200) + "1" + &"}".repeat(200);
        let r = send_body(&app, target, Some("application/json"), objects).await;
        assert_too_deep(&r, &format!("{target:?} 200 deep objects"));
    }
    assert_eq!(snapshot(&app).await, before);
    // Brackets inside a string are text, not nesting.
    let r = send_json(&app, Target::PatchMe(&s), &json!({ "display_name": "[{".repeat(50) })).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["display_name"], json!("[{".repeat(50)));
    assert_valid_requests_accepted(&app, &email, &s).await;
}

#[tokio::test]
async fn non_json_content_types_are_415() {
    let (app, email, s) = setup().await;
    let before = snapshot(&app).await;
    for target in all(&s) {
        let valid = match target {
            Target::Register => json!({ "email": unique_email(), "password": STRONG_PASSWORD }),
            Target::Login => json!({ "email": email, "password": STRONG_PASSWORD }),
            Target::PatchMe(_) => json!({ "display_name": "x" }),
        };
        let json_text = serde_json::to_vec(&valid).unwrap();
        let form = match target {
            Target::PatchMe(_) => "display_name=x".to_owned(),
            _ => format!(
                "email={}&password={}",
                valid["email"].as_str().unwrap().replace('@', "%40"),
                STRONG_PASSWORD.replace(' ', "+")
            ),
        };
        // A JSON body is refused under any other type: a cross-site form can send text/plain
        // without a preflight.
        for ct in [
            Some("text/plain"),
            Some("text/plain;charset=UTF-8"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=xyz"),
            Some("application/xml"),
            Some("application/jsonx"),
            None,
        ] {
            let r = send_body(&app, target, ct, json_text.clone()).await;
            assert_refused(&r, 415, &format!("{target:?} content-type {ct:?}"));
        }
        let r = send_body(&app, target, Some("application/x-www-form-urlencoded"), form).await;
        assert_refused(&r, 415, &format!("{target:?} real form body"));
        let r = send_body(&app, target, None, Vec::new()).await;
        assert_refused(&r, 415, &format!("{target:?} no type, no body"));
    }
    assert_eq!(snapshot(&app).await, before);
    assert_eq!(app.get_as("/auth/me", &s).await.json()["display_name"], Value::Null);

    // application/json with parameters, in any case, is JSON.
    let fresh = unique_email();
    let r = send_body(
        &app,
        Target::Register,
        Some("application/json; charset=utf-8"),
        serde_json::to_vec(&json!({ "email": fresh, "password": STRONG_PASSWORD })).unwrap(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = send_body(
        &app,
        Target::Login,
        Some("Application/JSON"),
        serde_json::to_vec(&json!({ "email": fresh, "password": STRONG_PASSWORD })).unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_valid_requests_accepted(&app, &email, &s).await;
}

#[tokio::test]
async fn unknown_fields_are_400_naming_the_field() {
    let (app, email, s) = setup().await;
    let before = snapshot(&app).await;
    let fresh = unique_email();
    let cases: Vec<(Target<'_>, Value, &str)> = vec![
        (Target::Register, json!({ "email": fresh, "password": STRONG_PASSWORD, "role": "admin" }), "role"),
        (
            Target::Register,
            json!({ "email": fresh, "password": STRONG_PASSWORD, "email_verified": true }),
            "email_verified",
        ),
        (Target::Register, json!({ "roles": ["admin"], "email": fresh, "password": STRONG_PASSWORD }), "roles"),
        (Target::Login, json!({ "email": email, "password": STRONG_PASSWORD, "remember_me": true }), "remember_me"),
        (Target::Login, json!({ "email": email, "password": STRONG_PASSWORD, "mfa_bypass": "1" }), "mfa_bypass"),
        (Target::PatchMe(&s), json!({ "display_name": "x", "is_admin": true }), "is_admin"),
        (Target::PatchMe(&s), json!({ "display_name": "x", "locked_until": null }), "locked_until"),
        (Target::PatchMe(&s), json!({ "__proto__": { "admin": true } }), "__proto__"),
    ];
    for (target, body, field) in &cases {
        let r = send_json(&app, *target, body).await;
        assert_field_error(&r, field, &format!("{target:?} {body}"));
        assert_eq!(r.error_fields(), vec![field.to_string()], "{}", r.text());
    }
    assert_eq!(snapshot(&app).await, before);
    let me = app.get_as("/auth/me", &s).await.json();
    assert_eq!(me["display_name"], Value::Null, "a refused PATCH applied its valid part");
    assert_eq!(me["roles"], json!(["user"]));
    assert_valid_requests_accepted(&app, &email, &s).await;
}

#[tokio::test]
async fn wrong_json_types_are_400_naming_the_field() {
    let (app, email, s) = setup().await;
    let before = snapshot(&app).await;
    let wrong = [json!(["a@example.com"]), json!(12345), json!(1.5e300), json!(true), Value::Null, json!({})];
    for bad in &wrong {
        let fresh = unique_email();
        let cases: Vec<(Target<'_>, Value, &str)> = vec![
            (Target::Register, json!({ "email": bad, "password": STRONG_PASSWORD }), "email"),
            (Target::Register, json!({ "email": fresh, "password": bad }), "password"),
            (Target::Login, json!({ "email": bad, "password": STRONG_PASSWORD }), "email"),
            (Target::Login, json!({ "email": email, "password": bad }), "password"),
        ];
        for (target, body, field) in &cases {
            let r = send_json(&app, *target, body).await;
            assert_field_error(&r, field, &format!("{target:?} {body}"));
        }
        // null is how a display name is cleared; every other non-string is refused.
        if !bad.is_null() {
            let body = json!({ "display_name": bad });
            let r = send_json(&app, Target::PatchMe(&s), &body).await;
            assert_field_error(&r, "display_name", &format!("PATCH {body}"));
        }
    }
    // Missing required fields name them too.
    let r = send_json(&app, Target::Register, &json!({ "email": unique_email() })).await;
    assert_field_error(&r, "password", "register without password");
    let r = send_json(&app, Target::Login, &json!({ "password": STRONG_PASSWORD })).await;
    assert_field_error(&r, "email", "login without email");
    // A body that is not an object at all (arrays: see the next test).
    for body in ["\"a@example.com\"", "42", "null", "true", "\"\""] {
        for target in all(&s) {
            let r = send_body(&app, target, Some("application/json"), body).await;
            assert_refused(&r, 400, &format!("{target:?} body {body}"));
        }
    }
    assert_eq!(snapshot(&app).await, before);
    assert_eq!(app.get_as("/auth/me", &s).await.json()["display_name"], Value::Null);
    assert_valid_requests_accepted(&app, &email, &s).await;
}

/// A struct is a JSON object with named fields. A positional array in its place
/// (`["a@b.c", "pw"]`) is a wrong type: it must not be read field by field in declaration order,
/// which would let a body without a single field name register, log in or change a profile.
#[tokio::test]
async fn positional_array_bodies_are_refused() {
    let (app, email, s) = setup().await;
    let before = snapshot(&app).await;
    let fresh = unique_email();
    let cases: Vec<(Target<'_>, Value)> = vec![
        (Target::Register, json!([fresh, STRONG_PASSWORD])),
        (Target::Login, json!([email, STRONG_PASSWORD])),
        (Target::PatchMe(&s), json!(["Set By Position"])),
        (Target::Register, json!([])),
        (Target::Login, json!([])),
        (Target::PatchMe(&s), json!([])),
        (Target::PatchMe(&s), json!([null])),
    ];
    for (target, body) in &cases {
        let r = send_json(&app, *target, body).await;
        assert_refused(&r, 400, &format!("{target:?} positional body {body}"));
    }
    assert_eq!(snapshot(&app).await, before, "a positional body was acted on");
    assert_eq!(app.get_as("/auth/me", &s).await.json()["display_name"], Value::Null);
    assert_valid_requests_accepted(&app, &email, &s).await;
}

#[tokio::test]
async fn empty_malformed_and_trailing_garbage_bodies_are_400() {
    let (app, email, s) = setup().await;
    let before = snapshot(&app).await;
    for target in all(&s) {
        let valid = match target {
            Target::Register => {
                format!(r#"{{"email":"{}","password":"{STRONG_PASSWORD}"}}"#, unique_email())
            }
            Target::Login => format!(r#"{{"email":"{email}","password":"{STRONG_PASSWORD}"}}"#),
            Target::PatchMe(_) => r#"{"display_name":"garbage"}"#.to_owned(),
        };
        let bodies: Vec<String> = vec![
            String::new(),
            "   \r\n\t ".to_owned(),
            "{".to_owned(),
            valid[..valid.len() - 1].to_owned(),
            valid.replace(':', "="),
            valid.replacen('"', "'", 2),
            format!("{valid} trailing"),
            format!("{valid}{valid}"),
            format!("{valid},"),
            format!("{valid}]"),
            format!("{valid}\0"),
            format!("[{valid}]"),
            valid.replace('}', ",}"),
            "{\"display_name\": \"\\ud800\"}".to_owned(),
        ];
        for body in &bodies {
            let r = send_body(&app, target, Some("application/json"), body.clone()).await;
            assert_refused(&r, 400, &format!("{target:?} body {body:?}"));
        }
        // Invalid UTF-8 inside a string.
        let mut bytes = valid.clone().into_bytes();
        let quote = bytes.iter().rposition(|&b| b == b'"').unwrap();
        bytes.insert(quote, 0xff);
        let r = send_body(&app, target, Some("application/json"), bytes).await;
        assert_refused(&r, 400, &format!("{target:?} invalid UTF-8"));
        // Duplicate keys: which one wins is parser-dependent, so neither may.
        let dup = match target {
            Target::PatchMe(_) => r#"{"display_name":"a","display_name":"b"}"#.to_owned(),
            _ => valid.replacen("{", &format!(r#"{{"email":"{email}","#), 1),
        };
        let r = send_body(&app, target, Some("application/json"), dup.clone()).await;
        assert_refused(&r, 400, &format!("{target:?} duplicate key {dup}"));
    }
    assert_eq!(snapshot(&app).await, before);
    assert_eq!(app.get_as("/auth/me", &s).await.json()["display_name"], Value::Null);
    assert_valid_requests_accepted(&app, &email, &s).await;
}

#[tokio::test]
async fn password_policy_refusals_say_why() {
    let app = TestApp::spawn().await;
    let before = snapshot(&app).await;
    // A long password that is strong in every respect but length.
    let random = || uuid::Uuid::new_v4().simple().to_string();
    let max_strong = format!("{}{}{}{}", random(), random(), random(), random());
    assert_eq!(max_strong.chars().count(), 128);
    let long_strong = format!("{max_strong}Z");
    // (password, words of which the reason must contain one)
    let cases: Vec<(String, &[&str])> = vec![
        ("Xq7!".to_owned(), &["at least 8", "short"]),
        ("vX9#qL2".to_owned(), &["at least 8", "short"]),
        (long_strong.clone(), &["128", "long"]),
        ("password".to_owned(), &["common"]),
        ("iloveyou".to_owned(), &["common"]),
        ("Password".to_owned(), &["common"]),
        ("qwertyuiop".to_owned(), &["common"]),
        ("aaaaaaaaaaaa".to_owned(), &["guess", "weak", "repeat", "predict", "common"]),
        ("abcdefghijkl".to_owned(), &["guess", "weak", "sequence", "predict", "common"]),
    ];
    for (pw, reasons) in &cases {
        let r = app.register(&unique_email(), pw).await;
        assert_refused(&r, 400, &format!("password {pw:?}"));
        let errors = r.json()["errors"].as_array().cloned().unwrap_or_default();
        assert_eq!(errors.len(), 1, "{pw:?}: {}", r.text());
        assert_eq!(errors[0]["field"], json!("password"), "{}", r.text());
        let message = errors[0]["message"].as_str().unwrap_or("").to_ascii_lowercase();
        assert!(
            reasons.iter().any(|w| message.contains(w)),
            "{pw:?}: the refusal does not say why (expected one of {reasons:?}): {message:?}"
        );
    }
    // A password made of the email is weak, whatever its length.
    let email = unique_email();
    let r = app.register(&email, &format!("{email}1")).await;
    assert_field_error(&r, "password", "password = email");
    assert_eq!(snapshot(&app).await, before, "a refused registration stored a user");

    // Strong ones are accepted, up to exactly 128 characters.
    for pw in [STRONG_PASSWORD, OTHER_STRONG_PASSWORD, max_strong.as_str()] {
        let email = unique_email();
        let r = app.register(&email, pw).await;
        assert_eq!(r.status, 201, "{pw:?} refused: {}", r.text());
        let (r, _) = app.login(&email, pw).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(app.count("users").await, before.users + 3);

    // Login refuses an over-long password before any hashing, and never 5xx.
    let r = app.post_json("/auth/login", &json!({ "email": email, "password": "p".repeat(129) })).await;
    assert_field_error(&r, "password", "login 129-char password");
}

/// A client that never reuses a connection, for requests after which the server may close it.
fn one_shot_client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap()
}

//! List cursors (`/api/{resource}`, `/admin/users`, `/admin/audit`) are sealed with an HMAC under
//! a key derived from the data key, and their values are typed by the sort column's kind: a
//! forged, tampered or borrowed cursor is 400 naming `cursor`, never a 500 (on PostgreSQL a string
//! bound against a BIGINT or BOOLEAN column, or a NUL byte in a text parameter, is a database
//! error) and never a page.
//!
//! To reach the typing behind the seal, the test derives the cursor key itself from the data key
//! it gave the server (HKDF-SHA256, as `rampart_core::cursor` does) and seals wrong-typed values;
//! a correctly typed value sealed the same way is the control that shows the test's seal is right.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::*;
use crate::resources::{RESOURCES, call, user, with_role};

/// 32 bytes, 0 to 31, base64: the data key every server here is given.
const DATA_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const OTHER_DATA_KEY: &str = "HxweHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=";

fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

/// HKDF-SHA256 (RFC 5869) of the data key, one block: the server's cursor key.
fn cursor_key() -> Vec<u8> {
    let ikm = base64::engine::general_purpose::STANDARD.decode(DATA_KEY).unwrap();
    let prk = hmac(b"rampart data-key subkeys v1", &[&ikm]);
    hmac(&prk, &[b"rampart list cursors v1", &[1]])
}

/// A cursor sealed like the server's: base64url(payload) "." base64url(HMAC(context 0 payload)).
fn seal(context: &str, payload: &[u8]) -> String {
    let tag = hmac(&cursor_key(), &[context.as_bytes(), &[0], payload]);
    format!("{}.{}", B64.encode(payload), B64.encode(tag))
}

fn record_cursor(resource: &str, column: &str, v: &Value, id: &Value) -> String {
    seal(&format!("records/{resource}/{column}/asc"), json!({ "v": v, "id": id }).to_string().as_bytes())
}

/// The unauthenticated cursor of earlier versions: base64url of the JSON position.
fn legacy_record_cursor(column: &str, v: &Value, id: &str) -> String {
    B64.encode(json!({ "s": column, "d": false, "v": v, "id": id }).to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 400 naming `cursor`, as problem+json; anything else (a page, a 500) fails with `what`.
fn assert_cursor_refused(r: &Resp, what: &str) {
    assert_eq!(r.status, 400, "{what}: {}", r.text());
    r.assert_problem(400);
    assert_eq!(r.error_fields(), vec!["cursor".to_owned()], "{what}: {}", r.text());
}

/// One character of the cursor changed, at `at` (counted from the end when negative).
fn flipped(c: &str, at: isize) -> String {
    let mut b = c.as_bytes().to_vec();
    let i = if at < 0 { b.len() - at.unsigned_abs() } else { at as usize };
    b[i] = if b[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(b).unwrap()
}

async fn spawn() -> TestApp {
    TestApp::builder().toml(RESOURCES).env("DATA_KEY", DATA_KEY).spawn().await
}

async fn thing(app: &TestApp, who: &TestUser, i: u32) {
    let body = json!({
        "code": format!("AB-{i}"), "count": i, "ratio": f64::from(i) / 10.0, "active": i.is_multiple_of(2),
        "kind": if i.is_multiple_of(2) { "a" } else { "b" }, "due": format!("2030-01-0{}T00:00:00Z", i + 1),
        "ref": uuid::Uuid::new_v4().to_string(),
    });
    let r = call(app, who, Method::POST, "/api/things", Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text());
}

/// Every sortable column of `things` with a value of the right type for its cursor, and values of
/// the wrong types.
fn columns() -> Vec<(&'static str, Value, Vec<Value>)> {
    let uuid = json!(uuid::Uuid::new_v4().to_string());
    let not_integer =
        vec![json!("5"), json!("1970-01-01T00:00:00Z"), json!(true), json!(1.5), json!(1e30), json!(null), json!([1])];
    let not_text = vec![json!(5), json!(true), json!(null), json!({ "a": 1 }), json!("a\u{0}b")];
    let not_uuid = vec![json!("not-a-uuid"), json!(5), json!(null), json!("00000000-0000-4000-8000-00000000000\u{0}")];
    vec![
        ("code", json!("AB-1"), not_text.clone()),
        ("kind", json!("a"), not_text),
        ("count", json!(1), not_integer.clone()),
        ("due", json!(1_893_456_000_000i64), not_integer.clone()),
        ("created_at", json!(0), not_integer),
        ("ratio", json!(0.1), vec![json!("0.5"), json!(true), json!(null), json!("NaN")]),
        ("active", json!(true), vec![json!("true"), json!(1), json!(0), json!(null), json!("\u{0}")]),
        ("ref", uuid.clone(), not_uuid.clone()),
        ("owner_id", uuid.clone(), not_uuid.clone()),
        ("id", uuid, not_uuid),
    ]
}

#[tokio::test]
async fn forged_tampered_and_borrowed_record_cursors_are_400_never_500() {
    let app = spawn().await;
    let alice = user(&app).await;
    for i in 0..3 {
        thing(&app, &alice, i).await;
    }
    let order = json!({ "item": "x", "quantity": 1 });
    for _ in 0..3 {
        assert_eq!(call(&app, &alice, Method::POST, "/api/orders", Some(order.clone())).await.status, 201);
    }
    let list = |path: String| {
        let (app, alice) = (&app, &alice);
        async move { call(app, alice, Method::GET, &path, None).await }
    };
    let id = uuid::Uuid::new_v4().to_string();

    for (column, good, wrong) in columns() {
        let first = list(format!("/api/things?limit=1&sort={column}")).await;
        assert_eq!(first.status, 200, "{column}: {}", first.text());
        let c = first.json()["next_cursor"].as_str().unwrap().to_owned();
        // The control: the cursor the server gave out works, with the sort it was made for.
        let next = list(format!("/api/things?limit=1&sort={column}&cursor={c}")).await;
        assert_eq!(next.status, 200, "{column}: {}", next.text());
        assert_eq!(next.json()["items"].as_array().unwrap().len(), 1);

        // Tampered: one character of the position or of the seal changed.
        for at in [0, 3, -1, -5] {
            let r = list(format!("/api/things?limit=1&sort={column}&cursor={}", flipped(&c, at))).await;
            assert_cursor_refused(&r, &format!("{column}: flipped at {at}"));
        }
        // Borrowed: the same cursor with the opposite direction, another column, another resource.
        let r = list(format!("/api/things?limit=1&sort=-{column}&cursor={c}")).await;
        assert_cursor_refused(&r, &format!("{column}: other direction"));
        let other = if column == "count" { "code" } else { "count" };
        let r = list(format!("/api/things?limit=1&sort={other}&cursor={c}")).await;
        assert_cursor_refused(&r, &format!("{column}: cursor given to sort={other}"));
        if matches!(column, "id" | "created_at") {
            let r = list(format!("/api/orders?limit=1&sort={column}&cursor={c}")).await;
            assert_cursor_refused(&r, &format!("{column}: things cursor given to orders"));
        }

        // Forged in the old, unsealed form, with a value of the wrong type: this is what gave 500s
        // on PostgreSQL (and silently compared a string with a number on SQLite).
        for v in &wrong {
            let forged = legacy_record_cursor(column, v, &id);
            let r = list(format!("/api/things?limit=1&sort={column}&cursor={forged}")).await;
            assert_cursor_refused(&r, &format!("{column}: unsealed cursor with {v}"));
        }

        // Sealed with the real key: a right-typed value pages, every wrong type is refused.
        let sealed = record_cursor("things", column, &good, &json!(id));
        let r = list(format!("/api/things?limit=1&sort={column}&cursor={sealed}")).await;
        assert_eq!(r.status, 200, "{column}: a well-typed sealed cursor is the control: {}", r.text());
        for v in &wrong {
            let forged = record_cursor("things", column, v, &json!(id));
            let r = list(format!("/api/things?limit=1&sort={column}&cursor={forged}")).await;
            assert_cursor_refused(&r, &format!("{column}: sealed cursor with {v}"));
        }
        for bad_id in [json!("x"), json!(5), json!(null), json!(format!("{}\u{0}", &id[..35]))] {
            let forged = record_cursor("things", column, &good, &bad_id);
            let r = list(format!("/api/things?limit=1&sort={column}&cursor={forged}")).await;
            assert_cursor_refused(&r, &format!("{column}: sealed cursor with id {bad_id}"));
        }
    }

    // Sealed payloads that are not positions at all.
    for payload in ["[]", "\"x\"", "{}", "{\"v\": 1}", "not json", "{\"v\":1,\"id\":\"x\",\"extra\":true}"] {
        let forged = seal("records/things/count/asc", payload.as_bytes());
        let r = list(format!("/api/things?limit=1&sort=count&cursor={forged}")).await;
        assert_cursor_refused(&r, &format!("sealed payload {payload}"));
    }
    // Not a cursor at all.
    for raw in ["", ".", "a.b", "%00", "AAAA.AAAA", &"A".repeat(5000), &format!("{}.", B64.encode("{}"))] {
        let r = list(format!("/api/things?limit=1&sort=count&cursor={raw}")).await;
        assert_cursor_refused(&r, &format!("raw cursor {raw:.20}"));
    }
}

#[tokio::test]
async fn forged_tampered_and_borrowed_admin_cursors_are_400_never_500() {
    let app = spawn().await;
    let boss = with_role(&app, "admin").await;
    for _ in 0..2 {
        user(&app).await;
    }
    let get = |path: String| {
        let (app, boss) = (&app, &boss);
        async move { call(app, boss, Method::GET, &path, None).await }
    };
    let users = get("/admin/users?limit=1".into()).await;
    assert_eq!(users.status, 200, "{}", users.text());
    let uc = users.json()["next_cursor"].as_str().unwrap().to_owned();
    let audit = get("/admin/audit?limit=1".into()).await;
    assert_eq!(audit.status, 200, "{}", audit.text());
    let ac = audit.json()["next_cursor"].as_str().unwrap().to_owned();
    // The controls: the cursors given out work, and so does one sealed by the test.
    assert_eq!(get(format!("/admin/users?limit=1&cursor={uc}")).await.status, 200);
    assert_eq!(get(format!("/admin/audit?limit=1&cursor={ac}")).await.status, 200);
    let sealed_users = seal("admin/users", format!("0:{}", uuid::Uuid::new_v4()).as_bytes());
    assert_eq!(get(format!("/admin/users?limit=1&cursor={sealed_users}")).await.status, 200);
    assert_eq!(get(format!("/admin/audit?limit=1&cursor={}", seal("admin/audit", b"5"))).await.status, 200);

    let id = uuid::Uuid::new_v4();
    let mut cases: Vec<(String, String)> = vec![
        ("users cursor given to audit".into(), format!("/admin/audit?cursor={uc}")),
        ("audit cursor given to users".into(), format!("/admin/users?cursor={ac}")),
        // The unsealed hex form of earlier versions, which anyone could write.
        ("unsealed users".into(), format!("/admin/users?cursor={}", hex(format!("users:0:{id}").as_bytes()))),
        ("unsealed audit".into(), format!("/admin/audit?cursor={}", hex(b"audit:5"))),
        ("unsealed with NUL".into(), format!("/admin/users?cursor={}", hex(format!("users:0\0:{id}").as_bytes()))),
    ];
    for at in [0, 3, -1, -5] {
        cases.push((format!("users flipped at {at}"), format!("/admin/users?cursor={}", flipped(&uc, at))));
        cases.push((format!("audit flipped at {at}"), format!("/admin/audit?cursor={}", flipped(&ac, at))));
    }
    // Sealed with the real key, but not a position of that list.
    for p in ["abc:".to_owned() + &id.to_string(), "0:not-a-uuid".into(), format!("0\0:{id}"), format!("1e3:{id}")] {
        cases.push((
            format!("sealed users position {p:?}"),
            format!("/admin/users?cursor={}", seal("admin/users", p.as_bytes())),
        ));
    }
    for p in ["-1", "0", "abc", "5\0", "99999999999999999999", ""] {
        cases.push((
            format!("sealed audit position {p:?}"),
            format!("/admin/audit?cursor={}", seal("admin/audit", p.as_bytes())),
        ));
    }
    for (what, path) in &cases {
        assert_cursor_refused(&get(path.clone()).await, what);
    }
}

#[tokio::test]
async fn a_cursor_works_on_every_instance_that_shares_the_data_key_and_on_no_other() {
    let a = spawn().await;
    let alice = user(&a).await;
    for i in 0..3 {
        thing(&a, &alice, i).await;
    }
    let first = call(&a, &alice, Method::GET, "/api/things?limit=1&sort=count", None).await;
    let c = first.json()["next_cursor"].as_str().unwrap().to_owned();
    let path = format!("/api/things?limit=1&sort=count&cursor={c}");

    // Another instance behind the same load balancer: same database, same data key.
    let b = TestApp::builder().toml(RESOURCES).env("DATA_KEY", DATA_KEY).in_dir(a.dir.clone()).spawn().await;
    let r = call(&b, &alice, Method::GET, &path, None).await;
    assert_eq!(r.status, 200, "a cursor from instance A must work on instance B: {}", r.text());
    assert_eq!(r.json()["items"][0]["count"], json!(1));
    // A server with another data key did not make it and refuses it.
    let other = TestApp::builder().toml(RESOURCES).env("DATA_KEY", OTHER_DATA_KEY).in_dir(a.dir.clone()).spawn().await;
    assert_cursor_refused(&call(&other, &alice, Method::GET, &path, None).await, "cursor under another data key");
}

//! The OpenAPI 3.1 document served at `/openapi.json`: every route of the contract, and for each
//! declared resource its paths with request and response schemas derived from the same compiled
//! declaration that validates requests, so the document and the server cannot drift apart.
//! Errors are documented once as the `default` response: RFC 9457 problem+json.
// The document is built here from `json!` objects this module creates: `Value` indexing only ever
// inserts into those objects (it would panic on a non-object, which this code never indexes), and
// the test of `/openapi.json` renders every route of it.
#![allow(clippy::indexing_slicing)]

use rampart_core::config::Settings;
use rampart_core::config::access::Term;
use rampart_core::resources::{Action, Field, Kind, Resource};
use rampart_store::SignInMethod;
use serde_json::{Map, Value, json};

fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn body(schema: Value) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

fn ok(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn empty(description: &str) -> Value {
    json!({ "description": description })
}

/// An operation. `public`: no credentials needed. `responses` are the success answers; the
/// problem+json `default` covers every error status.
fn op(summary: &str, tag: &str, public: bool, request: Option<Value>, responses: Value, params: Vec<Value>) -> Value {
    let mut o = json!({ "summary": summary, "tags": [tag], "responses": responses });
    o["responses"]["default"] = json!({
        "description": "Error (RFC 9457 problem)",
        "content": { "application/problem+json": { "schema": r("Problem") } }
    });
    if public {
        o["security"] = json!([]);
    }
    if let Some(b) = request {
        o["requestBody"] = b;
    }
    if !params.is_empty() {
        o["parameters"] = Value::Array(params);
    }
    o
}

fn query(name: &str, schema: Value, description: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "schema": schema, "description": description })
}

fn path_id() -> Value {
    json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "string", "format": "uuid" } })
}

/// An email address the server's `Email::parse` accepts. A strict subset of what it accepts (ASCII,
/// at most two dot-separated parts before the @ and three labels after it, lengths bounded so that
/// every match is within the 64/63/253/254 limits): a client that follows the schema is never
/// refused, and scanners that generate from it produce only accepted addresses.
fn email() -> Value {
    const LOCAL: &str = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]";
    const LABEL: &str = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
    json!({
        "type": "string", "minLength": 3, "maxLength": 254,
        "pattern": format!("^{LOCAL}{{1,30}}(?:\\.{LOCAL}{{1,29}})?@(?:{LABEL}\\.){{1,2}}[A-Za-z]{{2,63}}$"),
    })
}

/// A password presented to log in or to confirm: present and within the hashing bound
/// (`password::check_length`).
fn password() -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": 128 })
}

/// A new password: the policy's length bounds. Its strength (zxcvbn, common passwords) cannot be
/// said in JSON Schema; a weak one is a 400 with the reason.
fn new_password() -> Value {
    json!({ "type": "string", "minLength": 8, "maxLength": 128,
        "description": "8 to 128 characters; also refused (400) when common or too easy to guess" })
}

/// A TOTP or recovery code.
fn code() -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": 64 })
}

fn object(props: Value, required: &[&str]) -> Value {
    json!({ "type": "object", "properties": props, "required": required, "additionalProperties": false })
}

pub fn document(settings: &Settings) -> Value {
    let mut paths = Map::new();
    let mut schemas = base_schemas();
    core_paths(&mut paths);
    admin_paths(&mut paths);
    api_key_paths(settings, &mut paths, &mut schemas);
    for res in settings.resources.0.values() {
        resource_paths(res, &mut paths, &mut schemas);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Rampart",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Identity, access control and a hardened JSON API over declared resources."
        },
        "servers": [{ "url": settings.server.public_url }],
        "security": [{ "bearerAuth": [] }, { "cookieAuth": [] }],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": "An access token (JWT), or an API key (rpk_...) on /api and GET /auth/me only" },
                "cookieAuth": { "type": "apiKey", "in": "cookie", "name": "__Host-rampart_session",
                    "description": "Browser session; unsafe methods also need the X-CSRF-Token header." }
            }
        }
    })
}

fn base_schemas() -> Map<String, Value> {
    let ts = json!({ "type": "string", "format": "date-time" });
    let uuid = json!({ "type": "string", "format": "uuid" });
    let nullable_str = json!({ "type": ["string", "null"] });
    // An `enum` restricts every value, so a nullable one lists `null` too.
    let mut sign_in_methods: Vec<Value> = SignInMethod::ALL.iter().map(|m| json!(m.as_str())).collect();
    sign_in_methods.push(Value::Null);
    let user_props = json!({
        "id": uuid, "email": { "type": "string" }, "display_name": nullable_str,
        "email_verified": { "type": "boolean" }, "roles": { "type": "array", "items": { "type": "string" } },
        "mfa_enabled": { "type": "boolean" }, "created_at": ts,
    });
    let user_required = ["id", "email", "display_name", "email_verified", "roles", "mfa_enabled", "created_at"];
    let mut admin_props = user_props.clone();
    admin_props["locked_until"] = json!({ "type": ["string", "null"], "format": "date-time" });
    admin_props["failed_logins"] = json!({ "type": "integer" });
    admin_props["kind"] = json!({ "type": "string", "enum": ["person", "service"] });
    let mut admin_required = user_required.to_vec();
    admin_required.extend(["locked_until", "failed_logins", "kind"]);
    let page = |item: Value| {
        object(
            json!({ "items": { "type": "array", "items": item }, "next_cursor": nullable_str }),
            &["items", "next_cursor"],
        )
    };
    let mut m = Map::new();
    m.insert(
        "Problem".into(),
        json!({
            "type": "object",
            "required": ["title", "status"],
            "properties": {
                "type": { "type": "string" }, "title": { "type": "string" }, "status": { "type": "integer" },
                "detail": { "type": "string" }, "request_id": { "type": "string" }, "mfa_token": { "type": "string" },
                "errors": { "type": "array", "items": object(
                    json!({ "field": { "type": "string" }, "message": { "type": "string" } }), &["field", "message"]) }
            }
        }),
    );
    m.insert(
        "NewAccount".into(),
        object(json!({ "email": email(), "password": new_password() }), &["email", "password"]),
    );
    m.insert("User".into(), object(user_props, &user_required));
    m.insert("AdminUser".into(), object(admin_props, &admin_required));
    m.insert("AdminUserPage".into(), page(r("AdminUser")));
    m.insert(
        "AuditEvent".into(),
        object(
            json!({
                "id": { "type": "string" }, "at": ts, "action": { "type": "string" },
                "actor_id": nullable_str, "target": nullable_str, "ip": nullable_str,
                "request_id": nullable_str, "outcome": { "type": "string" },
                "count": { "type": "integer", "minimum": 1 },
                "method": { "type": ["string", "null"], "enum": sign_in_methods,
                    "description": "How a login was made, on login_success events; null on every other event" },
            }),
            &["id", "at", "action", "actor_id", "target", "ip", "request_id", "outcome", "count", "method"],
        ),
    );
    m.insert("AuditPage".into(), page(r("AuditEvent")));
    m.insert(
        "TokenResponse".into(),
        object(
            json!({ "access_token": { "type": "string" }, "token_type": { "const": "Bearer" },
                    "expires_in": { "type": "integer" }, "refresh_token": { "type": "string" } }),
            &["access_token", "token_type", "expires_in", "refresh_token"],
        ),
    );
    let passkey_props = json!({ "id": uuid, "name": { "type": "string" }, "created_at": ts,
        "last_used_at": { "type": ["string", "null"], "format": "date-time" }, "backed_up": { "type": "boolean" } });
    let passkey_required = ["id", "name", "created_at", "last_used_at", "backed_up"];
    m.insert("Passkey".into(), object(passkey_props.clone(), &passkey_required));
    // The 201 of register/finish: the passkey, and the recovery codes issued with a first second
    // factor (always present: null when the user already held unused ones).
    let mut added_props = passkey_props;
    if let Some(props) = added_props.as_object_mut() {
        props.insert(
            "recovery_codes".into(),
            json!({ "type": ["array", "null"], "items": { "type": "string" }, "minItems": 10, "maxItems": 10,
                "description": "Shown this once; null when the user already held unused recovery codes" }),
        );
    }
    m.insert("AddedPasskey".into(), object(added_props, &[&passkey_required[..], &["recovery_codes"]].concat()));
    // base64url without padding, canonical: no length that leaves one character over, and the
    // unused low bits of the last character zero (webauthn-rs decodes strictly).
    let b64 = json!({ "type": "string",
        "pattern": "^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-][AQgw]|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048])?$" });
    m.insert(
        "RegistrationResponseJSON".into(),
        json!({ "type": "object", "required": ["id", "rawId", "type", "response"],
        "properties": { "id": b64, "rawId": b64, "type": { "const": "public-key" },
            "response": { "type": "object", "required": ["attestationObject", "clientDataJSON"],
                "properties": { "attestationObject": b64, "clientDataJSON": b64 } } } }),
    );
    m.insert(
        "AuthenticationResponseJSON".into(),
        json!({ "type": "object", "required": ["id", "rawId", "type", "response"],
        "properties": { "id": b64, "rawId": b64, "type": { "const": "public-key" },
            "response": { "type": "object", "required": ["authenticatorData", "clientDataJSON", "signature"],
                "properties": { "authenticatorData": b64, "clientDataJSON": b64, "signature": b64,
                    "userHandle": { "type": ["string", "null"], "pattern": b64["pattern"] } } } } }),
    );
    m.insert("Credentials".into(), object(json!({ "email": email(), "password": password() }), &["email", "password"]));
    m
}

fn core_paths(p: &mut Map<String, Value>) {
    let status = object(json!({ "status": { "type": "string" } }), &["status"]);
    p.insert(
        "/healthz".into(),
        json!({ "get": op("Liveness", "health", true, None, json!({ "200": ok("Alive", status.clone()) }), vec![]) }),
    );
    p.insert("/readyz".into(), json!({ "get": op("Readiness: the database answers", "health", true, None,
        json!({ "200": ok("Ready", json!({ "type": "object", "required": ["status"], "properties": { "status": { "type": "string" }, "checks": { "type": "object" } } })) }), vec![]) }));
    p.insert("/openapi.json".into(), json!({ "get": op("This document", "meta", true, None, json!({ "200": ok("OpenAPI 3.1", json!({ "type": "object" })) }), vec![]) }));
    p.insert("/.well-known/jwks.json".into(), json!({ "get": op("Public keys that verify access tokens (RFC 7517)", "auth", true, None,
        json!({ "200": ok("JWKS", json!({ "type": "object", "required": ["keys"], "properties": { "keys": { "type": "array", "items": { "type": "object" } } } })) }), vec![]) }));
    let register_201 = object(
        json!({ "id": { "type": "string", "format": "uuid" }, "email": { "type": "string" }, "email_verified": { "type": "boolean" }, "created_at": { "type": "string", "format": "date-time" } }),
        &["id", "email", "email_verified", "created_at"],
    );
    p.insert("/auth/register".into(), json!({ "post": op("Create an account", "auth", true, Some(body(r("NewAccount"))),
        json!({ "201": ok("Created", register_201), "202": ok("Verification sent (when email verification is required)", status) }), vec![]) }));
    let login = object(
        json!({ "user": r("User"), "csrf_token": { "type": "string" }, "passkey_enrollment_required": { "type": "boolean" } }),
        &["user", "csrf_token"],
    );
    p.insert(
        "/auth/login".into(),
        json!({ "post": op("Log in: sets the session cookie", "auth", true, Some(body(r("Credentials"))),
        json!({ "200": ok("Logged in", login) }), vec![]) }),
    );
    // One body per grant: each carries exactly its own fields (the other grant's are a 400).
    let token_req = json!({ "oneOf": [
        object(json!({ "grant_type": { "const": "password" }, "email": email(), "password": password() }),
            &["grant_type", "email", "password"]),
        object(json!({ "grant_type": { "const": "refresh_token" }, "refresh_token": { "type": "string", "minLength": 1 } }),
            &["grant_type", "refresh_token"]),
    ] });
    p.insert(
        "/auth/token".into(),
        json!({ "post": op("Token grant (password or refresh_token)", "auth", true, Some(body(token_req)),
        json!({ "200": ok("Tokens", r("TokenResponse")) }), vec![]) }),
    );
    p.insert("/auth/revoke".into(), json!({ "post": op("Revoke a refresh token's login (RFC 7009)", "auth", true,
        Some(body(object(json!({ "refresh_token": { "type": "string" }, "token_type_hint": { "type": "string" } }), &["refresh_token"]))),
        json!({ "204": empty("Revoked (or nothing to revoke)") }), vec![]) }));
    p.insert("/auth/logout".into(), json!({ "post": op("End the current login", "auth", false, None, json!({ "204": empty("Logged out") }), vec![]) }));
    // Cookie sessions only: a bearer request needs no CSRF token and is answered 400.
    let mut csrf = op(
        "CSRF token of the cookie session",
        "auth",
        false,
        None,
        json!({ "200": ok("Token", object(json!({ "csrf_token": { "type": "string" } }), &["csrf_token"])) }),
        vec![],
    );
    csrf["security"] = json!([{ "cookieAuth": [] }]);
    p.insert("/auth/csrf".into(), json!({ "get": csrf }));
    p.insert(
        "/auth/me".into(),
        json!({
            "get": op("The caller", "auth", false, None, json!({ "200": ok("The caller", r("User")) }), vec![]),
            "patch": op("Change the caller's display name", "auth", false,
                Some(body(json!({ "type": "object", "additionalProperties": false,
                    "properties": { "display_name": { "type": ["string", "null"], "maxLength": 100 } } }))),
                json!({ "200": ok("Updated", r("User")) }), vec![]),
        }),
    );
    account_paths(p);
    passkey_paths(p);
}

/// Passkeys (WebAuthn). The options are the WebAuthn JSON forms that
/// `PublicKeyCredential.parseCreationOptionsFromJSON` / `parseRequestOptionsFromJSON` read, and
/// the credentials what `PublicKeyCredential.toJSON()` gives (binary fields base64url).
fn passkey_paths(p: &mut Map<String, Value>) {
    let name = json!({ "type": "string", "minLength": 1, "maxLength": 64 });
    let optional_name = json!({ "type": ["string", "null"], "minLength": 1, "maxLength": 64 });
    let challenge_id = json!({ "type": "string", "minLength": 1 });
    let started = |what: &str| {
        ok(
            what,
            object(
                json!({ "challenge_id": { "type": "string" }, "options": { "type": "object" } }),
                &["challenge_id", "options"],
            ),
        )
    };
    let login = object(
        json!({ "user": r("User"), "csrf_token": { "type": "string" }, "passkey_enrollment_required": { "type": "boolean" } }),
        &["user", "csrf_token"],
    );
    p.insert(
        "/auth/passkeys/register/start".into(),
        json!({ "post": op(
        "Start adding a passkey: PublicKeyCredentialCreationOptionsJSON", "passkeys", false,
        Some(body(object(json!({ "name": optional_name }), &[]))),
        json!({ "200": started("The ceremony") }), vec![]) }),
    );
    p.insert("/auth/passkeys/register/finish".into(), json!({ "post": op(
        "Finish adding a passkey with the authenticator's RegistrationResponseJSON", "passkeys", false,
        Some(body(object(json!({ "challenge_id": challenge_id, "credential": r("RegistrationResponseJSON"), "name": optional_name }),
            &["challenge_id", "credential"]))),
        json!({ "201": ok("The new passkey, with recovery codes when it is the first second factor", r("AddedPasskey")) }), vec![]) }));
    p.insert(
        "/auth/passkeys/login/start".into(),
        json!({ "post": op(
        "Start a passkey sign-in (discoverable: no email): PublicKeyCredentialRequestOptionsJSON", "passkeys", true,
        Some(body(object(json!({}), &[]))),
        json!({ "200": started("The ceremony") }), vec![]) }),
    );
    p.insert(
        "/auth/passkeys/login/finish".into(),
        json!({ "post": op(
        "Finish a passkey sign-in: a session (as POST /auth/login) or tokens (as the password grant)", "passkeys", true,
        Some(body(object(json!({ "challenge_id": challenge_id, "credential": r("AuthenticationResponseJSON"),
            "grant": { "enum": ["session", "token"] } }), &["challenge_id", "credential"]))),
        json!({ "200": ok("Signed in", json!({ "oneOf": [login, r("TokenResponse")] })) }), vec![]) }),
    );
    p.insert(
        "/auth/mfa/passkey/start".into(),
        json!({ "post": op(
        "Start answering a 401 mfa-required with a passkey", "mfa", true,
        Some(body(object(json!({ "mfa_token": { "type": "string", "minLength": 1 } }), &["mfa_token"]))),
        json!({ "200": started("The ceremony") }), vec![]) }),
    );
    p.insert(
        "/auth/passkeys".into(),
        json!({ "get": op("The caller's passkeys", "passkeys", false, None,
        json!({ "200": ok("Passkeys, oldest first", json!({ "type": "array", "items": r("Passkey") })) }), vec![]) }),
    );
    p.insert("/auth/passkeys/{id}".into(), json!({
        "patch": op("Rename one of the caller's passkeys", "passkeys", false,
            Some(body(object(json!({ "name": name }), &["name"]))),
            json!({ "200": ok("Renamed", r("Passkey")) }), vec![path_id()]),
        "delete": op("Remove one of the caller's passkeys (needs a sign-in within auth.reauth_window)", "passkeys", false,
            None, json!({ "204": empty("Removed") }), vec![path_id()]),
    }));
}

/// Second factor, password recovery, email verification, sessions.
fn account_paths(p: &mut Map<String, Value>) {
    let s = json!({ "type": "string" });
    let status = object(json!({ "status": { "type": "string" } }), &["status"]);
    let login = object(
        json!({ "user": r("User"), "csrf_token": s, "passkey_enrollment_required": { "type": "boolean" } }),
        &["user", "csrf_token"],
    );
    p.insert("/auth/mfa/verify".into(), json!({ "post": op(
        "Complete a login or token grant that answered 401 mfa-required", "mfa", true,
        Some(body(json!({ "oneOf": [
            object(json!({ "mfa_token": { "type": "string", "minLength": 1 }, "code": code() }), &["mfa_token", "code"]),
            object(json!({ "mfa_token": { "type": "string", "minLength": 1 }, "passkey": object(json!({
                "challenge_id": { "type": "string", "minLength": 1 }, "credential": r("AuthenticationResponseJSON") }),
                &["challenge_id", "credential"]) }), &["mfa_token", "passkey"]),
        ] }))),
        json!({ "200": ok("The answer the login (session cookie) or token grant would have given",
            json!({ "oneOf": [login, r("TokenResponse")] })) }), vec![]) }));
    p.insert("/auth/mfa/totp/setup".into(), json!({ "post": op("Start TOTP enrolment: a new secret", "mfa", false, None,
        json!({ "200": ok("Secret, otpauth URI and QR code (SVG)",
            object(json!({ "secret": s, "otpauth_uri": s, "qr_svg": s }), &["secret", "otpauth_uri", "qr_svg"])) }), vec![]) }));
    p.insert(
        "/auth/mfa/totp/enable".into(),
        json!({ "post": op("Confirm TOTP with a code and the current password; returns recovery codes once", "mfa", false,
        Some(body(object(json!({ "code": code(), "password": password() }), &["code", "password"]))),
        json!({ "200": ok("Recovery codes", object(json!({ "recovery_codes":
            { "type": "array", "items": s, "minItems": 10, "maxItems": 10 } }), &["recovery_codes"])) }), vec![]) }),
    );
    p.insert(
        "/auth/mfa/totp/disable".into(),
        json!({ "post": op("Remove TOTP (needs the password and a code)", "mfa", false,
        Some(body(object(json!({ "password": password(), "code": code() }), &["password", "code"]))),
        json!({ "204": empty("Disabled") }), vec![]) }),
    );
    p.insert(
        "/auth/password/change".into(),
        json!({ "post": op("Change the password; ends every other login", "password", false,
        Some(body(object(json!({ "current_password": password(), "new_password": new_password() }), &["current_password", "new_password"]))),
        json!({ "204": empty("Changed") }), vec![]) }),
    );
    p.insert(
        "/auth/password/forgot".into(),
        json!({ "post": op("Mail a reset link (same answer for every address)", "password", true,
        Some(body(object(json!({ "email": email() }), &["email"]))),
        json!({ "202": ok("Accepted", status) }), vec![]) }),
    );
    p.insert(
        "/auth/password/reset".into(),
        json!({ "post": op("Set a new password with a mailed token; ends every login", "password", true,
        Some(body(object(json!({ "token": { "type": "string", "minLength": 1 }, "new_password": new_password() }), &["token", "new_password"]))),
        json!({ "204": empty("Reset") }), vec![]) }),
    );
    p.insert(
        "/auth/email/verify".into(),
        json!({ "post": op("Verify the email address with a mailed token", "auth", true,
        Some(body(object(json!({ "token": { "type": "string", "minLength": 1 } }), &["token"]))),
        json!({ "204": empty("Verified") }), vec![]) }),
    );
    let session = object(
        json!({ "id": { "type": "string", "format": "uuid" }, "created_at": { "type": "string", "format": "date-time" },
                "last_seen_at": { "type": "string", "format": "date-time" }, "ip": { "type": ["string", "null"] },
                "user_agent": { "type": ["string", "null"] }, "current": { "type": "boolean" } }),
        &["id", "created_at", "last_seen_at", "ip", "user_agent", "current"],
    );
    p.insert(
        "/auth/sessions".into(),
        json!({ "get": op("The caller's live logins", "auth", false, None,
        json!({ "200": ok("Sessions, newest first", json!({ "type": "array", "items": session })) }), vec![]) }),
    );
    p.insert(
        "/auth/sessions/{id}".into(),
        json!({ "delete": op("End one of the caller's logins", "auth", false, None,
        json!({ "204": empty("Ended") }), vec![path_id()]) }),
    );
}

fn admin_paths(p: &mut Map<String, Value>) {
    let limit = query("limit", json!({ "type": "integer", "minimum": 1, "maximum": 100 }), "Page size");
    let cursor = query("cursor", json!({ "type": "string" }), "next_cursor of the previous page");
    p.insert(
        "/admin/users".into(),
        json!({ "get": op("List users (admin)", "admin", false, None,
        json!({ "200": ok("A page of users", r("AdminUserPage")) }),
        vec![limit.clone(), cursor.clone(), query("email", json!({ "type": "string" }), "Exact email")]) }),
    );
    p.insert("/admin/users/{id}".into(), json!({
        "get": op("A user (admin)", "admin", false, None, json!({ "200": ok("The user", r("AdminUser")) }), vec![path_id()]),
        "patch": op("Change roles or lock state (admin)", "admin", false,
            Some(body(json!({ "type": "object", "additionalProperties": false, "properties": {
                "roles": { "type": "array", "items": { "type": "string" }, "minItems": 1 }, "locked": { "type": "boolean" } } }))),
            json!({ "200": ok("Updated", r("AdminUser")) }), vec![path_id()]),
        "delete": op("Delete a user (admin)", "admin", false, None, json!({ "204": empty("Deleted") }), vec![path_id()]),
    }));
    p.insert(
        "/admin/users/{id}/mfa/reset".into(),
        json!({ "post": op("Remove every second factor of a user (admin; not oneself)", "admin", false, None,
        json!({ "204": empty("Reset") }), vec![path_id()]) }),
    );
    p.insert(
        "/admin/users/{id}/sessions".into(),
        json!({ "delete": op("End every session and token login of a user (admin)", "admin", false, None,
        json!({ "204": empty("Ended") }), vec![path_id()]) }),
    );
    p.insert(
        "/admin/audit".into(),
        json!({ "get": op("Audit events, newest first (admin)", "admin", false, None,
        json!({ "200": ok("A page of events", r("AuditPage")) }),
        vec![limit, cursor, query("actor", json!({ "type": "string", "format": "uuid" }), "Actor id"),
             query("action", json!({ "type": "string" }), "Action name")]) }),
    );
}

/// API keys (`/auth/api-keys`) and the admin routes for service accounts and keys.
fn api_key_paths(settings: &Settings, p: &mut Map<String, Value>, schemas: &mut Map<String, Value>) {
    let ts = json!({ "type": "string", "format": "date-time" });
    let nullable_ts = json!({ "type": ["string", "null"], "format": "date-time" });
    let roles = json!({ "type": "array", "items": { "type": "string" } });
    let resources: Vec<&str> = settings.resources.0.values().map(|r| r.name.as_str()).collect();
    let scope = object(
        json!({ "resource": { "type": "string", "enum": resources },
                "actions": { "type": "array", "minItems": 1,
                    "items": { "type": "string", "enum": ["list", "read", "create", "update", "delete"] } } }),
        &["resource", "actions"],
    );
    let scopes = json!({ "type": ["array", "null"], "items": scope,
        "description": "null: not narrowed (every resource and verb its roles allow)" });
    let max_days = settings.auth.api_keys.max_ttl.as_secs() / 86_400;
    schemas.insert(
        "ApiKeyCreate".into(),
        object(
            json!({
                "name": { "type": "string", "minLength": 1, "maxLength": 100 },
                "expires_in_days": { "type": "integer", "minimum": 1, "maximum": max_days, "default": 90_u64.min(max_days) },
                "roles": { "type": "array", "items": { "type": "string" }, "minItems": 1,
                    "description": "A subset of the owner's roles (default: all of them, as they are now)" },
                "scopes": { "type": "array", "items": scope },
            }),
            &["name"],
        ),
    );
    let id = json!({ "type": "string", "format": "uuid" });
    let prefix = json!({ "type": "string", "pattern": "^rpk_[0-9a-f]{8}$" });
    schemas.insert(
        "ApiKeyIssued".into(),
        object(
            json!({ "id": id, "name": { "type": "string" },
                    "key": { "type": "string", "pattern": "^rpk_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$",
                        "description": "Shown this once; only its hash is stored" },
                    "prefix": prefix, "roles": roles, "scopes": scopes, "expires_at": ts, "created_at": ts }),
            &["id", "name", "key", "prefix", "roles", "scopes", "expires_at", "created_at"],
        ),
    );
    let info_props = json!({ "id": id, "name": { "type": "string" }, "prefix": prefix, "roles": roles,
        "scopes": scopes, "expires_at": ts, "created_at": ts, "last_used_at": nullable_ts,
        "last_used_ip": { "type": ["string", "null"] } });
    let info_required =
        ["id", "name", "prefix", "roles", "scopes", "expires_at", "created_at", "last_used_at", "last_used_ip"];
    schemas.insert("ApiKey".into(), object(info_props.clone(), &info_required));
    let mut admin_props = info_props;
    admin_props["user_id"] = id.clone();
    let mut admin_required = info_required.to_vec();
    admin_required.push("user_id");
    schemas.insert(
        "AdminApiKeyPage".into(),
        object(
            json!({ "items": { "type": "array", "items": object(admin_props, &admin_required) },
                    "next_cursor": { "type": ["string", "null"] } }),
            &["items", "next_cursor"],
        ),
    );
    p.insert(
        "/auth/api-keys".into(),
        json!({
            "get": op("The caller's API keys (never a secret)", "api-keys", false, None,
                json!({ "200": ok("Keys, newest first", json!({ "type": "array", "items": r("ApiKey") })) }), vec![]),
            "post": op("Create an API key owned by the caller, narrowed to a subset of the caller's rights", "api-keys", false,
                Some(body(r("ApiKeyCreate"))), json!({ "201": ok("The key, shown once", r("ApiKeyIssued")) }), vec![]),
        }),
    );
    p.insert(
        "/auth/api-keys/{id}".into(),
        json!({ "delete": op("Revoke one of the caller's API keys, at once", "api-keys", false, None,
        json!({ "204": empty("Revoked") }), vec![path_id()]) }),
    );
    p.insert(
        "/auth/api-keys/{id}/rotate".into(),
        json!({ "post": op("A new secret for one of the caller's keys; the old one works for grace_hours", "api-keys", false,
        Some(body(object(json!({ "grace_hours": { "type": "integer", "minimum": 0, "maximum": 24, "default": 0 } }), &[]))),
        json!({ "200": ok("The key, shown once", r("ApiKeyIssued")) }), vec![path_id()]) }),
    );
    p.insert(
        "/admin/service-accounts".into(),
        json!({ "post": op("Create a service account: no password, never signs in, acts through API keys (admin)", "admin", false,
        Some(body(object(json!({ "name": { "type": "string", "minLength": 1, "maxLength": 100 },
            "roles": { "type": "array", "items": { "type": "string" }, "minItems": 1 } }), &["name", "roles"]))),
        json!({ "201": ok("The account", r("AdminUser")) }), vec![]) }),
    );
    p.insert(
        "/admin/users/{id}/api-keys".into(),
        json!({ "post": op("Create an API key for a service account (admin)", "admin", false,
        Some(body(r("ApiKeyCreate"))), json!({ "201": ok("The key, shown once", r("ApiKeyIssued")) }), vec![path_id()]) }),
    );
    p.insert(
        "/admin/api-keys".into(),
        json!({ "get": op("Every API key's metadata, never a secret (admin)", "admin", false, None,
        json!({ "200": ok("A page of keys", r("AdminApiKeyPage")) }),
        vec![query("limit", json!({ "type": "integer", "minimum": 1, "maximum": 100 }), "Page size"),
             query("cursor", json!({ "type": "string" }), "next_cursor of the previous page"),
             query("user", json!({ "type": "string", "format": "uuid" }), "Only this user's keys")]) }),
    );
}

fn field_schema(f: &Field) -> Value {
    let mut s = match &f.kind {
        Kind::String { min_len, max_len, pattern } => {
            let mut s = json!({ "type": "string" });
            if let Some(n) = min_len {
                s["minLength"] = json!(n);
            }
            if let Some(n) = max_len {
                s["maxLength"] = json!(n);
            }
            if let Some((src, _)) = pattern {
                s["pattern"] = json!(format!("^(?:{src})$"));
            }
            s
        }
        Kind::Integer { min, max } => bounds(json!({ "type": "integer", "format": "int64" }), *min, *max),
        Kind::Number { min, max } => bounds(json!({ "type": "number" }), *min, *max),
        Kind::Boolean => json!({ "type": "boolean" }),
        Kind::Enum(values) => json!({ "type": "string", "enum": values }),
        Kind::Timestamp => json!({ "type": "string", "format": "date-time" }),
        Kind::Uuid => json!({ "type": "string", "format": "uuid" }),
    };
    if f.optional {
        // 3.1: nullable is a type union.
        let t = s["type"].clone();
        s["type"] = json!([t, "null"]);
        if let Some(e) = s.get_mut("enum").and_then(Value::as_array_mut) {
            e.push(Value::Null);
        }
    }
    s
}

fn bounds(mut s: Value, min: Option<f64>, max: Option<f64>) -> Value {
    let num = |x: f64| if x.fract() == 0.0 && x.abs() < 9.0e15 { json!(x as i64) } else { json!(x) };
    if let Some(m) = min {
        s["minimum"] = num(m);
    }
    if let Some(m) = max {
        s["maximum"] = num(m);
    }
    s
}

fn resource_paths(res: &Resource, p: &mut Map<String, Value>, schemas: &mut Map<String, Value>) {
    let title: String = res
        .name
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_uppercase().chain(c).collect::<String>()).unwrap_or_default()
        })
        .collect();
    let (record, create, update, page) =
        (title.clone(), format!("{title}Create"), format!("{title}Update"), format!("{title}Page"));
    let ts = json!({ "type": "string", "format": "date-time" });
    let uuid = json!({ "type": "string", "format": "uuid" });

    // Out: fields restricted by a read rule may be absent, so they are never required.
    let mut out_props = Map::new();
    let mut out_required = vec!["id".to_owned(), "created_at".to_owned(), "updated_at".to_owned()];
    out_props.insert("id".into(), uuid.clone());
    if let Some(o) = &res.owner {
        out_props.insert(o.clone(), uuid.clone());
        out_required.push(o.clone());
    }
    for f in &res.fields {
        out_props.insert(f.name.clone(), field_schema(f));
        if f.read.is_none() {
            out_required.push(f.name.clone());
        }
    }
    out_props.insert("created_at".into(), ts.clone());
    out_props.insert("updated_at".into(), ts.clone());
    schemas.insert(
        record.clone(),
        json!({ "type": "object", "properties": out_props, "required": out_required, "additionalProperties": false }),
    );

    // In: declared fields only; server fields and the owner are not accepted. A field with its own
    // write rule (`write = "role:admin"`) is left out: the document is the same for every caller,
    // and most callers get a 400 for it; the operation's description names it and its rule.
    let writable = || res.fields.iter().filter(|f| f.write.is_none());
    let in_props: Map<String, Value> = writable().map(|f| (f.name.clone(), field_schema(f))).collect();
    let create_required: Vec<&str> =
        writable().filter(|f| !f.optional && f.default.is_none()).map(|f| f.name.as_str()).collect();
    let restricted: Vec<String> = res
        .fields
        .iter()
        .filter_map(|f| {
            f.write.as_ref().map(|w| format!("`{}` (roles: {})", f.name, w.roles().collect::<Vec<_>>().join(", ")))
        })
        .collect();
    schemas.insert(
        create.clone(),
        json!({ "type": "object", "properties": in_props, "required": create_required, "additionalProperties": false }),
    );
    schemas.insert(
        update.clone(),
        json!({ "type": "object", "properties": in_props, "minProperties": 1, "additionalProperties": false }),
    );
    schemas.insert(
        page.clone(),
        object(
            json!({ "items": { "type": "array", "items": r(&record) }, "next_cursor": { "type": ["string", "null"] } }),
            &["items", "next_cursor"],
        ),
    );

    let mut sortable: Vec<String> = vec!["created_at".into(), "updated_at".into(), "id".into()];
    sortable.extend(res.owner.clone());
    sortable.extend(res.fields.iter().filter(|f| !f.optional && f.read.is_none()).map(|f| f.name.clone()));
    let sort_values: Vec<String> = sortable.iter().flat_map(|s| [s.clone(), format!("-{s}")]).collect();
    let mut params = vec![
        query("limit", json!({ "type": "integer", "minimum": 1, "maximum": 100, "default": 50 }), "Page size"),
        query("cursor", json!({ "type": "string" }), "next_cursor of the previous page, with the same sort"),
        query("sort", json!({ "type": "string", "enum": sort_values }), "Field to sort by; prefix - for descending"),
    ];
    if let Some(o) = &res.owner {
        let id = json!({ "type": "string", "format": "uuid" });
        params.push(query(o, id.clone(), "Owner equals"));
        params.push(query(&format!("{o}__ne"), id, "Owner differs"));
    }
    for f in res.fields.iter().filter(|f| f.read.is_none()) {
        let mut s = field_schema(f);
        if let Some(t) = s["type"].as_array().and_then(|a| a.first().cloned()) {
            s["type"] = t;
        }
        if let Some(e) = s.get_mut("enum").and_then(Value::as_array_mut) {
            e.retain(|v| !v.is_null());
        }
        // A filter value need not satisfy write constraints (it compares, it is not stored): the
        // server accepts any value of the type, and the document says no more than that.
        if let Some(o) = s.as_object_mut() {
            o.remove("minLength");
            o.remove("pattern");
            o.remove("minimum");
            o.remove("maximum");
            o.remove("maxLength");
        }
        params.push(query(&f.name, s.clone(), "Equals"));
        let ordered =
            matches!(f.kind, Kind::Integer { .. } | Kind::Number { .. } | Kind::Timestamp | Kind::String { .. });
        let ops: &[&str] = if ordered { &["ne", "gt", "gte", "lt", "lte"] } else { &["ne"] };
        for o in ops {
            params.push(query(&format!("{}__{o}", f.name), s.clone(), o));
        }
    }
    // An action whose rule has `public` needs no credentials.
    let public = |a: Action| res.rule(a).is_some_and(|r| r.has(&Term::Public));
    let base = format!("/api/{}", res.name);
    let created = json!({ "description": "Created", "headers": { "Location": { "schema": { "type": "string" } } },
        "content": { "application/json": { "schema": r(&record) } } });
    let mut post = op(
        &format!("Create a record of {}", res.name),
        &res.name,
        public(Action::Create),
        Some(body(r(&create))),
        json!({ "201": created }),
        vec![],
    );
    let mut patch = op(
        "Update a record",
        &res.name,
        public(Action::Update),
        Some(body(r(&update))),
        json!({ "200": ok("Updated", r(&record)) }),
        vec![path_id()],
    );
    if !restricted.is_empty() {
        let note =
            format!("Callers the field's rule admits may also send: {}. Anyone else gets 400.", restricted.join("; "));
        post["description"] = json!(note);
        patch["description"] = json!(note);
    }
    p.insert(
        base.clone(),
        json!({
            "get": op(&format!("List {} the caller may see", res.name), &res.name, public(Action::List), None,
                json!({ "200": ok("A page", r(&page)) }), params),
            "post": post,
        }),
    );
    p.insert(format!("{base}/{{id}}"), json!({
        "get": op("Read a record", &res.name, public(Action::Read), None, json!({ "200": ok("The record", r(&record)) }), vec![path_id()]),
        "patch": patch,
        "delete": op("Delete a record", &res.name, public(Action::Delete), None, json!({ "204": empty("Deleted") }), vec![path_id()]),
    }));
}

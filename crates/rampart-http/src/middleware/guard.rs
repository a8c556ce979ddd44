//! Request-level refusals that need no handler and no database: mixed credentials, oversized
//! declared bodies, cross-site request forgery, and an API key on a route whose policy refuses
//! keys (`route_policy::ApiKeys`).
//!
//! CSRF defence for cookie sessions is layered: `SameSite=Lax` on the cookie; on every unsafe
//! method a foreign `Origin` or `Sec-Fetch-Site: cross-site` is refused; and a request that
//! rides on the session cookie must also carry `X-CSRF-Token`, which a cross-site page cannot
//! read or compute (it is an HMAC of the cookie value), unless the route's policy says it does
//! not act through the session or reads the token from its form (`route_policy::Csrf`). Bearer
//! requests carry no ambient credential and are exempt.

use axum::extract::Request;
use http::{HeaderMap, Method, header};
use rampart_core::opaque_token::{csrf_token, ct_eq};
use secrecy::SecretString;

use crate::cookie::session_value;
use crate::extract::{KeysAccepted, declares_more_than};
use crate::routes::route_policy::{Csrf, RoutePolicy};
use crate::{ApiError, AppState};

pub const CSRF_HEADER: &str = "x-csrf-token";

/// Refuses the request as the module says, or lets it through (marked when it may use its API
/// key).
pub fn admit(state: &AppState, policy: RoutePolicy, req: &mut Request) -> Result<(), ApiError> {
    check(state, policy.csrf, req.method(), req.headers())?;
    if presents_api_key(req.headers()) {
        // Decided by the route's policy before any handler or database work, and answered 403
        // (never 401: the key may be perfectly valid, it is the route that refuses it). See
        // `route_policy::ApiKeys` for why most routes refuse keys.
        if !policy.api_keys.allow(req.method()) {
            return Err(ApiError::Forbidden("an API key cannot be used here"));
        }
        req.extensions_mut().insert(KeysAccepted);
    }
    Ok(())
}

/// Whether the request presents an API key (`Authorization: Bearer rpk_...`).
fn presents_api_key(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.get(7..).filter(|_| v.get(..7).is_some_and(|s| s.eq_ignore_ascii_case("bearer "))))
        .is_some_and(|token| rampart_core::api_key::looks_like_key(token.trim_start()))
}

fn check(state: &AppState, csrf: Csrf, method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
    let cookie = session_value(headers);
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.len() >= 7 && v[..7].eq_ignore_ascii_case("bearer "));
    if cookie.is_some() && bearer {
        return Err(ApiError::BadRequest("send either a session cookie or a bearer token, not both".into()));
    }
    let max = state.settings.limits.max_body_bytes;
    if declares_more_than(headers, max) {
        return Err(ApiError::PayloadTooLarge(max));
    }
    let unsafe_method = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE);
    if !unsafe_method || bearer {
        return Ok(());
    }
    if headers.get("sec-fetch-site").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site")) {
        return Err(ApiError::Forbidden("cross-site request refused"));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("").to_ascii_lowercase();
        let settings = &state.settings;
        let allowed = origin == settings.server.public_origin.as_str()
            || settings.cors.allowed_origins.iter().any(|o| o.as_str().eq_ignore_ascii_case(&origin))
            || (origin == "null" && csrf == Csrf::Form && same_origin_fetch(headers));
        if !allowed {
            return Err(ApiError::Forbidden("request origin not allowed"));
        }
    }
    if let Some(value) = cookie {
        // Routes that do not act through the session cookie need no token (`Csrf::NoSession`).
        // The pages' forms carry it in the body (`csrf_token`), which this layer does not read:
        // `ui::forms::SignedInForm` and `PreSessionForm`, the only ways a page handler reads a
        // form, check it with `csrf_matches` (or the pre-session's HMAC) before the handler
        // runs. The Origin and Sec-Fetch-Site checks above have run for both.
        if csrf != Csrf::Header {
            return Ok(());
        }
        let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !csrf_matches(&SecretString::from(value.to_owned()), sent) {
            return Err(ApiError::Forbidden("missing or invalid CSRF token"));
        }
    }
    Ok(())
}

/// `Sec-Fetch-Site: same-origin`: the browser itself says the request comes from one of our pages.
///
/// Needed for the pages' forms: every response carries `Referrer-Policy: no-referrer`, and under
/// that policy a browser sends `Origin: null` with a form POST, even to its own origin. `null` is
/// also what a sandboxed frame on a hostile site sends, so it is taken only together with this
/// header, which a page cannot set or forge (it is a forbidden request header) and which a
/// cross-site or sandboxed request carries as `cross-site`; and only on the pages
/// (`Csrf::Form`), whose forms carry their CSRF token besides. A client that sends neither header carries no ambient
/// credential a foreign page could ride on.
fn same_origin_fetch(headers: &HeaderMap) -> bool {
    headers.get("sec-fetch-site").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"same-origin"))
}

/// Whether `sent` is the CSRF token of the session whose cookie value is `session_value`: the
/// one check, constant-time, for the `X-CSRF-Token` header and the pages' `csrf_token` field.
pub fn csrf_matches(session_value: &SecretString, sent: &str) -> bool {
    ct_eq(sent, &csrf_token(session_value))
}

//! The security headers of docs/api.md, on every response; `Cache-Control` and the CSP as the
//! route's policy says (`routes::route_policy`).

use axum::response::Response;
use http::{HeaderName, HeaderValue, header};

use crate::AppState;
use crate::routes::route_policy::{Caching, Content, RoutePolicy};

/// What may keep a copy of the response, as the route's policy says: nothing for credentials,
/// admin data and pages (which show both); nothing, and never a shared cache, for records, which
/// belong to one caller; the layer's word or none for the rest (the pages' assets set their own).
fn cache_control(caching: Caching) -> Option<HeaderValue> {
    match caching {
        Caching::NoStore => Some(NO_STORE),
        Caching::PrivateNoStore => Some(PRIVATE_NO_STORE),
        Caching::ByHandler => None,
    }
}

// Every value is a constant, checked when the binary is compiled: `HeaderValue::from_static`
// called on each response checked each string byte by byte again (~800 instructions a response,
// callgrind, issue 17).
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
const PRIVATE_NO_STORE: HeaderValue = HeaderValue::from_static("private, no-store");
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");
const DENY: HeaderValue = HeaderValue::from_static("DENY");
const NO_REFERRER: HeaderValue = HeaderValue::from_static("no-referrer");
const SAME_ORIGIN: HeaderValue = HeaderValue::from_static("same-origin");
const NO_DEVICE_FEATURES: HeaderValue = HeaderValue::from_static("camera=(), microphone=(), geolocation=()");
const TWO_YEARS_OF_HTTPS: HeaderValue = HeaderValue::from_static("max-age=63072000; includeSubDomains");

// Names http has no constant for, parsed once here rather than on every response.
const CROSS_ORIGIN_OPENER_POLICY: HeaderName = HeaderName::from_static("cross-origin-opener-policy");
const CROSS_ORIGIN_RESOURCE_POLICY: HeaderName = HeaderName::from_static("cross-origin-resource-policy");
const PERMISSIONS_POLICY: HeaderName = HeaderName::from_static("permissions-policy");
const X_POWERED_BY: HeaderName = HeaderName::from_static("x-powered-by");

const JSON_CSP: HeaderValue = HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'; base-uri 'none'");

/// The pages' policy (contract, "/ui"): scripts, styles and fetches from our origin only, images
/// also as `data:` (the QR code), forms only to us, never framed, no `<base>`, and Trusted Types
/// so that no script of ours can hand a string to an HTML sink. No `'unsafe-inline'`, no
/// `'unsafe-eval'`.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
form-action 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; require-trusted-types-for 'script'";

/// The one place that decides which CSP a response gets: the pages' on a page route (and an
/// unmatched path under `/ui`), the JSON one everywhere else.
fn content_security_policy(content: Content) -> HeaderValue {
    const PAGE: HeaderValue = HeaderValue::from_static(PAGE_CSP);
    match content {
        Content::Page => PAGE,
        Content::Json => JSON_CSP,
    }
}

/// Sets the headers on `res`, whichever layer or handler produced it.
pub fn apply(state: &AppState, policy: RoutePolicy, res: &mut Response) {
    let cache_control = cache_control(policy.caching);
    let csp = content_security_policy(policy.content);
    let h = res.headers_mut();
    // Room for all of them at once: inserted one by one into a map sized for the handler's few
    // headers, they made it grow and rehash twice per response (callgrind, issue 17).
    h.reserve(10);
    // JSON: nothing may load, frame it, or be sniffed into another type. Pages: see PAGE_CSP.
    h.insert(header::CONTENT_SECURITY_POLICY, csp);
    h.insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
    h.insert(header::X_FRAME_OPTIONS, DENY);
    h.insert(header::REFERRER_POLICY, NO_REFERRER);
    h.insert(CROSS_ORIGIN_OPENER_POLICY, SAME_ORIGIN);
    h.insert(CROSS_ORIGIN_RESOURCE_POLICY, SAME_ORIGIN);
    h.insert(PERMISSIONS_POLICY, NO_DEVICE_FEATURES);
    // HSTS when serving TLS here, and when the public URL is https (TLS terminated at a proxy).
    if state.settings.server.tls.is_some() || state.settings.server.public_origin.is_https() {
        h.insert(header::STRICT_TRANSPORT_SECURITY, TWO_YEARS_OF_HTTPS);
    }
    if let Some(value) = cache_control {
        // Credentials and personal data must not sit in a shared or browser cache. Set on errors
        // too: a 404 or 403 says whether a record exists for someone.
        h.insert(header::CACHE_CONTROL, value);
    }
    // Name no stack.
    h.remove(header::SERVER);
    h.remove(X_POWERED_BY);
}

//! The pre-session: what binds a form shown before sign-in (sign in, second factor, register,
//! forgot, reset, verify) to the browser it was shown in, so that a page on another origin
//! cannot post it (login CSRF: signing the victim into the attacker's account, whose activity
//! the attacker then reads).
//!
//! The browser gets a short-lived cookie `__Host-rampart_presession` (HttpOnly, Secure,
//! SameSite=Lax, Path=/, no Domain) whose value is `<issued unix seconds>.<256 random bits>`;
//! the form carries `csrf_token = base64url(HMAC-SHA256(K, cookie value))`. A POST is taken only
//! with both, matching, and the cookie younger than [`TTL_SECS`].
//!
//! - An attacker can get a valid pair from us for their own browser, but cannot put the cookie
//!   into the victim's: only our origin can set a `__Host-` cookie (no sibling-subdomain cookie
//!   tossing), and a cross-site POST does not carry the victim's (SameSite=Lax). Without the
//!   victim's cookie value they cannot compute its token: it needs K.
//! - K is derived from the data key (`DataKey::subkey`, HKDF with its own label), never a
//!   per-process random key: every instance behind a load balancer must accept the token another
//!   instance rendered. Rotating the data key only invalidates forms shown in the last hour.
//! - The issue time is inside the HMAC'd value, so it cannot be extended by the client; the
//!   cookie's Max-Age is the same hour, for the browser's side.
//!
//! The Origin / `Sec-Fetch-Site` checks of the `guard` layer run first on every POST as well.

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use maud::Markup;
use rampart_core::clock::now_ms;
use rampart_core::opaque_token;
use ring::hmac;
use secrecy::ExposeSecret;

use crate::AppState;

pub const COOKIE: &str = "__Host-rampart_presession";
/// How long a pre-session form may be posted after the cookie was issued.
pub const TTL_SECS: i64 = 3600;
/// A cookie older than this is replaced when a form is shown, so a form shown just before the
/// hour ends does not expire while the visitor types.
const RENEW_AFTER_SECS: i64 = TTL_SECS / 2;
/// The HKDF label of the token key; a new label (v2) would invalidate every old token.
const KEY_LABEL: &str = "rampart ui presession v1";
/// Clock differences between instances that are tolerated on the issue time.
const SKEW_SECS: i64 = 60;

/// The pre-session of a page being shown: its form token, and the cookie to set when the
/// browser had no fresh one.
pub struct PreSession {
    token: String,
    set_cookie: Option<HeaderValue>,
}

impl PreSession {
    /// The `csrf_token` for the page's forms.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The page as a response, with the pre-session cookie when it is new.
    pub fn respond(&self, status: StatusCode, page: Markup) -> Response {
        let mut res = super::layout::html_response(status, page);
        if let Some(cookie) = &self.set_cookie {
            res.headers_mut().append(header::SET_COOKIE, cookie.clone());
        }
        res
    }

    /// The pre-session a posted form was checked against: same token, nothing to set.
    pub(super) fn verified(token: String) -> Self {
        Self { token, set_cookie: None }
    }
}

impl FromRequestParts<AppState> for PreSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let key = key(state);
        let now = now_secs();
        if let Some(value) = cookie_value(&parts.headers)
            && let Some(issued) = issued_at(value)
            && now - issued < RENEW_AFTER_SECS
            && issued <= now + SKEW_SECS
        {
            return Ok(Self { token: token_for(&key, value), set_cookie: None });
        }
        let (random, _) = opaque_token::generate();
        let value = format!("{now}.{}", random.expose_secret());
        let cookie = HeaderValue::from_str(&format!(
            "{COOKIE}={value}; Max-Age={TTL_SECS}; Path=/; Secure; HttpOnly; SameSite=Lax"
        ))
        .map_err(|_| crate::ApiError::Internal("pre-session cookie could not be built".into()).into_response())?;
        Ok(Self { token: token_for(&key, &value), set_cookie: Some(cookie) })
    }
}

/// Whether `sent` is the token of the pre-session cookie in `headers`, and that cookie is not
/// expired. The comparison is ring's constant-time HMAC verification.
pub fn verify(state: &AppState, headers: &HeaderMap, sent: &str) -> bool {
    let Some(value) = cookie_value(headers) else { return false };
    let Some(issued) = issued_at(value) else { return false };
    let now = now_secs();
    if now - issued >= TTL_SECS || issued > now + SKEW_SECS {
        return false;
    }
    let Ok(tag) = URL_SAFE_NO_PAD.decode(sent) else { return false };
    hmac::verify(&key(state), value.as_bytes(), &tag).is_ok()
}

/// `Set-Cookie` that removes the pre-session (after a completed sign-in: a new form gets a new one).
pub fn clear() -> HeaderValue {
    HeaderValue::from_static("__Host-rampart_presession=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax")
}

fn key(state: &AppState) -> hmac::Key {
    state.data_key.subkey(KEY_LABEL)
}

fn token_for(key: &hmac::Key, value: &str) -> String {
    URL_SAFE_NO_PAD.encode(hmac::sign(key, value.as_bytes()).as_ref())
}

fn now_secs() -> i64 {
    now_ms() / 1000
}

/// The issue time of a well-formed cookie value (`<secs>.<43 token characters>`).
fn issued_at(value: &str) -> Option<i64> {
    let (secs, random) = value.split_once('.')?;
    if !opaque_token::well_formed(random) || secs.is_empty() || secs.len() > 12 {
        return None;
    }
    secs.parse().ok()
}

fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    crate::cookie::named_value(headers, COOKIE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_time_is_read_from_well_formed_values_only() {
        let (t, _) = opaque_token::generate();
        let t = t.expose_secret();
        assert_eq!(issued_at(&format!("1700000000.{t}")), Some(1_700_000_000));
        assert_eq!(issued_at(t), None);
        assert_eq!(issued_at(&format!("x.{t}")), None);
        assert_eq!(issued_at(&format!(".{t}")), None);
        assert_eq!(issued_at("1700000000.short"), None);
        assert_eq!(issued_at(&format!("9999999999999.{t}")), None);
    }

    #[test]
    fn the_token_depends_on_the_key_and_the_value() {
        let k1 = hmac::Key::new(hmac::HMAC_SHA256, b"one");
        let k2 = hmac::Key::new(hmac::HMAC_SHA256, b"two");
        assert_eq!(token_for(&k1, "a"), token_for(&k1, "a"));
        assert_ne!(token_for(&k1, "a"), token_for(&k1, "b"));
        assert_ne!(token_for(&k1, "a"), token_for(&k2, "a"));
    }
}

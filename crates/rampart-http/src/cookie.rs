//! The browser session cookie.
//!
//! `__Host-` prefix: the browser only accepts it with `Secure`, `Path=/` and no `Domain`, so a
//! sibling subdomain cannot plant or overwrite it (no cookie tossing / fixation from elsewhere).

use http::{HeaderMap, HeaderValue, header};
use rampart_core::config::Settings;
use secrecy::ExposeSecret;

use crate::ApiError;
use crate::flows::sessions::CookieSession;

pub const SESSION_COOKIE: &str = "__Host-rampart_session";

/// `Set-Cookie` for a new session. `HttpOnly`: scripts cannot read it (XSS cannot steal it).
/// `SameSite=Lax`: not sent on cross-site subresource requests or cross-site POSTs.
pub fn set_session(value: &str, max_age_secs: u64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Max-Age={max_age_secs}; Path=/; Secure; HttpOnly; SameSite=Lax"
    ))
    .ok()
}

/// The `Set-Cookie` of a session a login just opened: the same for `POST /auth/login` and the
/// sign-in pages. It lives as long as the session's absolute timeout.
pub fn new_session(session: &CookieSession, settings: &Settings) -> Result<HeaderValue, ApiError> {
    let absolute = settings.auth.session_absolute_timeout;
    set_session(session.value.expose_secret(), absolute.as_secs())
        .ok_or_else(|| ApiError::Internal("session cookie could not be built".into()))
}

pub fn clear_session() -> HeaderValue {
    HeaderValue::from_static("__Host-rampart_session=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax")
}

/// The session cookie's value, if the request carries one. Only the first is taken.
pub fn session_value(headers: &HeaderMap) -> Option<&str> {
    named_value(headers, SESSION_COOKIE)
}

/// The value of the first cookie called `name`, if the request carries one.
pub fn named_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_session_among_others() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; __Host-rampart_session=abc ; b=2"));
        assert_eq!(session_value(&h), Some("abc"));
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("rampart_session=x"));
        assert_eq!(session_value(&h), None);
    }
}

//! `SignedIn`: the visitor of a page, proven by a live cookie session. Pages are for browsers, so
//! only the session cookie counts here (a bearer token carries no CSRF token to render). An
//! anonymous visitor, or one whose session has ended, is sent to `/ui/login` with a 303.

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Redirect, Response};
use http::header;
use http::request::Parts;
use rampart_core::opaque_token::csrf_token;
use rampart_store::UserRow;
use secrecy::SecretString;

use crate::cookie::{clear_session, session_value};
use crate::extract::{Authenticated, Credential};
use crate::{ApiError, AppState};

pub struct SignedIn {
    pub user: UserRow,
    /// The cookie session's id (to mark "this device" and to end it on sign-out).
    pub session_id: String,
    /// The session cookie's value, kept to check a form's `csrf_token` against. Never printed.
    cookie: SecretString,
    /// The session's CSRF token, for the hidden field of every form on the page.
    csrf: String,
}

impl SignedIn {
    /// The CSRF token of this session, for `forms::csrf_input`.
    ///
    /// Only the token's derivation is stored anywhere (nothing at all, in fact): it is
    /// HMAC-SHA256 keyed with the session cookie's value (`opaque_token::csrf_token`), the same
    /// value `POST /auth/login` returns and `X-CSRF-Token` is checked against. So a page can
    /// render it from the cookie the browser sent, every instance derives the same one, and it
    /// dies with the session; a page on another origin can neither read the cookie (HttpOnly,
    /// and not its origin) nor this page (same-origin policy, `frame-ancestors 'none'`).
    pub fn csrf_token(&self) -> &str {
        &self.csrf
    }

    pub(super) fn cookie(&self) -> &SecretString {
        &self.cookie
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let had_cookie = session_value(&parts.headers).is_some();
        // A bearer token is not a page visitor: only the cookie is looked at.
        parts.headers.remove(header::AUTHORIZATION);
        match Authenticated::from_request_parts(parts, state).await {
            Ok(Authenticated { user, session_id, credential: Credential::Cookie(cookie) }) => {
                let csrf = csrf_token(&cookie);
                Ok(Self { user, session_id, cookie, csrf })
            }
            Ok(Authenticated { credential: Credential::Bearer | Credential::ApiKey(_), .. })
            | Err(ApiError::Unauthorized(_)) => Err(to_sign_in(had_cookie)),
            // A spent per-user budget (429), a database fault (5xx): shown as an error page.
            Err(other) => Err(other.into_response()),
        }
    }
}

/// 303 to the sign-in page; a dead session cookie is cleared on the way.
pub fn to_sign_in(clear_cookie: bool) -> Response {
    let mut res = Redirect::to("/ui/login").into_response();
    if clear_cookie {
        res.headers_mut().insert(header::SET_COOKIE, clear_session());
    }
    res
}

/// The visitor, if signed in: for pages anyone may see that look different when signed in
/// (`GET /ui/`, the sign-in page itself).
pub struct MaybeSignedIn(pub Option<SignedIn>);

impl FromRequestParts<AppState> for MaybeSignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        if session_value(&parts.headers).is_none() {
            return Ok(Self(None));
        }
        match SignedIn::from_request_parts(parts, state).await {
            Ok(s) => Ok(Self(Some(s))),
            Err(res) if res.status().is_redirection() => Ok(Self(None)),
            Err(res) => Err(res),
        }
    }
}

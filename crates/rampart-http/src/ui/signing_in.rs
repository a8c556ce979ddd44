//! The end of a sign-in on the pages: the session cookie (the same one `POST /auth/login` sets,
//! from the same `flows::sessions::open_cookie_session`), or the hand-over to the second-factor
//! page.

use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, HeaderValue, header};
use secrecy::{ExposeSecret, SecretString};

use super::presession;
use crate::cookie::{named_value, new_session, session_value};
use crate::extract::{PresentedToken, RequestContext};
use crate::flows::SignedIn;
use crate::flows::sessions::open_cookie_session;
use crate::{ApiError, AppState};

/// Holds the `mfa_token` between the password page and the code page. HttpOnly and `__Host-`
/// like the session; `SameSite=Strict` because only our own pages ever send it; as long-lived as
/// the challenge itself (`auth.mfa_challenge_ttl`). A URL would put the token in logs, history
/// and `Referer`.
pub const MFA_COOKIE: &str = "__Host-rampart_mfa";

/// A complete login (password, and second factor if any): a new session, its cookie, the
/// pre-session and the `mfa_token` cookies removed, 303 to the account page.
pub async fn complete(state: &AppState, ctx: &RequestContext, headers: &HeaderMap, login: &SignedIn) -> Response {
    let opened = async {
        let session = open_cookie_session(state, ctx, session_value(headers), login).await?;
        new_session(&session, &state.settings)
    };
    match opened.await {
        Ok(cookie) => {
            let mut res = Redirect::to("/ui/account").into_response();
            let h = res.headers_mut();
            h.append(header::SET_COOKIE, cookie);
            h.append(header::SET_COOKIE, presession::clear());
            h.append(header::SET_COOKIE, clear_mfa());
            res
        }
        Err(e) => e.into_response(),
    }
}

/// The password was right and a code must follow: the challenge in its cookie, 303 to `/ui/mfa`.
pub fn to_second_factor(state: &AppState, token: &SecretString) -> Response {
    let ttl = state.settings.auth.mfa_challenge_ttl.as_secs();
    let cookie = HeaderValue::from_str(&format!(
        "{MFA_COOKIE}={}; Max-Age={ttl}; Path=/; Secure; HttpOnly; SameSite=Strict",
        token.expose_secret()
    ));
    match cookie {
        Ok(cookie) => {
            let mut res = Redirect::to("/ui/mfa").into_response();
            res.headers_mut().append(header::SET_COOKIE, cookie);
            res
        }
        Err(_) => ApiError::Internal("mfa cookie could not be built".into()).into_response(),
    }
}

/// The `mfa_token` the browser holds, if any.
pub fn mfa_token(headers: &HeaderMap) -> Option<PresentedToken> {
    named_value(headers, MFA_COOKIE).map(PresentedToken::parse)
}

pub fn clear_mfa() -> HeaderValue {
    HeaderValue::from_static("__Host-rampart_mfa=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Strict")
}

//! `Authenticated`: the caller, proven by a live cookie session. A handler that takes it cannot
//! run for an anonymous request.

use axum::extract::FromRequestParts;
use http::request::Parts;
use rampart_core::clock::{duration_ms, now_ms};
use rampart_core::token::{self, TokenHash};
use rampart_store::UserRow;
use secrecy::SecretString;

use crate::cookie::session_value;
use crate::{ApiError, AppState};

/// `last_seen_at` is written at most this often (or a tenth of the idle timeout, if shorter), so
/// a busy session costs a write a minute rather than one per request. The idle timeout is
/// therefore exact to within that interval.
const TOUCH_EVERY_MS: i64 = 60_000;

pub struct Authenticated {
    pub user: UserRow,
    pub session_id: String,
    /// The cookie value, kept to derive the CSRF token. Never printed.
    pub session_value: SecretString,
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let value = session_value(&parts.headers).ok_or(ApiError::Unauthorized("authentication required"))?;
        // Anything that cannot be one of our tokens is refused without touching the database.
        if !token::well_formed(value) {
            return Err(ApiError::Unauthorized("invalid or expired session"));
        }
        let found = state.store.session_by_hash(TokenHash::of(value).as_str()).await?;
        let s = found.ok_or(ApiError::Unauthorized("invalid or expired session"))?;
        let now = now_ms();
        let idle = duration_ms(state.config.auth.session_idle_timeout);
        if now >= s.session_expires_at || now - s.session_last_seen_at >= idle {
            return Err(ApiError::Unauthorized("invalid or expired session"));
        }
        if now - s.session_last_seen_at >= TOUCH_EVERY_MS.min(idle / 10) {
            state.store.touch_session(&s.session_id, now).await?;
        }
        Ok(Self { user: s.user, session_id: s.session_id, session_value: SecretString::from(value.to_owned()) })
    }
}

//! `Authenticated`: the caller, proven by a live cookie session or a valid bearer token. A
//! handler that takes it cannot run for an anonymous request.

use axum::extract::FromRequestParts;
use http::header;
use http::request::Parts;
use rampart_core::clock::{duration_ms, now_ms};
use rampart_shared::limit::Bucket;
use rampart_shared::revocation::Revoked;
use rampart_store::UserRow;
use secrecy::SecretString;

use super::{PresentedToken, RequestContext};
use crate::cookie::session_value;
use crate::flows::api_keys::{self, KeyGrant};
use crate::{ApiError, AppState};

/// `last_seen_at` is written at most this often (or a tenth of the idle timeout, if shorter), so
/// a busy session costs a write a minute rather than one per request. The idle timeout is
/// therefore exact to within that interval.
const TOUCH_EVERY_MS: i64 = 60_000;

pub enum Credential {
    /// The cookie value, kept to derive the CSRF token. Never printed.
    Cookie(SecretString),
    Bearer,
    /// An API key (`Authorization: Bearer rpk_...`): the user's roles are already narrowed to the
    /// key's, and the grant holds its scopes.
    ApiKey(KeyGrant),
}

/// Put in the request by the guard middleware on the only routes whose policy accepts an API key
/// (`/api`, and `GET /auth/me`: `route_policy::ApiKeys`). Without it, a key is refused (403): a
/// route accepts keys only where its declared policy says so, so a route added later does not
/// start accepting them by accident.
#[derive(Clone, Copy)]
pub struct KeysAccepted;

pub struct Authenticated {
    pub user: UserRow,
    /// The login: the cookie session's id, or the token's `sid`.
    pub session_id: String,
    pub credential: Credential,
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(auth) = parts.headers.get(header::AUTHORIZATION) {
            return bearer(parts, auth.as_bytes(), state).await;
        }
        cookie(parts, state).await
    }
}

const BAD_TOKEN: ApiError = ApiError::Unauthorized("invalid or expired access token");

async fn bearer(parts: &Parts, header_value: &[u8], state: &AppState) -> Result<Authenticated, ApiError> {
    let value = std::str::from_utf8(header_value).map_err(|_| BAD_TOKEN)?;
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => return Err(ApiError::Unauthorized("use Authorization: Bearer <access token>")),
    };
    if rampart_core::api_key::looks_like_key(token) {
        return api_key(parts, token, state).await;
    }
    let claims = state.tokens.verify(token).map_err(|e| {
        tracing::debug!(reason = %e, "bearer token refused");
        BAD_TOKEN
    })?;
    // Checked on every request, cache hit or not: a revoked login dies at once. Then, and only
    // for a live login, the per-user budget is spent: `sub` is keyed on only once the signature,
    // expiry and revocation are checked, so a forged or stale token cannot spend its claimed
    // victim's budget. With Redis, both in one round trip.
    let revoked = state
        .limiter
        .check_bearer(&state.revocations, &claims.sid, &claims.sub)
        .await
        .map_err(ApiError::RateLimited)?;
    match revoked {
        Revoked::Yes => return Err(BAD_TOKEN),
        Revoked::No => {}
        // The shared set did not answer: the database, where every revocation is written first,
        // decides. Slower, never wrong, and never a pass by default.
        Revoked::Unknown => {
            if !state.store.login_live(&claims.sid).await? {
                return Err(BAD_TOKEN);
            }
            spend_user_budget(state, &claims.sub).await?;
        }
    }
    let user = state.store.user_by_id_cached(&claims.sub).await?.ok_or(BAD_TOKEN)?;
    Ok(Authenticated { user, session_id: claims.sid.clone(), credential: Credential::Bearer })
}

/// An API key, where keys are accepted at all (see [`KeysAccepted`]).
async fn api_key(parts: &Parts, key: &str, state: &AppState) -> Result<Authenticated, ApiError> {
    if parts.extensions.get::<KeysAccepted>().is_none() {
        return Err(ApiError::Forbidden("an API key cannot be used here"));
    }
    let ip = parts.extensions.get::<RequestContext>().map(|c| c.ip.to_string()).unwrap_or_default();
    let (user, grant) = api_keys::authenticate(state, key, &ip).await?;
    // Handlers that act on "the current login" (sessions, logout) never see a key: the guard
    // refuses keys on every route but `/api` and `GET /auth/me`.
    Ok(Authenticated { user, session_id: grant.key_id.clone(), credential: Credential::ApiKey(grant) })
}

/// The per-user API budget (`rate_limit.api_per_user_per_minute`), spent once the credential is
/// verified and before the request does any further work.
async fn spend_user_budget(state: &AppState, user_id: &str) -> Result<(), ApiError> {
    state.limiter.check(Bucket::ApiUser(user_id)).await.map_err(ApiError::RateLimited)
}

async fn cookie(parts: &Parts, state: &AppState) -> Result<Authenticated, ApiError> {
    let value = session_value(&parts.headers).ok_or(ApiError::Unauthorized("authentication required"))?;
    // Anything that cannot be one of our tokens is refused without touching the database.
    let hash = PresentedToken::parse(value).hash().ok_or(ApiError::Unauthorized("invalid or expired session"))?;
    let found = state.store.session_by_hash(hash.as_str()).await?;
    let s = found.ok_or(ApiError::Unauthorized("invalid or expired session"))?;
    let now = now_ms();
    let idle = duration_ms(state.settings.auth.session_idle_timeout);
    if now >= s.session_expires_at || now - s.session_last_seen_at >= idle {
        return Err(ApiError::Unauthorized("invalid or expired session"));
    }
    spend_user_budget(state, &s.user.id).await?;
    if now - s.session_last_seen_at >= TOUCH_EVERY_MS.min(idle / 10) {
        state.store.touch_session(&s.session_id, now).await?;
    }
    Ok(Authenticated {
        user: s.user,
        session_id: s.session_id,
        credential: Credential::Cookie(SecretString::from(value.to_owned())),
    })
}

//! `POST /auth/token` (password and refresh_token grants) and `POST /auth/revoke`.
//!
//! Refresh tokens are opaque, single use and rotated on every use. Presenting one that was already
//! used revokes its whole login (every refresh and access token of it) and is audited as
//! `refresh_token_reuse` — unless it is the same client racing itself: two tabs or two threads
//! refreshing at once (the Supabase auth #2136 complaint). That case is recognised narrowly: the
//! token was rotated less than `auth.refresh_reuse_grace` ago (10 s) by a request from the same IP
//! and User-Agent. It then gets a sibling token instead of a logout. A thief replaying a stolen
//! token from elsewhere, or later, triggers the revocation.

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use rampart_core::clock::{Millis, duration_ms, now_ms};
use rampart_core::token::{self, TokenHash};
use rampart_store::{AuditEvent, AuditOutcome, NewSession, RefreshRow, SessionKind, UserRow};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::super::audit::{Audit, record};
use super::credentials::{Flow, first_factor};
use crate::error::FieldError;
use crate::extract::{ApiJson, RequestContext};
use crate::{ApiError, AppState};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    grant_type: String,
    email: Option<String>,
    password: Option<SecretString>,
    refresh_token: Option<SecretString>,
}

#[derive(Serialize)]
pub(super) struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    refresh_token: String,
}

const BAD_REFRESH: ApiError = ApiError::Unauthorized("invalid or expired refresh token");

#[tracing::instrument(skip_all)]
pub async fn token(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<TokenRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    match body.grant_type.as_str() {
        "password" => {
            let mut errors = Vec::new();
            if body.email.is_none() {
                errors.push(FieldError::new("email", "is required"));
            }
            if body.password.is_none() {
                errors.push(FieldError::new("password", "is required"));
            }
            if body.refresh_token.is_some() {
                errors.push(FieldError::new("refresh_token", "not allowed with grant_type password"));
            }
            let (Some(email), Some(password), true) = (body.email, body.password, errors.is_empty()) else {
                return Err(ApiError::Validation(errors));
            };
            // Not spent by the rate-limit layer: only the body says this is a login.
            let user = first_factor(&state, &ctx, &email, password, None, Flow::Token).await?;
            password_grant(&state, &ctx, &user).await.map(Json)
        }
        "refresh_token" => {
            let mut errors = Vec::new();
            for (field, present) in [("email", body.email.is_some()), ("password", body.password.is_some())] {
                if present {
                    errors.push(FieldError::new(field, "not allowed with grant_type refresh_token"));
                }
            }
            let Some(refresh) = body.refresh_token.filter(|_| errors.is_empty()) else {
                if errors.is_empty() {
                    errors.push(FieldError::new("refresh_token", "is required"));
                }
                return Err(ApiError::Validation(errors));
            };
            refresh_grant(&state, &ctx, &refresh).await.map(Json)
        }
        _ => {
            Err(ApiError::Validation(vec![FieldError::new("grant_type", "must be \"password\" or \"refresh_token\"")]))
        }
    }
}

/// A new token login (password, and second factor if any): its id is the `sid` of every access
/// token it issues.
pub(super) async fn password_grant(
    state: &AppState,
    ctx: &RequestContext,
    user: &UserRow,
) -> Result<TokenResponse, ApiError> {
    let now = now_ms();
    let sid = token::new_id();
    let ip = ctx.ip.to_string();
    state
        .store
        .insert_session(&NewSession {
            id: &sid,
            kind: SessionKind::Token,
            token_hash: None,
            user_id: &user.id,
            now,
            expires_at: now + duration_ms(state.config.auth.refresh_token_ttl),
            ip: Some(&ip),
            user_agent: ctx.user_agent.as_deref(),
        })
        .await?;
    let event = Audit {
        action: AuditEvent::LoginSuccess,
        actor_id: Some(&user.id),
        target: Some(&sid),
        outcome: AuditOutcome::Success,
    };
    record(state, ctx, event).await;
    let (refresh, refresh_hash) = token::generate();
    let expires = refresh_expiry(state, now, now + duration_ms(state.config.auth.refresh_token_ttl));
    state.store.insert_refresh(refresh_hash.as_str(), &sid, now, expires, (&ip, ctx.user_agent.as_deref())).await?;
    respond(state, user, &sid, &refresh)
}

async fn refresh_grant(
    state: &AppState,
    ctx: &RequestContext,
    presented: &SecretString,
) -> Result<TokenResponse, ApiError> {
    let presented = presented.expose_secret();
    if !token::well_formed(presented) {
        return Err(BAD_REFRESH);
    }
    let hash = TokenHash::of(presented);
    let row = state.store.refresh_by_hash(hash.as_str()).await?.ok_or(BAD_REFRESH)?;
    let now = now_ms();
    if row.session_revoked_at.is_some() || now >= row.session_expires_at || now >= row.token_expires_at {
        return Err(BAD_REFRESH);
    }
    let ip = ctx.ip.to_string();
    let (refresh, new_hash) = token::generate();
    let expires = refresh_expiry(state, now, row.session_expires_at);
    let client = (ip.as_str(), ctx.user_agent.as_deref());
    let rotated =
        state.store.rotate_refresh(hash.as_str(), new_hash.as_str(), &row.session_id, now, expires, client).await?;
    if !rotated {
        // Someone used this token before us. Read who, and when.
        let used = state.store.refresh_by_hash(hash.as_str()).await?.ok_or(BAD_REFRESH)?;
        if !concurrent_refresh(state, &used, &ip, ctx, now) {
            return reuse_detected(state, ctx, &used).await;
        }
        // The same client racing itself: a sibling token in the same login.
        state.store.insert_refresh(new_hash.as_str(), &row.session_id, now, expires, client).await?;
    }
    respond(state, &row.user, &row.session_id, &refresh)
}

/// The same client racing itself, not a replay: see the module comment.
fn concurrent_refresh(state: &AppState, used: &RefreshRow, ip: &str, ctx: &RequestContext, now: Millis) -> bool {
    let grace = duration_ms(state.config.auth.refresh_reuse_grace);
    used.session_revoked_at.is_none()
        && used.used_at.is_some_and(|at| now - at <= grace)
        && used.used_ip.as_deref() == Some(ip)
        && used.used_user_agent.as_deref() == ctx.user_agent.as_deref()
}

async fn reuse_detected(state: &AppState, ctx: &RequestContext, used: &RefreshRow) -> Result<TokenResponse, ApiError> {
    state.end_login(&used.session_id, &used.user.id).await?;
    tracing::warn!(sid = %used.session_id, "refresh token reuse: login revoked");
    let event = Audit {
        action: AuditEvent::RefreshTokenReuse,
        actor_id: Some(&used.user.id),
        target: Some(&used.session_id),
        outcome: AuditOutcome::Denied,
    };
    record(state, ctx, event).await;
    Err(BAD_REFRESH)
}

/// A refresh token dies after the idle timeout, and never outlives its login.
fn refresh_expiry(state: &AppState, now: Millis, login_ends: Millis) -> Millis {
    (now + duration_ms(state.config.auth.refresh_token_idle_timeout)).min(login_ends)
}

/// Signs the access token and builds the response around the already stored refresh token.
fn respond(state: &AppState, user: &UserRow, sid: &str, refresh: &SecretString) -> Result<TokenResponse, ApiError> {
    let (access_token, expires_in) =
        state.tokens.issue(&user.id, sid, user.roles()).map_err(|e| ApiError::Internal(format!("signing: {e}")))?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in,
        refresh_token: refresh.expose_secret().to_owned(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    refresh_token: SecretString,
    /// RFC 7009 lets clients say what kind of token they send; only refresh tokens are accepted.
    #[serde(default)]
    token_type_hint: Option<String>,
}

/// `POST /auth/revoke`: ends the login the refresh token belongs to. 204 whatever the token is
/// (RFC 7009), so it cannot be used to test tokens.
#[tracing::instrument(skip_all)]
pub async fn revoke(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<RevokeRequest>,
) -> Result<StatusCode, ApiError> {
    let _ = body.token_type_hint;
    let presented = body.refresh_token.expose_secret();
    if token::well_formed(presented)
        && let Some(row) = state.store.refresh_by_hash(TokenHash::of(presented).as_str()).await?
        && state.end_login(&row.session_id, &row.user.id).await?
    {
        let event = Audit {
            action: AuditEvent::Logout,
            actor_id: Some(&row.user.id),
            target: Some(&row.session_id),
            outcome: AuditOutcome::Success,
        };
        record(&state, &ctx, event).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

//! `POST /auth/token` (password and refresh_token grants) and `POST /auth/revoke`.
//!
//! The grants themselves live in [`crate::flows::sessions`].

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use rampart_store::{AuditEvent, AuditOutcome};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::super::audit_trail::{Audit, record};
use crate::error::FieldError;
use crate::extract::{ApiJson, PresentedToken, RequestContext};
use crate::flows::SignedIn;
use crate::flows::password_login::{Flow, password_step};
use crate::flows::sessions::{self, TokenGrant};
use crate::{ApiError, AppState};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    grant_type: String,
    email: Option<String>,
    password: Option<SecretString>,
    refresh_token: Option<PresentedToken>,
}

#[derive(Serialize)]
pub(super) struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    refresh_token: String,
}

#[tracing::instrument(level = "debug", skip_all)]
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
            let login = password_step(&state, &ctx, &email, password, None, Flow::Token).await?;
            password_grant(&state, &ctx, &login).await.map(Json)
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
            Ok(Json(sessions::rotate_refresh(&state, &ctx, &refresh).await?.into()))
        }
        _ => {
            Err(ApiError::Validation(vec![FieldError::new("grant_type", "must be \"password\" or \"refresh_token\"")]))
        }
    }
}

/// A new token login (password, and second factor if any), as the token endpoint answers it.
pub(super) async fn password_grant(
    state: &AppState,
    ctx: &RequestContext,
    login: &SignedIn,
) -> Result<TokenResponse, ApiError> {
    Ok(sessions::open_token_login(state, ctx, login).await?.into())
}

impl From<TokenGrant> for TokenResponse {
    fn from(g: TokenGrant) -> Self {
        TokenResponse {
            access_token: g.access_token,
            token_type: "Bearer",
            expires_in: g.expires_in,
            refresh_token: g.refresh_token.expose_secret().to_owned(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    refresh_token: PresentedToken,
    /// RFC 7009 lets clients say what kind of token they send; only refresh tokens are accepted.
    /// When present it must be a string (RFC 7009 section 2.1): `null` or any other type is a 400,
    /// as `/openapi.json` says, rather than being read as "absent".
    #[serde(default, deserialize_with = "present_string")]
    token_type_hint: Option<String>,
}

/// An optional field that, when sent, must be a string (a JSON `null` is refused, not taken as absent).
fn present_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    String::deserialize(d).map(Some)
}

/// `POST /auth/revoke`: ends the login the refresh token belongs to. 204 whatever the token is
/// (RFC 7009), so it cannot be used to test tokens.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn revoke(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<RevokeRequest>,
) -> Result<StatusCode, ApiError> {
    let _ = body.token_type_hint;
    if let Some(hash) = body.refresh_token.hash()
        && let Some(row) = state.store.refresh_by_hash(hash.as_str()).await?
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

//! `POST /auth/login`, `POST /auth/logout`, `GET /auth/csrf`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use rampart_core::auth::hasher::Verdict;
use rampart_core::clock::{duration_ms, now_ms};
use rampart_core::email::Email;
use rampart_core::password::check_length;
use rampart_core::token::{self, TokenHash};
use rampart_store::{AuditEvent, NewSession};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use super::super::audit::{Audit, record};
use crate::cookie::{clear_session, session_value, set_session};
use crate::error::FieldError;
use crate::extract::{ApiJson, Authenticated, RequestContext};
use crate::views::UserView;
use crate::{ApiError, AppState};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    password: SecretString,
}

/// The one answer for an unknown email and a wrong password: same status, same bytes.
const INVALID_CREDENTIALS: ApiError = ApiError::Unauthorized("invalid email or password");

#[tracing::instrument(skip_all)]
pub async fn login(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let email =
        Email::parse(&body.email).map_err(|e| ApiError::Validation(vec![FieldError::new("email", e.to_string())]))?;
    check_length(&body.password).map_err(|e| ApiError::Validation(vec![FieldError::new("password", e.to_string())]))?;

    let user = state.store.user_by_email(email.normalized()).await?;
    // An unknown email is checked against a dummy hash: the same Argon2 work as a wrong password,
    // so response time does not reveal whether an account exists.
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let verdict = state.hasher.verify(body.password.clone(), stored).await?;
    let (user, rehash) = match (user, verdict) {
        (Some(user), Verdict::Match { rehash }) => (user, rehash),
        (user, _) => {
            let actor = user.as_ref().map(|u| u.id.as_str());
            record(
                &state,
                &ctx,
                Audit {
                    action: AuditEvent::LoginFailure,
                    actor_id: actor,
                    target: Some(email.normalized()),
                    outcome: "failure",
                },
            )
            .await;
            return Err(INVALID_CREDENTIALS);
        }
    };
    if rehash {
        // Parameters were raised since this hash was made: store a fresh one. Off the response
        // path; it only succeeds if the hash was not changed meanwhile.
        let (state, password, id, old) = (state.clone(), body.password, user.id.clone(), user.password_hash.clone());
        tokio::spawn(async move {
            match state.hasher.hash(password).await {
                Ok(new) => {
                    if let Err(e) = state.store.rehash_password(&id, &old, &new, now_ms()).await {
                        tracing::warn!(error = %e, "rehash on login failed");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "rehash on login failed"),
            }
        });
    }

    // A login always starts a new session with a new value (no fixation); a session the browser
    // still carried is revoked rather than left alive beside it.
    if let Some(old) = session_value(&headers).filter(|v| token::well_formed(v))
        && let Some(s) = state.store.session_by_hash(TokenHash::of(old).as_str()).await?
    {
        state.store.revoke_session(&s.session_id, &s.user.id, now_ms()).await?;
    }
    let (value, hash) = token::generate();
    let now = now_ms();
    let absolute = state.config.auth.session_absolute_timeout;
    let session_id = rampart_core::token::new_id();
    let ip = ctx.ip.to_string();
    state
        .store
        .insert_session(&NewSession {
            id: &session_id,
            token_hash: hash.as_str(),
            user_id: &user.id,
            now,
            expires_at: now + duration_ms(absolute),
            ip: Some(&ip),
            user_agent: ctx.user_agent.as_deref(),
        })
        .await?;
    record(
        &state,
        &ctx,
        Audit {
            action: AuditEvent::LoginSuccess,
            actor_id: Some(&user.id),
            target: Some(&session_id),
            outcome: "success",
        },
    )
    .await;

    let cookie = set_session(value.expose_secret(), absolute.as_secs())
        .ok_or_else(|| ApiError::Internal("session cookie could not be built".into()))?;
    let body = json!({ "user": UserView::from(&user), "csrf_token": token::csrf_token(&value) });
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

#[tracing::instrument(skip_all)]
pub async fn logout(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
) -> Result<Response, ApiError> {
    state.store.revoke_session(&auth.session_id, &auth.user.id, now_ms()).await?;
    record(
        &state,
        &ctx,
        Audit {
            action: AuditEvent::Logout,
            actor_id: Some(&auth.user.id),
            target: Some(&auth.session_id),
            outcome: "success",
        },
    )
    .await;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear_session())]).into_response())
}

/// The CSRF token of the current cookie session (also returned by login).
pub async fn csrf(auth: Authenticated) -> Json<serde_json::Value> {
    Json(json!({ "csrf_token": token::csrf_token(&auth.session_value) }))
}

//! `GET /auth/sessions`, `DELETE /auth/sessions/{id}`: the caller's own logins (cookie sessions
//! and token logins). Every statement is scoped by the caller's id, so another user's session
//! is answered exactly like one that does not exist: 404.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use rampart_core::clock::{duration_ms, now_ms, rfc3339};
use serde::Serialize;

use crate::cookie::clear_session;
use crate::extract::{Authenticated, Credential, IdPath, RequestContext};
use crate::flows::account;
use crate::{ApiError, AppState};

#[derive(Serialize)]
pub struct SessionView {
    id: String,
    created_at: String,
    last_seen_at: String,
    ip: Option<String>,
    user_agent: Option<String>,
    current: bool,
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn list(State(state): State<AppState>, auth: Authenticated) -> Result<Json<Vec<SessionView>>, ApiError> {
    let idle = duration_ms(state.settings.auth.session_idle_timeout);
    let rows = state.store.list_sessions(&auth.user.id, now_ms(), idle).await?;
    Ok(Json(
        rows.into_iter()
            .map(|s| SessionView {
                current: s.id == auth.session_id,
                id: s.id,
                created_at: rfc3339(s.created_at),
                last_seen_at: rfc3339(s.last_seen_at),
                ip: s.ip,
                user_agent: s.user_agent,
            })
            .collect(),
    ))
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn revoke(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
    IdPath(id): IdPath,
) -> Result<Response, ApiError> {
    if !account::revoke_own_login(&state, &ctx, &auth.user.id, &id).await? {
        return Err(ApiError::NotFound);
    }
    // Ending the session this browser rides on also clears its cookie.
    if id == auth.session_id && matches!(auth.credential, Credential::Cookie(_)) {
        return Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear_session())]).into_response());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

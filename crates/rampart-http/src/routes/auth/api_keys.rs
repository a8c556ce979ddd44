//! `POST`/`GET /auth/api-keys`, `DELETE /auth/api-keys/{id}`, `POST /auth/api-keys/{id}/rotate`:
//! the caller's own API keys (see `flows::api_keys` for what a key may do).
//!
//! None of these answers to an API key (the guard refuses keys on every `/auth` route but
//! `GET /auth/me`): a leaked key cannot make itself successors. The owner of a key is always the
//! caller; every statement is scoped by the caller's id, so another user's key is answered
//! exactly like one that does not exist: 404.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use rampart_core::api_key;
use rampart_core::clock::now_ms;
use rampart_store::{AuditEvent, AuditOutcome, Rotation};
use serde::Deserialize;

use super::super::audit_trail::{Audit, record};
use crate::error::FieldError;
use crate::extract::{ApiJson, Authenticated, IdPath, RequestContext};
use crate::flows::api_keys::{self, GRACE_HOURS_MAX, IssuedKey, KeyView, NewKeyRequest};
use crate::{ApiError, AppState};

#[tracing::instrument(level = "debug", skip_all)]
pub async fn create(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
    ApiJson(body): ApiJson<NewKeyRequest>,
) -> Result<Response, ApiError> {
    let issued = api_keys::issue(&state, &auth.user, &auth.user.id, body).await?;
    audit_created(&state, &ctx, &auth.user.id, &issued).await;
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

/// `api_key_created`, by `actor` (the owner, or the admin who made a service account's key).
pub(crate) async fn audit_created(state: &AppState, ctx: &RequestContext, actor: &str, issued: &IssuedKey) {
    let event = Audit {
        action: AuditEvent::ApiKeyCreated,
        actor_id: Some(actor),
        target: Some(&issued.id),
        outcome: AuditOutcome::Success,
    };
    record(state, ctx, event).await;
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn list(State(state): State<AppState>, auth: Authenticated) -> Result<Json<Vec<KeyView>>, ApiError> {
    let rows = state.store.api_keys_of(&auth.user.id).await?;
    Ok(Json(rows.iter().map(KeyView::from).collect()))
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn revoke(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    if !api_keys::revoke(&state, &ctx, &auth.user.id, &auth.user.id, &id).await? {
        return Err(ApiError::NotFound);
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    #[serde(default, deserialize_with = "api_keys::not_null")]
    grace_hours: Option<u32>,
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn rotate(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<RotateRequest>,
) -> Result<Json<IssuedKey>, ApiError> {
    let grace = body.grace_hours.unwrap_or(0);
    if grace > GRACE_HOURS_MAX {
        return Err(ApiError::Validation(vec![FieldError::new(
            "grace_hours",
            format!("must be 0 to {GRACE_HOURS_MAX}"),
        )]));
    }
    let key_id = uuid::Uuid::try_parse(&id).map_err(|_| ApiError::NotFound)?;
    let (key, hash) = api_key::mint(&key_id);
    let now = now_ms();
    let rotation = Rotation {
        id: &id,
        user_id: &auth.user.id,
        secret_hash: hash.as_str(),
        previous_until: now + i64::from(grace) * 3_600_000,
        now,
    };
    let row = state.store.rotate_api_key(&rotation).await?.ok_or(ApiError::NotFound)?;
    let event = Audit {
        action: AuditEvent::ApiKeyRotated,
        actor_id: Some(&auth.user.id),
        target: Some(&id),
        outcome: AuditOutcome::Success,
    };
    record(&state, &ctx, event).await;
    Ok(Json(api_keys::issued(&row, key)))
}

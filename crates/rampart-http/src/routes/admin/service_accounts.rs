//! `POST /admin/service-accounts`, `POST /admin/users/{id}/api-keys` and `GET /admin/api-keys`.
//!
//! A service account is a user of kind `service`: no email and no password anyone knows (its
//! stored hash is of 256 random bits that were never kept), so no way of signing in can reach it:
//! every login, reset and verification path looks users up by a parsed email, and a service
//! account's stored address (`service:<id>`) is one no parsed email can equal, so each of them
//! answers exactly as for an unknown address, in the same time. It acts only through API keys
//! that an admin makes for it here; its owner-scoped records are its own. An admin manages it like
//! any user (`PATCH`, `DELETE /admin/users/{id}`): locking or deleting it ends its keys at once.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, Uri};
use rampart_core::clock::{Millis, now_ms};
use serde::{Deserialize, Serialize};

use super::page::{self, Page, invalid, is_uuid};
use super::users::AdminUserView;
use crate::extract::{Admin, ApiJson, IdPath, RequestContext, RequireRole};
use crate::flows::api_keys::{self, KeyView, NewKeyRequest};
use crate::flows::service_accounts;
use crate::routes::auth::audit_created;
use crate::{ApiError, AppState};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewServiceAccountRequest {
    name: String,
    roles: Vec<String>,
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn create(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: RequireRole<Admin>,
    ApiJson(body): ApiJson<NewServiceAccountRequest>,
) -> Result<Response, ApiError> {
    let user = service_accounts::create(&state, &ctx, &admin.user.id, &body.name, &body.roles).await?;
    Ok((StatusCode::CREATED, Json(AdminUserView::new(&user, now_ms()))).into_response())
}

/// A key for a service account: the same body and answer as `POST /auth/api-keys`, owned by the
/// account in the path (never by the admin, never by a body field), narrowed against its roles.
/// A person's id is 404: people make their own keys, an admin cannot make one in their name.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn create_key(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: RequireRole<Admin>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<NewKeyRequest>,
) -> Result<Response, ApiError> {
    let account = service_accounts::account(&state, &id).await?;
    let issued = api_keys::issue(&state, &account, &admin.user.id, body).await?;
    audit_created(&state, &ctx, &admin.user.id, &issued).await;
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

/// A key as an admin sees it: its metadata and owner, never a secret, revoked keys included.
#[derive(Serialize)]
pub struct AdminKeyView {
    user_id: String,
    #[serde(flatten)]
    key: KeyView,
}

const CURSOR_LIST: &str = "api-keys";

#[tracing::instrument(level = "debug", skip_all)]
pub async fn list_keys(
    State(state): State<AppState>,
    _admin: RequireRole<Admin>,
    uri: Uri,
) -> Result<Json<Page<AdminKeyView>>, ApiError> {
    let q = page::params(&uri, &["limit", "cursor", "user"])?;
    let limit = page::limit(q.get("limit"))?;
    let user =
        q.get("user").map(|u| if is_uuid(u) { Ok(u.as_str()) } else { Err(invalid("user", "is not a user id")) });
    let user = user.transpose()?;
    let cursor = q.get("cursor").map(|c| key_cursor(&state, c)).transpose()?;
    let rows = state
        .store
        .api_keys_page(user, cursor.as_ref().map(|(at, id)| (*at, id.as_str())), i64::from(limit) + 1)
        .await?;
    Ok(Json(Page::from_rows(
        rows,
        limit,
        |(owner, k)| AdminKeyView { user_id: owner.clone(), key: KeyView::from(k) },
        |(_, k)| page::encode_cursor(&state.cursors, CURSOR_LIST, &format!("{}:{}", k.created_at, k.id)),
    )))
}

fn key_cursor(state: &AppState, raw: &str) -> Result<(Millis, String), ApiError> {
    let position = page::decode_cursor(&state.cursors, CURSOR_LIST, raw)?;
    position
        .split_once(':')
        .and_then(|(at, id)| Some((at.parse::<Millis>().ok()?, id)))
        .filter(|(_, id)| is_uuid(id))
        .map(|(at, id)| (at, id.to_owned()))
        .ok_or_else(|| invalid("cursor", "is not a cursor this list gave out"))
}

//! `GET /admin/users`, `GET`, `PATCH`, `DELETE /admin/users/{id}`.
//!
//! Decisions (also in docs/api.md):
//! - the list is in creation order; `email` is an exact match on the normalized address;
//! - `roles` is the complete new list; `user` is added when missing (every account has it);
//! - the rules about acting on oneself, the last active admin (409) and revoking logins live in
//!   `flows::admin_users`, shared with the console's pages.

use axum::Json;
use axum::extract::State;
use http::{StatusCode, Uri};
use rampart_core::clock::{Millis, now_ms, rfc3339};
use rampart_core::email::Email;
use rampart_store::{EmailMatch, LockChange, UserRow};
use serde::{Deserialize, Deserializer, Serialize};

use super::page::{self, Page, invalid, is_uuid};
use crate::extract::{Admin, ApiJson, IdPath, RequestContext, RequireRole};
use crate::flows::admin_users::{self, Acting};
use crate::views::UserView;
use crate::{ApiError, AppState};

/// A user as an admin sees it: the profile every user sees of themselves (built field by field,
/// so the password hash cannot reach it) plus the lock state.
#[derive(Serialize)]
pub struct AdminUserView {
    #[serde(flatten)]
    user: UserView,
    /// When the current lock ends; `null` when the account is not locked now (an expired
    /// automatic lockout shows as `null`). An admin lock shows as `9999-12-31T23:59:59Z`.
    locked_until: Option<String>,
    failed_logins: i64,
    /// `person`, or `service` for a service account (no password, signs in never, acts through
    /// API keys an admin made for it).
    kind: String,
}

impl AdminUserView {
    pub(super) fn new(u: &UserRow, now: Millis) -> Self {
        Self {
            user: UserView::from(u),
            locked_until: u.locked_until.filter(|until| *until > now).map(rfc3339),
            failed_logins: u.failed_logins,
            kind: u.kind.clone(),
        }
    }
}

const CURSOR_LIST: &str = "users";

#[tracing::instrument(level = "debug", skip_all)]
pub async fn list(
    State(state): State<AppState>,
    _admin: RequireRole<Admin>,
    uri: Uri,
) -> Result<Json<Page<AdminUserView>>, ApiError> {
    let q = page::params(&uri, &["limit", "cursor", "email"])?;
    let limit = page::limit(q.get("limit"))?;
    let cursor = q.get("cursor").map(|c| user_cursor(&state, c)).transpose()?;
    let email = q.get("email").map(|e| Email::parse(e).map_err(|e| invalid("email", &e.to_string()))).transpose()?;
    let rows = state
        .store
        .list_users(
            cursor.as_ref().map(|(at, id)| (*at, id.as_str())),
            email.as_ref().map_or(EmailMatch::Any, |e| EmailMatch::Exact(e.normalized())),
            limit + 1,
        )
        .await?;
    let now = now_ms();
    Ok(Json(Page::from_rows(
        rows,
        limit,
        |u| AdminUserView::new(u, now),
        |u| page::encode_cursor(&state.cursors, CURSOR_LIST, &format!("{}:{}", u.created_at, u.id)),
    )))
}

/// The position in a cursor of the user list (also the console's, which pages the same way).
pub(crate) fn user_cursor(state: &AppState, raw: &str) -> Result<(Millis, String), ApiError> {
    let position = page::decode_cursor(&state.cursors, CURSOR_LIST, raw)?;
    position
        .split_once(':')
        .and_then(|(at, id)| Some((at.parse::<Millis>().ok()?, id)))
        .filter(|(_, id)| is_uuid(id))
        .map(|(at, id)| (at, id.to_owned()))
        .ok_or_else(|| invalid("cursor", "is not a cursor this list gave out"))
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn get(
    State(state): State<AppState>,
    _admin: RequireRole<Admin>,
    IdPath(id): IdPath,
) -> Result<Json<AdminUserView>, ApiError> {
    let user = state.store.user_by_id(&id).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(AdminUserView::new(&user, now_ms())))
}

/// Only `roles` and `locked`; anything else (email, password_hash, id, ...) is an unknown field
/// and refused, so this route cannot be used for mass assignment. `null` is refused too: it is
/// not a role list or a lock state, and reading it as "unchanged" would hide a client bug.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchUser {
    #[serde(default, deserialize_with = "present")]
    roles: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    locked: Option<bool>,
}

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn patch(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: RequireRole<Admin>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<PatchUser>,
) -> Result<Json<AdminUserView>, ApiError> {
    let roles = body.roles.as_deref().map(|r| admin_users::parse_roles(r, &state.settings.roles)).transpose()?;
    let lock = match body.locked {
        None => LockChange::Keep,
        Some(true) => LockChange::Lock,
        Some(false) => LockChange::Unlock,
    };
    let by = Acting { admin_id: &admin.user.id, ctx: &ctx };
    let user = admin_users::change_user(&state, by, &id, roles, lock).await?;
    Ok(Json(AdminUserView::new(&user, now_ms())))
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn delete(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: RequireRole<Admin>,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    admin_users::delete_user(&state, Acting { admin_id: &admin.user.id, ctx: &ctx }, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

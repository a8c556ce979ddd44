//! `GET /admin/users`, `GET`, `PATCH`, `DELETE /admin/users/{id}`.
//!
//! Decisions (also in docs/api.md):
//! - the list is in creation order; `email` is an exact match on the normalized address;
//! - `roles` is the complete new list; `user` is added when missing (every account has it);
//! - an admin cannot change their own roles or lock themselves (403): privilege changes need a
//!   second admin, and nobody locks the account they are using by mistake. Unlocking oneself
//!   (after an automatic lockout) and deleting oneself are allowed, unless it leaves no admin;
//! - the last active (unlocked) admin cannot be demoted, locked or deleted: 409;
//! - setting roles (even to the same list) and locking revoke every login of the user at once.

use axum::Json;
use axum::extract::State;
use http::{StatusCode, Uri};
use rampart_core::clock::{Millis, now_ms, rfc3339};
use rampart_core::config::Roles;
use rampart_core::email::Email;
use rampart_store::{AdminWrite, AuditEvent, AuditOutcome, LockChange, UserChange, UserRow};
use serde::{Deserialize, Deserializer, Serialize};

use super::super::audit_trail::{Audit, record};
use super::page::{self, Page, invalid, is_uuid};
use crate::extract::{Admin, ApiJson, IdPath, RequestContext, RequireRole};
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

#[tracing::instrument(skip_all)]
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
            email.as_ref().map(Email::normalized),
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

fn user_cursor(state: &AppState, raw: &str) -> Result<(Millis, String), ApiError> {
    let position = page::decode_cursor(&state.cursors, CURSOR_LIST, raw)?;
    position
        .split_once(':')
        .and_then(|(at, id)| Some((at.parse::<Millis>().ok()?, id)))
        .filter(|(_, id)| is_uuid(id))
        .map(|(at, id)| (at, id.to_owned()))
        .ok_or_else(|| invalid("cursor", "is not a cursor this list gave out"))
}

#[tracing::instrument(skip_all)]
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

#[tracing::instrument(skip_all)]
pub async fn patch(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: RequireRole<Admin>,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<PatchUser>,
) -> Result<Json<AdminUserView>, ApiError> {
    let roles = body.roles.as_deref().map(|r| parse_roles(r, &state.settings.roles)).transpose()?;
    let lock = match body.locked {
        None => LockChange::Keep,
        Some(true) => LockChange::Lock,
        Some(false) => LockChange::Unlock,
    };
    if id == admin.user.id {
        if roles.is_some() {
            return Err(ApiError::Forbidden("you cannot change your own roles; ask another admin"));
        }
        if lock == LockChange::Lock {
            return Err(ApiError::Forbidden("you cannot lock your own account"));
        }
    }
    let now = now_ms();
    if roles.is_none() && lock == LockChange::Keep {
        let user = state.store.user_by_id(&id).await?.ok_or(ApiError::NotFound)?;
        return Ok(Json(AdminUserView::new(&user, now)));
    }
    let change = UserChange { roles: roles.as_deref(), lock };
    let changed = match state.store.admin_update_user(&id, &change, now).await? {
        AdminWrite::Done(c) => c,
        AdminWrite::NotFound => return Err(ApiError::NotFound),
        AdminWrite::LastAdmin => {
            return Err(ApiError::Conflict("this is the last active admin: promote another admin first"));
        }
    };
    // Tokens carry the old roles in their claims and are checked against the database only
    // through this set: every one of them dies now, not at its `exp`.
    state.revoke_token_logins(&changed.revoked_token_logins, now).await;
    let actions = [
        roles.is_some().then_some(AuditEvent::RoleChanged),
        (lock == LockChange::Lock).then_some(AuditEvent::UserLocked),
        (lock == LockChange::Unlock).then_some(AuditEvent::UserUnlocked),
    ];
    for action in actions.into_iter().flatten() {
        let event = Audit { action, actor_id: Some(&admin.user.id), target: Some(&id), outcome: AuditOutcome::Success };
        record(&state, &ctx, event).await;
    }
    Ok(Json(AdminUserView::new(&changed.user, now)))
}

/// The new role list: every name built in (`user`, `admin`) or declared in `roles.declared`, not
/// empty; duplicates dropped; `user` first, added when missing, since every account has it.
pub(super) fn parse_roles(given: &[String], known: &Roles) -> Result<Vec<String>, ApiError> {
    if given.is_empty() {
        return Err(invalid("roles", "must list at least one role"));
    }
    let mut roles = vec!["user".to_owned()];
    for r in given {
        if !known.is_known(r) {
            let message = if rampart_core::ident::is_identifier(r) {
                format!("unknown role `{r}` (known: {}{})", Roles::BUILT_IN.join(", "), declared_list(known))
            } else {
                "is not a role name".to_owned()
            };
            return Err(invalid("roles", &message));
        }
        if !roles.contains(r) {
            roles.push(r.clone());
        }
    }
    Ok(roles)
}

fn declared_list(known: &Roles) -> String {
    known.declared.iter().map(|d| format!(", {d}")).collect()
}

#[tracing::instrument(skip_all)]
pub async fn delete(
    State(state): State<AppState>,
    ctx: RequestContext,
    admin: RequireRole<Admin>,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    let now = now_ms();
    let sids = match state.store.admin_delete_user(&id, now).await? {
        AdminWrite::Done(sids) => sids,
        AdminWrite::NotFound => return Err(ApiError::NotFound),
        AdminWrite::LastAdmin => {
            return Err(ApiError::Conflict("this is the last active admin: promote another admin first"));
        }
    };
    // The sessions are gone with the user; their tokens must not outlive them.
    state.revoke_token_logins(&sids, now).await;
    let event = Audit {
        action: AuditEvent::UserDeleted,
        actor_id: Some(&admin.user.id),
        target: Some(&id),
        outcome: AuditOutcome::Success,
    };
    record(&state, &ctx, event).await;
    Ok(StatusCode::NO_CONTENT)
}

//! `/ui/admin/users`: search by email with paging, a user's page, and the actions on a user
//! (lock, unlock, grant or revoke a role, reset the second factor, end every session, delete).
//!
//! Each action is one small form posting to its own path and calls `flows::admin_users`, the
//! code `PATCH` / `DELETE /admin/users/{id}` run: the rules about oneself and the last active
//! admin are decided there (and in the store's statements), never here. The page only *shows*
//! them in advance: a button the rule would refuse is disabled, with the reason next to it. A
//! hand-made POST past a disabled button meets the same refusal as the API (409 or 403 page).

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use http::Uri;
use maud::{Markup, html};
use rampart_core::clock::{now_ms, rfc3339};
use rampart_core::config::Roles;
use rampart_store::{EmailMatch, LockChange, UserRow};
use serde::Deserialize;

use super::{AdminForm, AdminVisitor, query, respond};
use crate::extract::{IdPath, RequestContext};
use crate::flows::admin_users::{self, Acting};
use crate::routes::admin::page::{self, invalid};
use crate::ui::forms::csrf_input;
use crate::ui::session::SignedIn;
use crate::{ApiError, AppState};

/// The console's page size when `limit` is not given: a screenful.
const PAGE: u32 = 25;
/// The search box is a substring of an address; longer than an address cannot match.
const MAX_SEARCH: usize = 254;

/// `GET /ui/admin/users?email=&cursor=&limit=`.
pub async fn list(
    State(state): State<AppState>,
    AdminVisitor(admin): AdminVisitor,
    uri: Uri,
) -> Result<Response, ApiError> {
    let q = page::params(&uri, &["email", "cursor", "limit"])?;
    let limit = match q.get("limit") {
        Some(_) => page::limit(q.get("limit"))?,
        None => PAGE,
    };
    let search = q.get("email").map(|s| s.trim()).unwrap_or_default();
    if search.chars().count() > MAX_SEARCH {
        return Err(invalid("email", "is longer than any address"));
    }
    let cursor = q.get("cursor").map(|c| crate::routes::admin::users::user_cursor(&state, c)).transpose()?;
    let email = if search.is_empty() { EmailMatch::Any } else { EmailMatch::Contains(search) };
    let mut rows = state.store.list_users(cursor.as_ref().map(|(at, id)| (*at, id.as_str())), email, limit + 1).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = rows.last().filter(|_| more).map(|u| {
        let c = page::encode_cursor(&state.cursors, "users", &format!("{}:{}", u.created_at, u.id));
        let limit = q.get("limit").map(String::as_str).unwrap_or_default();
        format!("/ui/admin/users{}", query(&[("email", search), ("limit", limit), ("cursor", &c)]))
    });
    let now = now_ms();
    let content = html! {
        h1 { "Users" }
        form method="get" action="/ui/admin/users" class="search" role="search" {
            div class="field" {
                label for="f-email" { "Email contains" }
                input id="f-email" name="email" type="search" value=(search) autocomplete="off";
            }
            button type="submit" { "Search" }
        }
        @if rows.is_empty() {
            p class="muted" { "No user matches." }
        } @else {
            div class="table-wrap" {
                table {
                    caption class="visually-hidden" { "Users, oldest first" }
                    thead { tr { th scope="col" { "Email" } th scope="col" { "Name" } th scope="col" { "Kind" } th scope="col" { "Roles" }
                        th scope="col" { "Status" } th scope="col" { "Created" } } }
                    tbody {
                        @for u in &rows {
                            tr {
                                td { a href={ "/ui/admin/users/" (u.id) } { (title(u)) } }
                                td { @if let Some(n) = &u.display_name { (n) } }
                                td { (kind(u)) }
                                td { (u.roles) }
                                td { (status(u, now)) }
                                td { (rfc3339(u.created_at)) }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(next) = next {
            p { a class="button secondary" href=(next) { "Next page" } }
        }
        (super::service_accounts::create_form(&state, &admin))
    };
    Ok(respond(&state, &admin, "Users", "/ui/admin/users", content))
}

/// How a user is named: the email, or a service account's name (it has no email).
fn title(u: &UserRow) -> &str {
    match (&u.display_name, u.is_service()) {
        (Some(name), true) => name,
        _ if u.email.is_empty() => "(no email)",
        _ => &u.email,
    }
}

/// A person or a service account (which cannot sign in and acts only through API keys).
fn kind(u: &UserRow) -> Markup {
    html! {
        @if u.is_service() { span class="badge" { "Service account" } } @else { "Person" }
    }
}

fn status(u: &UserRow, now: i64) -> Markup {
    html! {
        @if u.locked_until.is_some_and(|t| t > now) { span class="badge warn" { "Locked" } " " }
        @if u.mfa_enabled { span class="badge ok" { "2FA" } " " }
        @if !u.email_verified { span class="badge" { "Unverified" } }
    }
}

/// `GET /ui/admin/users/{id}`.
pub async fn show(
    State(state): State<AppState>,
    AdminVisitor(admin): AdminVisitor,
    IdPath(id): IdPath,
) -> Result<Response, ApiError> {
    let user = state.store.user_by_id(&id).await?.ok_or(ApiError::NotFound)?;
    let now = now_ms();
    let active_admins = state.store.count_active_admins(now).await?;
    let rules = Rules::of(&admin, &user, active_admins, now);
    let keys = if user.is_service() {
        Some(super::service_accounts::keys_section(&state, &admin, &user).await?)
    } else {
        None
    };
    let content = html! {
        p { a href="/ui/admin/users" { "← All users" } }
        h1 { (title(&user)) }
        dl class="facts" {
            dt { "Id" } dd { code { (user.id) } }
            dt { "Kind" } dd { (kind(&user)) }
            dt { "Display name" } dd { @match &user.display_name { Some(n) => (n), None => span class="muted" { "Not set" } } }
            dt { "Email verified" } dd { @if user.email_verified { "Yes" } @else { "No" } }
            dt { "Roles" } dd { (user.roles) }
            dt { "Two-step verification" } dd { @if user.mfa_enabled { "On" } @else { "Off" } }
            dt { "Status" } dd {
                @if rules.locked { "Locked until " (rfc3339(user.locked_until.unwrap_or_default())) } @else { "Active" }
            }
            dt { "Failed sign-ins" } dd { (user.failed_logins) }
            dt { "Created" } dd { (rfc3339(user.created_at)) }
        }
        @if rules.last_admin {
            p class="notice" id="last-admin" { "This is the last active admin. It cannot be locked, lose the admin role or be deleted until another admin exists." }
        }
        section class="card" aria-labelledby="access-title" {
            h2 id="access-title" { "Access" }
            @if rules.locked {
                (action(&admin, &user.id, "unlock", "Unlock", "secondary", None))
            } @else {
                (action(&admin, &user.id, "lock", "Lock account", "danger", rules.no_lock))
            }
            (action(&admin, &user.id, "sessions", "Sign out everywhere", "secondary", None))
            (action(&admin, &user.id, "mfa-reset", "Reset two-step verification", "secondary", rules.no_mfa_reset))
        }
        section class="card" aria-labelledby="roles-title" {
            h2 id="roles-title" { "Roles" }
            @for role in Roles::BUILT_IN.iter().copied().filter(|r| *r != "user").chain(state.settings.roles.declared.iter().map(String::as_str)) {
                @let held = user.has_role(role);
                @let refused = if held { rules.no_revoke(role) } else { rules.no_grant() };
                form method="post" action={ "/ui/admin/users/" (user.id) "/roles" } class="inline-action" {
                    (csrf_input(admin.csrf_token()))
                    input type="hidden" name="role" value=(role);
                    input type="hidden" name="grant" value=(if held { "false" } else { "true" });
                    button type="submit" class="secondary" disabled[refused.is_some()] aria-describedby=[refused.map(|_| format!("why-role-{role}"))] {
                        @if held { "Remove role " (role) } @else { "Grant role " (role) }
                    }
                    @if let Some(why) = refused { span class="hint" id={ "why-role-" (role) } { (why) } }
                }
            }
        }
        @if let Some(keys) = keys { (keys) }
        section class="card danger-zone" aria-labelledby="delete-title" {
            h2 id="delete-title" { "Delete" }
            p { "Deletes the account and ends its sessions. This cannot be undone." }
            (action(&admin, &user.id, "delete", "Delete user", "danger", rules.no_delete))
        }
    };
    Ok(respond(&state, &admin, "User", "/ui/admin/users", content))
}

/// What the rules will refuse, worked out for the page only (the flows decide again on POST).
struct Rules {
    locked: bool,
    is_self: bool,
    last_admin: bool,
    no_lock: Option<&'static str>,
    no_mfa_reset: Option<&'static str>,
    no_delete: Option<&'static str>,
}

impl Rules {
    fn of(admin: &SignedIn, user: &UserRow, active_admins: i64, now: i64) -> Self {
        let locked = user.locked_until.is_some_and(|t| t > now);
        let is_self = admin.user.id == user.id;
        let last_admin = user.has_role("admin") && !locked && active_admins <= 1;
        let no_lock = if is_self {
            Some("You cannot lock your own account.")
        } else if last_admin {
            Some(LAST_ADMIN_SENTENCE)
        } else {
            None
        };
        let no_mfa_reset =
            is_self.then_some("Reset your own second factor from your account page, or ask another admin.");
        let no_delete = last_admin.then_some(LAST_ADMIN_SENTENCE);
        Self { locked, is_self, last_admin, no_lock, no_mfa_reset, no_delete }
    }

    fn no_grant(&self) -> Option<&'static str> {
        self.is_self.then_some("You cannot change your own roles; ask another admin.")
    }

    fn no_revoke(&self, role: &str) -> Option<&'static str> {
        if self.is_self {
            self.no_grant()
        } else if role == "admin" && self.last_admin {
            Some(LAST_ADMIN_SENTENCE)
        } else {
            None
        }
    }
}

const LAST_ADMIN_SENTENCE: &str = "The last active admin: promote another admin first.";

/// One action's form: the CSRF token and a button, disabled with its reason when a rule refuses.
fn action(admin: &SignedIn, id: &str, path: &str, label: &str, class: &str, refused: Option<&str>) -> Markup {
    let why_id = format!("why-{path}");
    html! {
        form method="post" action={ "/ui/admin/users/" (id) "/" (path) } class="inline-action" {
            (csrf_input(admin.csrf_token()))
            button type="submit" class=(class) disabled[refused.is_some()] aria-describedby=[refused.map(|_| why_id.as_str())] { (label) }
            @if let Some(why) = refused { span class="hint" id=(why_id) { (why) } }
        }
    }
}

/// The forms with no field but the CSRF token.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoFields {}

fn back_to(id: &str) -> Response {
    Redirect::to(&format!("/ui/admin/users/{id}")).into_response()
}

/// `POST /ui/admin/users/{id}/lock`.
pub async fn lock(
    State(state): State<AppState>,
    ctx: RequestContext,
    IdPath(id): IdPath,
    AdminForm { admin, .. }: AdminForm<NoFields>,
) -> Result<Response, ApiError> {
    let by = Acting { admin_id: &admin.user.id, ctx: &ctx };
    admin_users::change_user(&state, by, &id, None, LockChange::Lock).await?;
    Ok(back_to(&id))
}

/// `POST /ui/admin/users/{id}/unlock`.
pub async fn unlock(
    State(state): State<AppState>,
    ctx: RequestContext,
    IdPath(id): IdPath,
    AdminForm { admin, .. }: AdminForm<NoFields>,
) -> Result<Response, ApiError> {
    let by = Acting { admin_id: &admin.user.id, ctx: &ctx };
    admin_users::change_user(&state, by, &id, None, LockChange::Unlock).await?;
    Ok(back_to(&id))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleForm {
    role: String,
    grant: bool,
}

/// `POST /ui/admin/users/{id}/roles`: grant or remove one role. The new list is the user's
/// current roles with that one change, handed to the same flow as `PATCH {roles}` (which
/// validates the names, refuses oneself and the last admin, and revokes the user's logins).
pub async fn set_role(
    State(state): State<AppState>,
    ctx: RequestContext,
    IdPath(id): IdPath,
    AdminForm { admin, form }: AdminForm<RoleForm>,
) -> Result<Response, ApiError> {
    let user = state.store.user_by_id(&id).await?.ok_or(ApiError::NotFound)?;
    let mut roles: Vec<String> = user.roles().into_iter().filter(|r| *r != form.role).collect();
    if form.grant {
        roles.push(form.role.clone());
    }
    let roles = admin_users::parse_roles(&roles, &state.settings.roles)?;
    let by = Acting { admin_id: &admin.user.id, ctx: &ctx };
    admin_users::change_user(&state, by, &id, Some(roles), LockChange::Keep).await?;
    Ok(back_to(&id))
}

/// `POST /ui/admin/users/{id}/mfa-reset`.
pub async fn reset_mfa(
    State(state): State<AppState>,
    ctx: RequestContext,
    IdPath(id): IdPath,
    AdminForm { admin, .. }: AdminForm<NoFields>,
) -> Result<Response, ApiError> {
    admin_users::reset_mfa(&state, Acting { admin_id: &admin.user.id, ctx: &ctx }, &id).await?;
    Ok(back_to(&id))
}

/// `POST /ui/admin/users/{id}/sessions`: ends every login of the user.
pub async fn end_sessions(
    State(state): State<AppState>,
    ctx: RequestContext,
    IdPath(id): IdPath,
    AdminForm { admin, .. }: AdminForm<NoFields>,
) -> Result<Response, ApiError> {
    admin_users::end_sessions(&state, Acting { admin_id: &admin.user.id, ctx: &ctx }, &id).await?;
    Ok(back_to(&id))
}

/// `POST /ui/admin/users/{id}/delete`. Deleting oneself ends the session this page runs on, so
/// that case goes to the sign-in page.
pub async fn delete(
    State(state): State<AppState>,
    ctx: RequestContext,
    IdPath(id): IdPath,
    AdminForm { admin, .. }: AdminForm<NoFields>,
) -> Result<Response, ApiError> {
    admin_users::delete_user(&state, Acting { admin_id: &admin.user.id, ctx: &ctx }, &id).await?;
    let to = if id == admin.user.id { "/ui/login" } else { "/ui/admin/users" };
    Ok(Redirect::to(to).into_response())
}

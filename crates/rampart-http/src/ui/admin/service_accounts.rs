//! Service accounts in the admin console: the create form on the users page
//! (`POST /ui/admin/service-accounts`, 303 to the account's page) and, on a service account's
//! page, its API keys: create (shown once) and revoke.
//!
//! Each goes through the code the JSON API runs: `flows::service_accounts::create` (as
//! `POST /admin/service-accounts`), `flows::api_keys::issue` (as
//! `POST /admin/users/{id}/api-keys`) and `flows::api_keys::revoke`. Keys are made and revoked
//! only for a service account: a person's id is 404, as on the API, so an admin cannot mint a key
//! in a person's name. The owner is always the account in the path, never a form field.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use rampart_core::config::Roles;

use super::AdminForm;
use crate::extract::{IdPath, RequestContext};
use crate::flows::api_keys::{self, KeyView};
use crate::flows::service_accounts;
use crate::routes::auth::audit_created;
use crate::ui::api_keys::{RevokeForm, Targets, issued_page, read_new_key, section};
use crate::ui::forms::{FormErrors, Input, csrf_input};
use crate::ui::session::SignedIn;
use crate::{ApiError, AppState};

/// The roles an admin can give: the built-in ones and the declared ones.
fn offered_roles(state: &AppState) -> Vec<String> {
    Roles::BUILT_IN.iter().map(|r| (*r).to_owned()).chain(state.settings.roles.declared.iter().cloned()).collect()
}

/// The create form, shown under the users list.
pub fn create_form(state: &AppState, admin: &SignedIn) -> Markup {
    html! {
        section class="card" aria-labelledby="new-sa-title" {
            h2 id="new-sa-title" { "New service account" }
            p { "An account for a script or another service: it cannot sign in and acts only through the API keys you make for it." }
            form class="stack" method="post" action="/ui/admin/service-accounts" novalidate {
                (csrf_input(admin.csrf_token()))
                (Input::new("name", "Service account name", "text").render(&FormErrors::none()))
                fieldset {
                    legend { "Roles" }
                    @for (i, role) in offered_roles(state).iter().enumerate() {
                        div class="check" {
                            input type="checkbox" id={ "f-sa-role-" (i) } name="role" value=(role) checked[role == "user"];
                            label for={ "f-sa-role-" (i) } { (role) }
                        }
                    }
                }
                div class="actions" { button type="submit" { "Create service account" } }
            }
        }
    }
}

/// `POST /ui/admin/service-accounts`: `name` and the checked `role`s; any other field is a 400.
pub async fn create(
    State(state): State<AppState>,
    ctx: RequestContext,
    AdminForm { admin, form }: AdminForm<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let unreadable = || ApiError::BadRequest("the form has a missing, repeated or unknown field".into());
    let (mut name, mut roles) = (None, Vec::new());
    for (k, v) in form {
        match k.as_str() {
            "name" if name.is_none() => name = Some(v),
            "role" => roles.push(v),
            _ => return Err(unreadable()),
        }
    }
    let name = name.ok_or_else(unreadable)?;
    let user = service_accounts::create(&state, &ctx, &admin.user.id, &name, &roles).await?;
    Ok(Redirect::to(&format!("/ui/admin/users/{}", user.id)).into_response())
}

/// The keys section of a service account's page.
pub async fn keys_section(
    state: &AppState,
    admin: &SignedIn,
    account: &rampart_store::UserRow,
) -> Result<Markup, ApiError> {
    let keys: Vec<KeyView> = state.store.api_keys_of(&account.id).await?.iter().map(KeyView::from).collect();
    let create = format!("/ui/admin/users/{}/api-keys", account.id);
    let revoke = format!("/ui/admin/users/{}/api-keys/revoke", account.id);
    let targets = Targets { create: &create, revoke: &revoke };
    Ok(section(state, account, &keys, admin.csrf_token(), &targets, &FormErrors::none()))
}

/// `POST /ui/admin/users/{id}/api-keys`: a key for the service account `id`, shown once.
pub async fn create_key(
    State(state): State<AppState>,
    ctx: RequestContext,
    IdPath(id): IdPath,
    AdminForm { admin, form }: AdminForm<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let account = service_accounts::account(&state, &id).await?;
    let issued = api_keys::issue(&state, &account, &admin.user.id, read_new_key(form)?).await?;
    audit_created(&state, &ctx, &admin.user.id, &issued).await;
    let back = format!("/ui/admin/users/{id}");
    Ok(issued_page(&state, &admin, &issued, &back, "/ui/admin"))
}

/// `POST /ui/admin/users/{id}/api-keys/revoke`: one of the service account's keys.
pub async fn revoke_key(
    State(state): State<AppState>,
    ctx: RequestContext,
    IdPath(id): IdPath,
    AdminForm { admin, form }: AdminForm<RevokeForm>,
) -> Result<Response, ApiError> {
    let account = service_accounts::account(&state, &id).await?;
    if uuid::Uuid::try_parse(&form.id).is_err()
        || !api_keys::revoke(&state, &ctx, &admin.user.id, &account.id, &form.id).await?
    {
        return Err(ApiError::NotFound);
    }
    Ok(Redirect::to(&format!("/ui/admin/users/{id}")).into_response())
}

//! API keys on the pages: the "API keys" section of `/ui/account` (and of a service account's
//! page in the admin console), its create form and its revoke buttons. Creating and revoking go
//! through `flows::api_keys` (`issue`, `revoke`), the functions `POST /auth/api-keys` and
//! `DELETE /auth/api-keys/{id}` call, so the narrowing rules, the expiry cap and the audit are
//! the API's own.
//!
//! The owner of a key made here is the signed-in visitor (or the service account in the path),
//! never a form field: the form is read as the fields it has and nothing else, so a smuggled
//! `user_id` is a 400 page and is never read (the CVE-2025-61928 class).
//!
//! A new key is answered with a 200 page that shows it, not a 303: it is stored only hashed, so
//! no later page could show it again (as with the TOTP recovery codes). `/ui` pages are all
//! `Cache-Control: no-store`.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use http::StatusCode;
use maud::{Markup, html};
use rampart_store::UserRow;
use secrecy::ExposeSecret;

use super::forms::{FormErrors, Input, SignedInForm, csrf_input, input_id};
use super::layout::Page;
use super::session::SignedIn;
use crate::extract::RequestContext;
use crate::flows::api_keys::{self, IssuedKey, KeyScope, KeyView, NewKeyRequest, VERBS};
use crate::{ApiError, AppState};

/// Where a section's forms post: the visitor's own keys, or a service account's.
pub struct Targets<'a> {
    pub create: &'a str,
    pub revoke: &'a str,
}

/// The list of keys and the create form. `owner` is whose roles the roles checkboxes offer.
pub fn section(
    state: &AppState,
    owner: &UserRow,
    keys: &[KeyView],
    csrf: &str,
    targets: &Targets<'_>,
    errors: &FormErrors,
) -> Markup {
    let roles_error = errors.for_field("roles");
    let scopes_error = scope_error(errors);
    html! {
        section class="card" aria-labelledby="api-keys-title" id="api-keys" {
            h2 id="api-keys-title" { "API keys" }
            p { "Keys let scripts and other services use the API as this account, within the limits you set. A key never does more than its owner can do now." }
            @if keys.is_empty() {
                p class="muted" id="no-api-keys" { "No API keys yet." }
            } @else {
                div class="table-wrap" {
                    table class="responsive" id="api-keys-table" {
                        thead { tr {
                            th scope="col" { "Name" } th scope="col" { "Key starts with" } th scope="col" { "Roles" }
                            th scope="col" { "Scopes" } th scope="col" { "Created" } th scope="col" { "Expires" }
                            th scope="col" { "Last used" } th scope="col" { span class="visually-hidden" { "Action" } }
                        } }
                        tbody {
                            @for k in keys {
                                tr {
                                    td class="wrap" data-label="Name" { (k.name) }
                                    td data-label="Key starts with" { code { (k.prefix) } }
                                    td data-label="Roles" { (k.roles.join(", ")) }
                                    td class="wrap" data-label="Scopes" {
                                        @match &k.scopes {
                                            None => span class="muted" { "All resources" },
                                            Some(scopes) => {
                                                @for s in scopes { div { (s.resource) ": " (s.actions.join(", ")) } }
                                            }
                                        }
                                    }
                                    td data-label="Created" { time datetime=(k.created_at) { (k.created_at) } }
                                    td data-label="Expires" { time datetime=(k.expires_at) { (k.expires_at) } }
                                    td data-label="Last used" {
                                        @match (&k.last_used_at, &k.last_used_ip) {
                                            (Some(at), ip) => {
                                                time datetime=(at) { (at) }
                                                @if let Some(ip) = ip { " from " (ip) }
                                            }
                                            (None, _) => span class="muted" { "Never" },
                                        }
                                    }
                                    td data-label="Action" {
                                        form method="post" action=(targets.revoke) {
                                            (csrf_input(csrf))
                                            input type="hidden" name="id" value=(k.id);
                                            button type="submit" class="danger" { "Revoke" span class="visually-hidden" { " the key " (k.name) } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h3 { "Create a key" }
            form class="stack" method="post" action=(targets.create) novalidate {
                (csrf_input(csrf))
                (Input::new("name", "Key name", "text").hint("What the key is for, e.g. \"nightly backup\".").render(errors))
                (Input::new("expires_in_days", "Expires in (days)", "text")
                    .numeric()
                    .hint("Leave empty for 90 days.")
                    .optional()
                    .render(errors))
                fieldset id=(input_id("roles")) tabindex="-1" aria-describedby=[roles_error.map(|_| format!("{}-error", input_id("roles")))] {
                    legend { "Roles (leave all unchecked for every role the owner has)" }
                    @if let Some(message) = roles_error {
                        p class="field-error" id={ (input_id("roles")) "-error" } { (message) }
                    }
                    @for (i, role) in owner.roles().iter().enumerate() {
                        div class="check" {
                            input type="checkbox" id={ (input_id("roles")) "-" (i) } name="role" value=(role);
                            label for={ (input_id("roles")) "-" (i) } { (role) }
                        }
                    }
                }
                // No declared resource: nothing to narrow to, so no empty group to show.
                @if !state.settings.resources.is_empty() {
                    fieldset id=(input_id("scopes")) tabindex="-1" aria-describedby=[scopes_error.map(|_| format!("{}-error", input_id("scopes")))] {
                        legend { "Scopes (leave all unchecked for every resource and verb)" }
                        @if let Some(message) = scopes_error {
                            p class="field-error" id={ (input_id("scopes")) "-error" } { (message) }
                        }
                        @for resource in state.settings.resources.0.keys() {
                            div class="check-row" {
                                span { (resource) }
                                @for verb in VERBS {
                                    @let id = format!("{}-{resource}-{verb}", input_id("scopes"));
                                    span class="check" {
                                        input type="checkbox" id=(id) name="scope" value={ (resource) ":" (verb) };
                                        label for=(id) { (verb) span class="visually-hidden" { " " (resource) } }
                                    }
                                }
                            }
                        }
                    }
                }
                div class="actions" { button type="submit" { "Create key" } }
            }
        }
    }
}

/// The first message about any `scopes[..]` field the flow refused.
fn scope_error(errors: &FormErrors) -> Option<&str> {
    errors.first_under("scopes")
}

/// The create form's fields, read by hand because checkboxes repeat (`role`, `scope`); any other
/// field, `user_id` included, refuses the whole form.
pub fn read_new_key(fields: Vec<(String, String)>) -> Result<NewKeyRequest, ApiError> {
    let unreadable = || ApiError::BadRequest("the form has a missing, repeated or unknown field".into());
    let (mut name, mut days, mut roles, mut scopes) = (None, None, Vec::new(), Vec::<KeyScope>::new());
    for (k, v) in fields {
        match k.as_str() {
            "name" if name.is_none() => name = Some(v),
            "expires_in_days" if days.is_none() => days = Some(v),
            "role" => roles.push(v),
            "scope" => {
                let (resource, verb) = v.split_once(':').ok_or_else(unreadable)?;
                match scopes.iter_mut().find(|s| s.resource == resource) {
                    Some(s) => s.actions.push(verb.to_owned()),
                    None => scopes.push(KeyScope { resource: resource.to_owned(), actions: vec![verb.to_owned()] }),
                }
            }
            _ => return Err(unreadable()),
        }
    }
    let expires_in_days = match days.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(d) => Some(d.parse::<u64>().map_err(|_| {
            ApiError::Validation(vec![crate::error::FieldError::new(
                "expires_in_days",
                "must be a whole number of days",
            )])
        })?),
    };
    Ok(NewKeyRequest {
        name: name.ok_or_else(unreadable)?,
        expires_in_days,
        // Nothing checked means "not narrowed", as leaving the field out of the JSON body does.
        roles: (!roles.is_empty()).then_some(roles),
        scopes: (!scopes.is_empty()).then_some(scopes),
    })
}

/// The page that shows a new key, this once.
pub fn issued_page(state: &AppState, me: &SignedIn, issued: &IssuedKey, back: &str, current: &str) -> Response {
    let content = html! {
        h1 { "Your new API key" }
        section class="card" aria-labelledby="new-key-title" {
            h2 id="new-key-title" { (issued.name) }
            p { "Copy the key now and keep it somewhere safe: it is shown only this once, and only a fingerprint of it is stored." }
            p { code id="new-api-key" class="wrap" { (issued.key.expose_secret()) } }
            p { button type="button" class="secondary" data-copy="new-api-key" hidden { "Copy the key" } }
            p class="muted" { "Expires " time datetime=(issued.expires_at) { (issued.expires_at) } "." }
            p { a class="button" href=(back) { "Done" } }
        }
    };
    Page::signed_in("New API key", me, current).respond(state, StatusCode::OK, content)
}

/// `POST /ui/account/api-keys`: a key owned by the visitor.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn create(
    State(state): State<AppState>,
    ctx: RequestContext,
    SignedInForm { signed_in: me, form }: SignedInForm<Vec<(String, String)>>,
) -> Response {
    let req = match read_new_key(form) {
        Ok(req) => req,
        Err(e) => return super::account::failed(&state, &me, e).await,
    };
    match api_keys::issue(&state, &me.user, &me.user.id, req).await {
        Ok(issued) => {
            crate::routes::auth::audit_created(&state, &ctx, &me.user.id, &issued).await;
            issued_page(&state, &me, &issued, "/ui/account#api-keys", "/ui/account")
        }
        Err(e) => super::account::failed(&state, &me, e).await,
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeForm {
    pub id: String,
}

/// `POST /ui/account/api-keys/revoke`: one of the visitor's own keys; another user's is 404.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn revoke(
    State(state): State<AppState>,
    ctx: RequestContext,
    SignedInForm { signed_in: me, form }: SignedInForm<RevokeForm>,
) -> Response {
    // Not a key id at all: the same answer as another user's key, and no statement run.
    if uuid::Uuid::try_parse(&form.id).is_err() {
        return super::account::failed(&state, &me, ApiError::NotFound).await;
    }
    match api_keys::revoke(&state, &ctx, &me.user.id, &me.user.id, &form.id).await {
        Ok(true) => Redirect::to("/ui/account?notice=api_key_revoked").into_response(),
        Ok(false) => super::account::failed(&state, &me, ApiError::NotFound).await,
        Err(e) => super::account::failed(&state, &me, e).await,
    }
}

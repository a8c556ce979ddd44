//! `/ui/admin`: the admin console, for role `admin` only.
//!
//! Gating, the same as the JSON `/admin` routes but as pages: an anonymous visitor (or one whose
//! session ended) gets a 303 to `/ui/login`, a signed-in visitor without the role a 403 page
//! (audited `authz_denied`, repeats coalesced, exactly as `RequireRole` does). Every page takes
//! [`AdminVisitor`] and every form [`AdminForm`], so no handler here can run without the check.
//! Only the session cookie counts (see `session::SignedIn`): a bearer token or an API key opens
//! no page.
//!
//! Every action goes through the code the JSON API runs: `flows::admin_users` for users,
//! `flows::service_accounts` and `flows::api_keys` for service accounts and their keys, the
//! store's audit page, the record API's own functions (policy, scope, field rules) for records. Every POST carries the session's
//! `csrf_token` (checked by `forms::SignedInForm`) and answers 303 to a page; a refusal is an
//! error page with the API's 4xx status and words.
//!
//! Everything shown here can be attacker-chosen text (emails, display names, user agents, record
//! fields, query parameters echoed in filters): maud escapes every `(value)`, and nothing here
//! uses `PreEscaped`.

pub mod audit;
pub mod keys;
pub mod overview;
pub mod policy;
pub mod records;
pub mod service_accounts;
pub mod users;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::request::Parts;
use maud::{Markup, html};
use serde::de::DeserializeOwned;

use super::PAGE;
use super::forms::SignedInForm;
use super::layout::{Page, Width};
use super::session::SignedIn;
use crate::extract::RequestContext;
use crate::routes::route_policy::Routes;
use crate::{ApiError, AppState};

/// The console's pages, nested under `/ui/admin`.
pub fn routes() -> Routes {
    Routes::new()
        .route("/", PAGE, get(overview::show))
        .route("/users", PAGE, get(users::list))
        .route("/users/{id}", PAGE, get(users::show))
        .route("/users/{id}/lock", PAGE, post(users::lock))
        .route("/users/{id}/unlock", PAGE, post(users::unlock))
        .route("/users/{id}/roles", PAGE, post(users::set_role))
        .route("/users/{id}/mfa-reset", PAGE, post(users::reset_mfa))
        .route("/users/{id}/sessions", PAGE, post(users::end_sessions))
        .route("/users/{id}/delete", PAGE, post(users::delete))
        .route("/users/{id}/api-keys", PAGE, post(service_accounts::create_key))
        .route("/users/{id}/api-keys/revoke", PAGE, post(service_accounts::revoke_key))
        .route("/service-accounts", PAGE, post(service_accounts::create))
        .route("/audit", PAGE, get(audit::list))
        .route("/policy", PAGE, get(policy::show))
        .route("/keys", PAGE, get(keys::show))
        .route("/records", PAGE, get(records::index))
        .route("/records/{resource}", PAGE, get(records::list))
        .route("/records/{resource}/{id}", PAGE, get(records::show))
        .route("/records/{resource}/{id}/edit", PAGE, post(records::edit))
        .route("/records/{resource}/{id}/delete", PAGE, post(records::delete))
}

/// A signed-in visitor holding role `admin`.
pub struct AdminVisitor(pub SignedIn);

/// The refusal of a signed-in visitor without the role: the API's 403, as a page.
const NOT_ADMIN: ApiError = ApiError::Forbidden("this page is for administrators");

impl FromRequestParts<AppState> for AdminVisitor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let visitor = SignedIn::from_request_parts(parts, state).await?;
        if visitor.user.has_role("admin") {
            return Ok(Self(visitor));
        }
        note_denial(state, parts.extensions.get::<RequestContext>(), &visitor);
        Err(NOT_ADMIN.into_response())
    }
}

/// A form posted by an admin: the session's CSRF token checked first (nothing is done for a
/// forged form, whoever's session it rides), then the role.
pub struct AdminForm<T> {
    pub admin: SignedIn,
    pub form: T,
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for AdminForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let ctx = req.extensions().get::<RequestContext>().cloned();
        let SignedInForm { signed_in, form } = SignedInForm::<T>::from_request(req, state).await?;
        if !signed_in.user.has_role("admin") {
            note_denial(state, ctx.as_ref(), &signed_in);
            return Err(NOT_ADMIN.into_response());
        }
        Ok(Self { admin: signed_in, form })
    }
}

/// A signed-in user probing the console is worth a line in the audit log, as on the API.
fn note_denial(state: &AppState, ctx: Option<&RequestContext>, visitor: &SignedIn) {
    if let Some(ctx) = ctx {
        state.denials.note(ctx, Some(&visitor.user.id), "role", "role:admin".to_owned());
    }
}

/// The frame of a console page: full width, the console's own navigation above the content.
pub fn respond(state: &AppState, admin: &SignedIn, title: &str, current: &str, content: Markup) -> Response {
    let body = html! {
        nav class="sub-nav" aria-label="Admin" {
            ul {
                @for (href, label) in SECTIONS {
                    li { a href=(href) aria-current=[(*href == current).then_some("page")] { (label) } }
                }
            }
        }
        (content)
    };
    Page::signed_in(title, admin, "/ui/admin").width(Width::Wide).respond(state, http::StatusCode::OK, body)
}

const SECTIONS: &[(&str, &str)] = &[
    ("/ui/admin", "Overview"),
    ("/ui/admin/users", "Users"),
    ("/ui/admin/audit", "Audit log"),
    ("/ui/admin/records", "Records"),
    ("/ui/admin/policy", "Access policy"),
    ("/ui/admin/keys", "Signing keys"),
];

/// A query string built from pairs, every value encoded (for "next page" links that keep the
/// filters). maud escapes the result again as an attribute, which is right for `&`.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let kept: Vec<(&str, &str)> = pairs.iter().copied().filter(|(_, v)| !v.is_empty()).collect();
    serde_urlencoded::to_string(kept).map(|q| if q.is_empty() { q } else { format!("?{q}") }).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_page_links_encode_every_value_and_drop_empty_ones() {
        assert_eq!(query(&[("email", ""), ("cursor", "")]), "");
        let q = query(&[("email", "a&b=c\"<x>"), ("action", ""), ("cursor", "AB_c-1")]);
        assert_eq!(q, "?email=a%26b%3Dc%22%3Cx%3E&cursor=AB_c-1");
    }
}

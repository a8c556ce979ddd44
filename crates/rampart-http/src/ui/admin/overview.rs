//! `/ui/admin`: the console's start: health, readiness (the same cached verdict `/readyz`
//! serves, so opening this page cannot become a database load), and what is configured.

use axum::extract::State;
use axum::response::Response;
use maud::html;
use rampart_core::clock::now_ms;

use super::{AdminVisitor, respond};
use crate::routes::health::check_dependencies;
use crate::{ApiError, AppState};

/// `GET /ui/admin`.
pub async fn show(State(state): State<AppState>, AdminVisitor(admin): AdminVisitor) -> Result<Response, ApiError> {
    let ready = state.readiness.get_or_check(|| check_dependencies(&state)).await;
    let now = now_ms();
    let active_admins = state.store.count_active_admins(now).await?;
    let keys = state.tokens.ring().summary(now);
    let content = html! {
        h1 { "Overview" }
        dl class="facts" {
            dt { "Health" } dd { span class="badge ok" { "ok" } }
            dt { "Readiness" } dd {
                @match &ready {
                    // The verdict lists the dependencies checked; the failure's words go to the
                    // log only, as on /readyz.
                    Ok(checks) => { span class="badge ok" { "ready" } " " span class="muted" { (checks) } }
                    Err(_) => { span class="badge warn" { "not ready" } " " span class="muted" { "see the server log" } }
                }
            }
            dt { "Database" } dd { (format!("{:?}", state.store.backend())) }
            dt { "Declared resources" } dd { (state.settings.resources.len()) }
            dt { "Active admins" } dd { (active_admins) }
            dt { "Signing keys" } dd { (keys.len()) }
        }
        ul class="link-list" {
            li { a href="/ui/admin/users" { "Find a user" } }
            li { a href="/ui/admin/audit" { "Read the audit log" } }
            li { a href="/ui/admin/policy" { "Review the access policy" } }
            li { a href="/ui/admin/keys" { "Check the signing keys" } }
        }
    };
    Ok(respond(&state, &admin, "Admin", "/ui/admin", content))
}

//! The router: every route of the contract with its policy, built by this one function.

pub(crate) mod admin;
pub(crate) mod audit_trail;
pub(crate) mod auth;
pub(crate) mod health;
pub(crate) mod resources;
pub(crate) mod route_policy;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::get;

use crate::extract::{Admin, require};
use crate::{ApiError, AppState};
pub use route_policy::RouteTable;
use route_policy::{Budget, RoutePolicy, Routes};

/// The probes: no budget at all (see [`Budget::Exempt`]).
const PROBE: RoutePolicy = RoutePolicy::JSON.budget(Budget::Exempt);
/// Public documents: the JWKS (which sets its own `Cache-Control`) and the OpenAPI document.
const PUBLIC: RoutePolicy = RoutePolicy::JSON;
/// A path no route matched and under no area: a plain JSON 404.
const OUTSIDE: RoutePolicy = RoutePolicy::JSON;

/// The router and the policy of each of its routes (see `route_policy`).
pub fn router(state: AppState) -> (Router, RouteTable) {
    let gate = state.clone();
    declared(state.settings.ui.enabled, |admin| admin.route_layer(from_fn_with_state(gate, require::<Admin>)))
        .with_state(state)
}

/// Every route, with its policy. `admin_gate` puts the role check in front of the `/admin`
/// routes (see `admin`); `pages_on` is `[ui] enabled`.
fn declared(pages_on: bool, admin_gate: impl FnOnce(Routes) -> Routes) -> Routes {
    // Off: not routed at all, so every `/ui` path is the fallback's 404, with the pages' headers.
    let pages = if pages_on { crate::ui::routes() } else { crate::ui::routes().unrouted() };
    Routes::new()
        .merge(pages)
        .route("/healthz", PROBE, get(health::healthz))
        .route("/readyz", PROBE, get(health::readyz))
        .route("/.well-known/jwks.json", PUBLIC, get(jwks))
        .route("/openapi.json", PUBLIC, get(openapi))
        .nest("/auth", auth::ACCOUNT, auth::routes())
        .nest("/admin", admin::ADMIN, admin::routes(admin_gate))
        .nest("/api", resources::RECORDS, resources::routes())
        .fallback(OUTSIDE, not_found)
}

/// The public keys that verify access tokens: the current one, the next (published before it
/// signs) and retiring ones until their last token expires.
async fn jwks(axum::extract::State(state): axum::extract::State<AppState>) -> impl axum::response::IntoResponse {
    let body = state.tokens.ring().jwks(rampart_core::clock::now_ms());
    ([(http::header::CACHE_CONTROL, "public, max-age=60")], axum::Json(body))
}

async fn openapi(axum::extract::State(state): axum::extract::State<AppState>) -> impl axum::response::IntoResponse {
    ([(http::header::CONTENT_TYPE, "application/json")], state.openapi.clone())
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

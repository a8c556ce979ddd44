//! The router: every route of the contract, built by this one function.

pub(crate) mod admin;
pub(crate) mod audit_trail;
pub(crate) mod auth;
pub(crate) mod health;
pub(crate) mod resources;

use axum::Router;
use axum::routing::get;

use crate::{ApiError, AppState};

pub fn router(state: AppState) -> Router {
    // Off: not routed at all, so every `/ui` path is the fallback's 404.
    let ui = state.settings.ui.enabled.then(crate::ui::router);
    let router = match ui {
        Some(pages) => pages,
        None => Router::new(),
    };
    router
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/openapi.json", get(openapi))
        .nest("/auth", auth::router())
        .nest("/admin", admin::router(state.clone()))
        .nest("/api", resources::router())
        .fallback(not_found)
        .with_state(state)
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

//! The router: every route of the contract, built by this one function.

mod audit;
mod auth;
mod health;

use axum::Router;
use axum::routing::get;

use crate::{ApiError, AppState};

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .nest("/auth", auth::router())
        .fallback(not_found)
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

//! Liveness and readiness probes.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::{ApiError, AppState};

/// Liveness: the process answers. Touches nothing else.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the database answers. 503 problem otherwise, without the driver's words.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.store.ping().await.map_err(|e| ApiError::Unavailable(format!("readiness: database: {e}")))?;
    Ok(Json(json!({ "status": "ok", "checks": { "database": "ok" } })))
}

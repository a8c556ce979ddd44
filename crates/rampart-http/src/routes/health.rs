//! Liveness and readiness probes.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::{ApiError, AppState};

/// Liveness: the process answers. Touches nothing else.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the database answers, and Redis when one is configured. 503 problem otherwise,
/// without the driver's words (the log says which dependency and why). While Redis is down the
/// server still answers, on per-instance limits (see `limit::redis`), but it is not ready: a load
/// balancer should prefer an instance that shares the deployment's state.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.store.ping().await.map_err(|e| ApiError::Unavailable(format!("readiness: database: {e}")))?;
    let mut checks = json!({ "database": "ok" });
    if state.config.redis.url.is_some() {
        state.limiter.ping().await.map_err(|e| ApiError::Unavailable(format!("readiness: redis (limits): {e}")))?;
        state
            .revocations
            .ping()
            .await
            .map_err(|e| ApiError::Unavailable(format!("readiness: redis (revocations): {e}")))?;
        checks["redis"] = json!("ok");
    }
    Ok(Json(json!({ "status": "ok", "checks": checks })))
}

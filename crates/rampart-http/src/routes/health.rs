//! Liveness and readiness probes.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::readiness::Verdict;
use crate::{ApiError, AppState};

/// Dependency checks actually made by `/readyz` (not probes answered from the cache).
pub const READINESS_CHECKS: &str = "rampart_readiness_checks_total";

/// Liveness: the process answers. Touches nothing else.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the database answers, and Redis when one is configured. 503 problem otherwise,
/// without the driver's words (the log says which dependency and why). While Redis is down the
/// server still answers, on per-instance limits (see `limit::redis`), but it is not ready: a load
/// balancer should prefer an instance that shares the deployment's state.
///
/// The verdict is cached for a second (see `readiness`), so probes cannot be turned into a
/// database load.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let checks = state.readiness.get_or_check(|| check_dependencies(&state)).await.map_err(ApiError::Unavailable)?;
    Ok(Json(json!({ "status": "ok", "checks": checks })))
}

/// One round trip to each dependency. Counted, so that an operator (and the tests) can see how
/// often probes really reach the database.
pub(crate) async fn check_dependencies(state: &AppState) -> Verdict {
    metrics::counter!(READINESS_CHECKS).increment(1);
    state.store.ping().await.map_err(|e| format!("readiness: database: {e}"))?;
    if state.settings.redis.url.is_none() {
        return Ok(json!({ "database": "ok" }));
    }
    state.limiter.ping().await.map_err(|e| format!("readiness: redis (limits): {e}"))?;
    state.revocations.ping().await.map_err(|e| format!("readiness: redis (revocations): {e}"))?;
    Ok(json!({ "database": "ok", "redis": "ok" }))
}

//! Prometheus metrics, served on `server.metrics_listen` only, never on the public listener: they
//! describe traffic and security events (refusals, lockouts, token reuse), which is operator
//! business, not a client's.
//!
//! Labels are bounded on purpose: a route is its template (`/api/{resource}/{id}`, never the
//! concrete path), a method one of a fixed few, an audit action one of docs/api.md's names. No
//! label ever holds a user id, an address, an email or a token.

mod request_handles;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const REQUESTS: &str = "rampart_http_requests_total";
pub const DURATION: &str = "rampart_http_request_duration_seconds";
/// Access-log lines (`info` and below) dropped because stdout could not keep up; see the
/// binary's `telemetry.rs`. Warnings and errors are never dropped.
pub const LOG_LINES_DROPPED: &str = "rampart_log_lines_dropped_total";

/// Installs the process-wide recorder. Before it is installed every metric call is a no-op.
pub fn install() -> Result<PrometheusHandle, String> {
    let buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(DURATION.into()), &buckets)
        .map_err(|e| format!("metrics: {e}"))?
        .install_recorder()
        .map_err(|e| format!("metrics: {e}"))?;
    // Histograms are kept in lock-free buffers that need draining now and then.
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

/// The metrics listener's whole application: `GET /metrics`, and 404 for anything else.
/// `log_lines_dropped` reads the logger's count of dropped lines, as of each scrape.
pub fn router(handle: PrometheusHandle, log_lines_dropped: impl Fn() -> u64 + Send + Sync + 'static) -> Router {
    let dropped = metrics::counter!(LOG_LINES_DROPPED);
    // Present from the start, at 0: an alert on its increase needs a series to compare with.
    dropped.absolute(log_lines_dropped());
    let log_lines_dropped = std::sync::Arc::new(log_lines_dropped);
    Router::new().route(
        "/metrics",
        get(move || {
            dropped.absolute(log_lines_dropped());
            let body = handle.render();
            async move { ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body) }
        }),
    )
}

/// One answered request. `route` is the matched route template, or `None` when no route matched.
pub fn record_request(method: &http::Method, route: Option<&str>, status: http::StatusCode, elapsed: Duration) {
    request_handles::record(method, route.unwrap_or("unmatched"), status, elapsed);
}

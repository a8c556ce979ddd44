//! Prometheus metrics, served on `server.metrics_listen` only, never on the public listener: they
//! describe traffic and security events (refusals, lockouts, token reuse), which is operator
//! business, not a client's.
//!
//! Labels are bounded on purpose: a route is its template (`/api/{resource}/{id}`, never the
//! concrete path), a method one of a fixed few, an audit action one of docs/api.md's names. No
//! label ever holds a user id, an address, an email or a token.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const REQUESTS: &str = "rampart_http_requests_total";
pub const DURATION: &str = "rampart_http_request_duration_seconds";

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
pub fn router(handle: PrometheusHandle) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let body = handle.render();
            async move { ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body) }
        }),
    )
}

/// One answered request.
pub fn record_request(method: &http::Method, route: &str, status: u16, elapsed: Duration) {
    let method = match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PATCH => "PATCH",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let route = route.to_owned();
    metrics::counter!(REQUESTS, "method" => method, "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!(DURATION, "method" => method, "route" => route).record(elapsed.as_secs_f64());
}

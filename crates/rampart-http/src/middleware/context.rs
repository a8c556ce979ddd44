//! Request id, client IP, tracing span and the access log.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use tracing::Instrument;

use crate::AppState;
use crate::error::ServerFault;
use crate::extract::{ClientIp, ProxyTrust, RequestContext};

const REQUEST_ID: &str = "x-request-id";

/// An incoming request id is echoed only if it is short and plain, so that a client cannot inject
/// log lines or header junk through it.
fn well_formed_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    let ok = (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    ok.then(|| s.to_owned())
}

pub async fn context(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id =
        req.headers().get(REQUEST_ID).and_then(well_formed_id).unwrap_or_else(rampart_core::opaque_token::new_id);
    let peer = req.extensions().get::<ClientIp>().map(|c| c.0.ip());
    let ip = peer
        .map(|p| ProxyTrust::of(&state.settings.server).client_ip(p, req.headers()))
        .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    let user_agent = req
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(256).collect::<String>());
    let method = req.method().clone();
    // The path only: query strings can carry tokens. Bounded, and JSON-escaped by the formatter.
    let path: String = req.uri().path().chars().take(256).collect();
    req.extensions_mut().insert(RequestContext { request_id: request_id.clone(), ip, user_agent });

    // The route template, for the metrics (a concrete path would be one label per record id).
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let span = tracing::info_span!("request", request_id = %request_id);
    let mut res = next.run(req).instrument(span.clone()).await;
    crate::metrics::record_request(&method, &route, res.status().as_u16(), started.elapsed());
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    let fault = res.extensions_mut().remove::<ServerFault>();
    span.in_scope(|| {
        match fault {
            Some(ServerFault { internal: true, cause }) => tracing::error!(cause = %cause, "internal error"),
            Some(ServerFault { internal: false, cause }) => tracing::warn!(cause = %cause, "service unavailable"),
            None => {}
        }
        tracing::info!(
            method = %method,
            path = %path,
            status = res.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            client_ip = %ip,
            "request"
        );
    });
    res
}

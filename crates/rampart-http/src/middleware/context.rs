//! Request id, client IP, tracing span, the request metrics and the access log.
//!
//! This runs on every request, so it borrows what it can (issue 17): the id and the user agent
//! share the request's buffers (see [`RequestId`], [`UserAgent`]), the path is read from a
//! cheap clone of the URI, the route template is the router's shared string, and the metric
//! handles are looked up, not built (`metrics::record_request`).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::AppState;
use crate::error::ServerFault;
use crate::extract::{ClientIp, ProxyTrust, REQUEST_ID, RequestContext, RequestId, UserAgent};

/// The longest path the access log shows, in characters.
const LOGGED_PATH_CHARS: usize = 256;

pub async fn context(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = RequestId::of(req.headers());
    let peer = req.extensions().get::<ClientIp>().map(|c| c.0.ip());
    let ip = peer
        .map(|p| ProxyTrust::of(&state.settings.server).client_ip(p, req.headers()))
        .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    let user_agent = UserAgent::of(req.headers());
    let method = req.method().clone();
    // Shares the request's buffer; only its path is logged (query strings can carry tokens).
    let uri = req.uri().clone();
    // The route template, for the metrics (a concrete path would be one label per record id).
    let route = req.extensions().get::<MatchedPath>().cloned();
    let span = tracing::info_span!("request", request_id = %request_id);
    req.extensions_mut().insert(RequestContext { request_id: request_id.clone(), ip, user_agent });

    let mut res = next.run(req).instrument(span.clone()).await;
    crate::metrics::record_request(&method, route.as_ref().map(MatchedPath::as_str), res.status(), started.elapsed());
    res.headers_mut().insert(REQUEST_ID, request_id.header_value());
    let fault = res.extensions_mut().remove::<ServerFault>();
    span.in_scope(|| {
        match fault {
            Some(ServerFault { internal: true, cause }) => tracing::error!(cause = %cause, "internal error"),
            Some(ServerFault { internal: false, cause }) => tracing::warn!(cause = %cause, "service unavailable"),
            None => {}
        }
        tracing::info!(
            method = %method,
            // Bounded, and JSON-escaped by the formatter.
            path = cut(uri.path(), LOGGED_PATH_CHARS),
            status = res.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            client_ip = %ip,
            "request"
        );
    });
    res
}

/// The first `max` characters of `s`, borrowed.
fn cut(s: &str, max: usize) -> &str {
    s.char_indices().nth(max).and_then(|(end, _)| s.get(..end)).unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::cut;

    #[test]
    fn cut_keeps_whole_characters() {
        assert_eq!(cut("/short", 256), "/short");
        assert_eq!(cut(&"a".repeat(300), 256).len(), 256);
        let wide = "é".repeat(300);
        assert_eq!(cut(&wide, 256).chars().count(), 256);
    }
}

//! Request id, client IP, the request metrics and the access log: the first and last work of
//! the outermost layer (`middleware::outer`).
//!
//! This runs on every request, so it borrows what it can (issue 17): the id and the user agent
//! share the request's buffers (see [`RequestId`], [`UserAgent`]), the path is read from a
//! cheap clone of the URI, the route template is the router's shared string, and the metric
//! handles are looked up, not built (`metrics::record_request`).

use std::net::IpAddr;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use http::{Method, Uri};

use crate::AppState;
use crate::error::ServerFault;
use crate::extract::{ClientIp, ProxyTrust, REQUEST_ID, RequestContext, RequestId, UserAgent};

/// The longest path the access log shows, in characters.
const LOGGED_PATH_CHARS: usize = 256;

/// What the outermost layer learns of a request before the rest runs, for the access log.
pub struct Context {
    started: Instant,
    request_id: RequestId,
    ip: IpAddr,
    method: Method,
    /// Shares the request's buffer; only its path is logged (query strings can carry tokens).
    uri: Uri,
    /// The route template, for the metrics (a concrete path would be one label per record id).
    route: Option<MatchedPath>,
}

impl Context {
    /// Reads the request id and the client IP, and hands them to the layers and handlers below
    /// as the request's [`RequestContext`].
    pub fn begin(state: &AppState, req: &mut Request) -> Self {
        let started = Instant::now();
        let request_id = RequestId::of(req.headers());
        let peer = req.extensions().get::<ClientIp>().map(|c| c.0.ip());
        let ip = peer
            .map(|p| ProxyTrust::of(&state.settings.server).client_ip(p, req.headers()))
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let user_agent = UserAgent::of(req.headers());
        let method = req.method().clone();
        let uri = req.uri().clone();
        let route = req.extensions().get::<MatchedPath>().cloned();
        req.extensions_mut().insert(RequestContext { request_id: request_id.clone(), ip, user_agent });
        Self { started, request_id, ip, method, uri, route }
    }

    pub fn request_id(&self) -> &RequestId {
        &self.request_id
    }

    /// Records the request's metrics, echoes its id, and writes the fault line if any and the
    /// access line, each with the request id as a field of its own (this runs outside the
    /// request's `log_context::scope`).
    pub fn finish(self, mut res: Response) -> Response {
        let Self { started, request_id, ip, method, uri, route } = self;
        crate::metrics::record_request(
            &method,
            route.as_ref().map(MatchedPath::as_str),
            res.status(),
            started.elapsed(),
        );
        let fault = res.extensions_mut().remove::<ServerFault>();
        match fault {
            Some(ServerFault { internal: true, cause }) => {
                tracing::error!(request_id = &*request_id, cause = %cause, "internal error")
            }
            Some(ServerFault { internal: false, cause }) => {
                tracing::warn!(request_id = &*request_id, cause = %cause, "service unavailable")
            }
            None => {}
        }
        tracing::info!(
            request_id = &*request_id,
            method = %method,
            // Bounded, and JSON-escaped by the formatter.
            path = cut(uri.path(), LOGGED_PATH_CHARS),
            status = res.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            client_ip = %ip,
            "request"
        );
        res.headers_mut().insert(REQUEST_ID, request_id.into_header_value());
        res
    }
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

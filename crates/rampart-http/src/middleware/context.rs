//! Request id, client IP, the request metrics and the access log: the first and last work of
//! the outermost layer (`middleware::outer`).
//!
//! This runs on every request, so it borrows what it can (issue 17): the id and the user agent
//! share the request's buffers (see [`RequestId`], [`UserAgent`]), the path is read from a
//! cheap clone of the URI, the route template is the router's shared string, and the metric
//! handles are looked up, not built (`metrics::record_request`).

use std::net::IpAddr;
use std::sync::Arc;
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
    route: Option<Template>,
}

/// A route template: the one axum matched, or for a request answered before routing
/// (`middleware::front`) the route's own.
enum Template {
    Matched(MatchedPath),
    Known(Arc<str>),
}

impl Template {
    fn as_str(&self) -> &str {
        match self {
            Self::Matched(m) => m.as_str(),
            Self::Known(t) => t,
        }
    }
}

impl Context {
    /// Reads the request id and the client IP, and hands them to the layers and handlers below
    /// as the request's [`RequestContext`].
    pub fn begin(state: &AppState, req: &mut Request) -> Self {
        let route = req.extensions().get::<MatchedPath>().cloned().map(Template::Matched);
        Self::begin_at(state, req, route)
    }

    /// [`Context::begin`] for a request answered before routing, as the route `template`.
    pub fn begin_before_routing(state: &AppState, req: &mut Request, template: Arc<str>) -> Self {
        Self::begin_at(state, req, Some(Template::Known(template)))
    }

    fn begin_at(state: &AppState, req: &mut Request, route: Option<Template>) -> Self {
        let started = Instant::now();
        let request_id = RequestId::of(req.headers());
        let ip = client_ip(state, req);
        let user_agent = UserAgent::of(req.headers());
        let method = req.method().clone();
        let uri = req.uri().clone();
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
        let elapsed = started.elapsed();
        crate::metrics::record_request(&method, route.as_ref().map(Template::as_str), res.status(), elapsed);
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
            method = method.as_str(),
            // Bounded, and JSON-escaped by the formatter.
            path = cut(uri.path(), LOGGED_PATH_CHARS),
            status = res.status().as_u16(),
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            client_ip = IpText::of(ip).as_str(),
            "request"
        );
        res.headers_mut().insert(REQUEST_ID, request_id.into_header_value());
        res
    }
}

/// The client's address: the peer's, or through trusted proxies only the one they vouch for.
pub fn client_ip(state: &AppState, req: &Request) -> IpAddr {
    let peer = req.extensions().get::<ClientIp>().map(|c| c.0.ip());
    peer.map(|p| ProxyTrust::of(&state.settings.server).client_ip(p, req.headers()))
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

/// An address as `Display` writes it, for the access line. An IPv4 address (nearly every
/// client) is written digit by digit: through the formatting machinery it cost about a thousand
/// instructions, more than anything else on the line (callgrind, issue 17).
struct IpText {
    buf: [u8; 48],
    len: usize,
}

impl IpText {
    fn of(ip: IpAddr) -> Self {
        let mut text = Self { buf: [0; 48], len: 0 };
        match ip {
            IpAddr::V4(v4) => {
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        text.push(b'.');
                    }
                    if octet >= 100 {
                        text.push(b'0' + octet / 100);
                    }
                    if octet >= 10 {
                        text.push(b'0' + octet / 10 % 10);
                    }
                    text.push(b'0' + octet % 10);
                }
            }
            // At most 45 characters (`::ffff:255.255.255.255` and the like).
            IpAddr::V6(v6) => {
                let _ = std::fmt::Write::write_fmt(&mut text, format_args!("{v6}"));
            }
        }
        text
    }

    fn push(&mut self, byte: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = byte;
            self.len += 1;
        }
    }

    fn as_str(&self) -> &str {
        self.buf.get(..self.len).and_then(|b| std::str::from_utf8(b).ok()).unwrap_or_default()
    }
}

impl std::fmt::Write for IpText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let slot = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The first `max` characters of `s`, borrowed.
fn cut(s: &str, max: usize) -> &str {
    s.char_indices().nth(max).and_then(|(end, _)| s.get(..end)).unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::{IpText, cut};

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        let mut addresses: Vec<IpAddr> = ["0.0.0.0", "127.0.0.1", "9.10.99.100", "255.255.255.255", "192.0.2.7"]
            .into_iter()
            .chain(["::", "::1", "2001:db8::8a2e:370:7334", "::ffff:192.0.2.1", "fe80::1:2:3:4:5"])
            .chain(["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "0:0:0:0:0:ffff:255.255.255.255"])
            .map(|a| a.parse().unwrap())
            .collect();
        addresses.extend((0..=255u8).map(|o| IpAddr::from([o, 255 - o, o / 3, o.wrapping_mul(7)])));
        for ip in addresses {
            assert_eq!(IpText::of(ip).as_str(), ip.to_string());
        }
    }

    #[test]
    fn cut_keeps_whole_characters() {
        assert_eq!(cut("/short", 256), "/short");
        assert_eq!(cut(&"a".repeat(300), 256).len(), 256);
        let wide = "é".repeat(300);
        assert_eq!(cut(&wide, 256).chars().count(), 256);
    }
}

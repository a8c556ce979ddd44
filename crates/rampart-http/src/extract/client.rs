//! Who is on the other end: the request id and the client IP.
//!
//! The client IP is the socket peer, unless that peer is a trusted proxy: then it is the
//! rightmost address of the one configured forwarding header (`server.trusted_header`) that is
//! not itself a trusted proxy. Addresses to the left of it were written by the client and prove
//! nothing, so a client cannot pick its own IP (and with it a fresh rate-limit budget, or a forged
//! audit address) by sending the header itself. Only the configured header is read: a proxy that
//! writes `Forwarded` passes a client's `X-Forwarded-For` through untouched, so reading that one
//! too would hand the choice back to the client.

use std::net::{IpAddr, SocketAddr};

use axum::extract::FromRequestParts;
use http::request::Parts;
use http::{HeaderMap, HeaderValue};
use rampart_core::config::{ServerSettings, TrustedHeader, TrustedProxies};

use super::RequestId;
use crate::ApiError;

/// Set by the outermost middleware on every request. Cheap to clone: the id and the user agent
/// share the request's buffers.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: RequestId,
    pub ip: IpAddr,
    pub user_agent: Option<UserAgent>,
}

/// The client's `User-Agent` as sent, read cut to [`UserAgent::MAX_CHARS`]. Only a value of
/// visible ASCII is taken (any other is as good as absent), so the cut is a byte count. Kept as
/// the header value: nothing is copied unless something stores it.
#[derive(Debug, Clone)]
pub struct UserAgent(HeaderValue);

impl UserAgent {
    pub const MAX_CHARS: usize = 256;

    pub fn of(headers: &HeaderMap) -> Option<Self> {
        headers.get(http::header::USER_AGENT).filter(|v| v.to_str().is_ok()).map(|v| Self(v.clone()))
    }
}

impl std::ops::Deref for UserAgent {
    type Target = str;
    fn deref(&self) -> &str {
        let s = self.0.to_str().unwrap_or("");
        s.get(..Self::MAX_CHARS).unwrap_or(s)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<RequestContext>()
            .cloned()
            .ok_or_else(|| ApiError::Internal("request context missing".into()))
    }
}

/// The socket peer, put in the request by the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub SocketAddr);

/// The proxies whose forwarding header is believed (`server.trusted_proxies`), and that header
/// (`server.trusted_header`).
#[derive(Debug, Clone, Copy)]
pub struct ProxyTrust<'a> {
    pub proxies: &'a TrustedProxies,
    pub header: TrustedHeader,
}

impl<'a> ProxyTrust<'a> {
    pub fn of(server: &'a ServerSettings) -> Self {
        Self { proxies: &server.trusted_proxies, header: server.trusted_header }
    }

    /// The client's address, always in its plain form: an IPv4 client reached through a
    /// dual-stack socket (`::ffff:a.b.c.d`) is `a.b.c.d`, so that it matches IPv4 CIDRs and has
    /// the same rate-limit key and audit address whichever socket it came through. (Left mapped,
    /// every IPv4 client would also share one IPv6 /64 budget.)
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.proxies.contains(peer) {
            return peer;
        }
        let mut client = peer;
        for hop in self.hops(headers).iter().rev() {
            match hop {
                Some(ip) => {
                    client = *ip;
                    if !self.proxies.contains(*ip) {
                        break;
                    }
                }
                // An unreadable element: stop at the last address a trusted proxy vouched for.
                None => break,
            }
        }
        client
    }

    /// The hops of the configured header, left to right (client first), every line of it in
    /// order. Each comma-separated element is read from the raw bytes on its own, so a byte that
    /// is not ASCII makes that element unreadable, not the whole header. Empty elements are
    /// skipped, as RFC 9110 list syntax allows them.
    fn hops(&self, headers: &HeaderMap) -> Vec<Option<IpAddr>> {
        headers
            .get_all(self.header.name())
            .iter()
            .flat_map(|value| value.as_bytes().split(|b| *b == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|element| !element.is_empty())
            .map(|element| {
                let text = std::str::from_utf8(element).ok().filter(|t| t.is_ascii())?;
                match self.header {
                    TrustedHeader::XForwardedFor => parse_ip(text),
                    TrustedHeader::Forwarded => forwarded_for(text),
                }
            })
            .collect()
    }
}

/// The `for=` node of one `Forwarded` element (`for=192.0.2.60;proto=https`). An element without
/// one, or whose node is `unknown` or an obfuscated `_name`, is unreadable.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
        .and_then(|(_, v)| parse_ip(v.trim().trim_matches('"')))
}

/// `1.2.3.4`, `1.2.3.4:80`, `[::1]:80`, `::1`, in canonical form.
fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| s.strip_prefix('[').and_then(|r| r.strip_suffix(']')).and_then(|r| r.parse().ok()))
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(name: &'static str, v: &'static [u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_bytes(v).unwrap());
        h
    }

    fn trust(nets: &[&str], header: TrustedHeader) -> ProxyTrust<'static> {
        let proxies = nets.iter().map(|n| n.parse::<ipnet::IpNet>().unwrap()).collect();
        // Leaked: a few bytes per test, for a view that borrows like the server's does.
        ProxyTrust { proxies: Box::leak(Box::new(proxies)), header }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_cannot_choose_its_ip() {
        let peer = ip("203.0.113.9");
        let h = headers("x-forwarded-for", b"1.1.1.1");
        assert_eq!(trust(&[], TrustedHeader::XForwardedFor).client_ip(peer, &h), peer);
    }

    #[test]
    fn trusted_proxy_gives_rightmost_untrusted() {
        let xff = trust(&["10.0.0.0/8"], TrustedHeader::XForwardedFor);
        let peer = ip("10.0.0.2");
        let h = headers("x-forwarded-for", b"6.6.6.6, 198.51.100.7, 10.0.0.5");
        assert_eq!(xff.client_ip(peer, &h), ip("198.51.100.7"));
        let h = headers("x-forwarded-for", b"garbage, 10.0.0.7");
        assert_eq!(xff.client_ip(peer, &h), ip("10.0.0.7"));
        assert_eq!(xff.client_ip(peer, &HeaderMap::new()), peer);
        let fwd = trust(&["10.0.0.0/8"], TrustedHeader::Forwarded);
        let h = headers("forwarded", b"for=192.0.2.60;proto=https, for=\"[2001:db8::1]:4711\"");
        assert_eq!(fwd.client_ip(peer, &h), ip("2001:db8::1"));
        let h = headers("forwarded", b"for=192.0.2.60, for=unknown, For=10.0.0.9");
        assert_eq!(fwd.client_ip(peer, &h), ip("10.0.0.9"));
    }

    #[test]
    fn only_the_configured_header_is_read() {
        let peer = ip("10.0.0.2");
        let mut h = headers("forwarded", b"for=198.51.100.7");
        h.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        assert_eq!(trust(&["10.0.0.0/8"], TrustedHeader::Forwarded).client_ip(peer, &h), ip("198.51.100.7"));
        assert_eq!(trust(&["10.0.0.0/8"], TrustedHeader::XForwardedFor).client_ip(peer, &h), ip("6.6.6.6"));
        // The proxy writes Forwarded but this request has none: the peer, not the client's XFF.
        let h = headers("x-forwarded-for", b"6.6.6.6");
        assert_eq!(trust(&["10.0.0.0/8"], TrustedHeader::Forwarded).client_ip(peer, &h), peer);
    }

    #[test]
    fn a_non_ascii_element_stops_only_at_itself() {
        let xff = trust(&["10.0.0.0/8"], TrustedHeader::XForwardedFor);
        let peer = ip("10.0.0.2");
        let h = headers("x-forwarded-for", b"\xff\xfe, 198.51.100.7, 10.0.0.5");
        assert_eq!(xff.client_ip(peer, &h), ip("198.51.100.7"));
        // Unreadable to the right of the client: the walk stops at the last vouched address.
        let h = headers("x-forwarded-for", b"198.51.100.7, caf\xc3\xa9, 10.0.0.5");
        assert_eq!(xff.client_ip(peer, &h), ip("10.0.0.5"));
        let fwd = trust(&["10.0.0.0/8"], TrustedHeader::Forwarded);
        let h = headers("forwarded", b"for=\"\xff\", for=198.51.100.8");
        assert_eq!(fwd.client_ip(peer, &h), ip("198.51.100.8"));
        // Empty list elements are allowed and skipped.
        let h = headers("x-forwarded-for", b"198.51.100.9, , 10.0.0.5,");
        assert_eq!(xff.client_ip(peer, &h), ip("198.51.100.9"));
    }

    #[test]
    fn ipv4_mapped_peers_and_hops_are_plain_ipv4() {
        let xff = trust(&["127.0.0.1/32"], TrustedHeader::XForwardedFor);
        let mapped = ip("::ffff:127.0.0.1");
        assert_eq!(xff.client_ip(mapped, &HeaderMap::new()), ip("127.0.0.1"));
        let h = headers("x-forwarded-for", b"::ffff:198.51.100.7");
        assert_eq!(xff.client_ip(mapped, &h), ip("198.51.100.7"));
        // An IPv4 peer also matches a mapped IPv6 CIDR.
        let v6 = trust(&["::ffff:10.0.0.0/104"], TrustedHeader::XForwardedFor);
        let h = headers("x-forwarded-for", b"198.51.100.7");
        assert_eq!(v6.client_ip(ip("10.1.2.3"), &h), ip("198.51.100.7"));
        // An untrusted mapped peer is still itself, in plain form.
        assert_eq!(trust(&[], TrustedHeader::XForwardedFor).client_ip(ip("::ffff:203.0.113.9"), &h), ip("203.0.113.9"));
    }
}

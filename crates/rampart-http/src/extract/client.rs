//! Who is on the other end: the request id and the client IP.
//!
//! The client IP is the socket peer, unless that peer is a trusted proxy: then it is the
//! rightmost address of `X-Forwarded-For` (or `Forwarded`) that is not itself a trusted proxy.
//! Addresses to the left of it were written by the client and prove nothing, so a client cannot
//! pick its own IP (and with it a fresh rate-limit budget) by sending the header itself.

use std::net::{IpAddr, SocketAddr};

use axum::extract::FromRequestParts;
use http::HeaderMap;
use http::request::Parts;
use ipnet::IpNet;

use crate::ApiError;

/// Set by the outermost middleware on every request.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    pub ip: IpAddr,
    pub user_agent: Option<String>,
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

pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops = forwarded_hops(headers);
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop {
            Some(ip) => {
                client = *ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            // An unreadable entry: stop at the last address a trusted proxy vouched for.
            None => break,
        }
    }
    client
}

/// The hops of `X-Forwarded-For`, or else `Forwarded`, left to right (client first).
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let xff: Vec<Option<IpAddr>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("?").split(',').map(|s| parse_ip(s.trim())).collect::<Vec<_>>())
        .collect();
    if !xff.is_empty() {
        return xff;
    }
    headers
        .get_all("forwarded")
        .iter()
        .flat_map(|v| {
            v.to_str()
                .unwrap_or("?")
                .split(',')
                .map(|element| {
                    element
                        .split(';')
                        .filter_map(|pair| pair.trim().split_once('='))
                        .find(|(k, _)| k.eq_ignore_ascii_case("for"))
                        .and_then(|(_, v)| parse_ip(v.trim().trim_matches('"')))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `1.2.3.4`, `1.2.3.4:80`, `[::1]:80`, `::1`.
fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| s.strip_prefix('[').and_then(|r| r.strip_suffix(']')).and_then(|r| r.parse().ok()))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(name: &'static str, v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_static(v));
        h
    }

    #[test]
    fn untrusted_peer_cannot_choose_its_ip() {
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        let h = headers("x-forwarded-for", "1.1.1.1");
        assert_eq!(client_ip(peer, &h, &[]), peer);
    }

    #[test]
    fn trusted_proxy_gives_rightmost_untrusted() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer: IpAddr = "10.0.0.2".parse().unwrap();
        let h = headers("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.5");
        assert_eq!(client_ip(peer, &h, &trusted), "198.51.100.7".parse::<IpAddr>().unwrap());
        let h = headers("forwarded", "for=192.0.2.60;proto=https, for=\"[2001:db8::1]:4711\"");
        assert_eq!(client_ip(peer, &h, &trusted), "2001:db8::1".parse::<IpAddr>().unwrap());
        let h = headers("x-forwarded-for", "garbage, 10.0.0.7");
        assert_eq!(client_ip(peer, &h, &trusted), "10.0.0.7".parse::<IpAddr>().unwrap());
        assert_eq!(client_ip(peer, &HeaderMap::new(), &trusted), peer);
    }
}

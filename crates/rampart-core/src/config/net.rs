//! The network values of the configuration, parsed: web origins (`server.public_url`,
//! `cors.allowed_origins`) and the trusted proxies' address ranges (`server.trusted_proxies`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

/// `scheme://host[:port]`, lower-cased, http or https only: what a browser sends as `Origin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebOrigin(String);

impl WebOrigin {
    /// The origin of a URL, refusing anything that is not http(s) or that carries credentials.
    pub fn of_url(url: &str) -> Result<Self, String> {
        let uri: http::Uri = url.parse().map_err(|_| format!("`{url}` is not a URL"))?;
        let scheme = uri.scheme_str().ok_or_else(|| format!("`{url}` has no scheme"))?.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(format!("`{url}` is not http or https"));
        }
        let authority = uri.authority().ok_or_else(|| format!("`{url}` has no host"))?;
        if authority.as_str().contains('@') {
            return Err(format!("`{url}` carries credentials"));
        }
        Ok(Self(format!("{scheme}://{}", authority.as_str().to_ascii_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_https(&self) -> bool {
        self.0.starts_with("https://")
    }

    /// The host, without scheme, port or the brackets of an IPv6 literal.
    pub fn host(&self) -> &str {
        let rest = self.0.split_once("://").map_or(self.0.as_str(), |(_, r)| r);
        if let Some(v6) = rest.strip_prefix('[') {
            return v6.split_once(']').map_or(v6, |(h, _)| h);
        }
        rest.split_once(':').map_or(rest, |(h, _)| h)
    }
}

impl fmt::Display for WebOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The address ranges whose forwarding header is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Whether `ip` is one of the proxies. An IPv4 address matches IPv4 ranges, and IPv6 ranges
    /// through its mapped form (`::ffff:a.b.c.d`).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let mapped = match ip {
            IpAddr::V4(v4) => Some(IpAddr::V6(v4.to_ipv6_mapped())),
            IpAddr::V6(_) => None,
        };
        self.0.iter().any(|net| net.contains(&ip) || mapped.is_some_and(|m| net.contains(&m)))
    }
}

impl FromIterator<IpNet> for TrustedProxies {
    fn from_iter<I: IntoIterator<Item = IpNet>>(nets: I) -> Self {
        Self(nets.into_iter().collect())
    }
}

/// A CIDR, or a single address taken as a /32 or /128.
pub(crate) fn parse_cidr(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>().ok().or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

/// A CIDR that holds every IPv4 address (`0.0.0.0/0`, or an IPv6 range holding all of
/// `::ffff:0:0/96`, which [`TrustedProxies::contains`] also matches IPv4 peers against) or every
/// IPv6 address (`::/0`).
pub(crate) fn trusts_everyone(net: &IpNet) -> bool {
    match net {
        IpNet::V4(v4) => v4.prefix_len() == 0,
        IpNet::V6(v6) => {
            let first = IpAddr::V6(Ipv4Addr::UNSPECIFIED.to_ipv6_mapped());
            let last = IpAddr::V6(Ipv4Addr::BROADCAST.to_ipv6_mapped());
            v6.prefix_len() == 0 || (net.contains(&first) && net.contains(&last))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin_of(url: &str) -> Result<String, String> {
        WebOrigin::of_url(url).map(|o| o.as_str().to_owned())
    }

    #[test]
    fn origins() {
        assert_eq!(origin_of("https://Example.com/path").unwrap(), "https://example.com");
        assert_eq!(origin_of("http://localhost:8080").unwrap(), "http://localhost:8080");
        assert!(origin_of("ftp://x").is_err());
        assert!(origin_of("nothing").is_err());
    }
}

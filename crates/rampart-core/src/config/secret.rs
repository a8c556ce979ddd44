//! Types for secrets read from the config. They never print: `Debug` shows a placeholder, and the
//! only way to the value is an explicit `expose()`.

use serde::{Deserialize, Deserializer};

/// A secret string (the data key).
#[derive(Clone)]
pub struct SecretValue(secrecy::SecretString);

impl<'de> Deserialize<'de> for SecretValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::from_string(scalar_string(d)?))
    }
}

/// A string, or a number or boolean taken as its text: an environment value such as
/// `RAMPART_DATA_KEY=12345` reads as a TOML integer, but a secret is always text.
fn scalar_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        S(String),
        I(i64),
        F(f64),
        B(bool),
    }
    Ok(match Scalar::deserialize(d)? {
        Scalar::S(s) => s,
        Scalar::I(i) => i.to_string(),
        Scalar::F(f) => f.to_string(),
        Scalar::B(b) => b.to_string(),
    })
}

impl SecretValue {
    pub fn expose(&self) -> &str {
        secrecy::ExposeSecret::expose_secret(&self.0)
    }
    pub fn from_string(s: String) -> Self {
        Self(secrecy::SecretString::from(s))
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A connection URL that may carry a password, in its userinfo (`postgres://user:pw@host/db`) or
/// in its query (`postgres://user@host/db?password=pw`, `redis+unix:///run/redis.sock?pass=pw`,
/// both of which the drivers read). Its `Debug` and [`SecretUrl::redacted`] hide both;
/// [`SecretUrl::expose`] is for the driver only.
#[derive(Clone)]
pub struct SecretUrl(secrecy::SecretString);

/// What hides a secret in [`SecretUrl::redacted`].
const MASK: &str = "***";

impl SecretUrl {
    pub fn new(s: &str) -> Self {
        Self(secrecy::SecretString::from(s.to_owned()))
    }
    pub fn expose(&self) -> &str {
        secrecy::ExposeSecret::expose_secret(&self.0)
    }
    /// True when the URL carries a password: `scheme://user:password@host`, or a query parameter
    /// whose name says secret (see [`is_secret_param`]).
    pub fn has_password(&self) -> bool {
        let url = self.expose();
        userinfo(url).is_some_and(|u| u.contains(':')) || query_params(url).any(|(name, _)| is_secret_param(name))
    }
    /// The URL with every password replaced, safe for logs and error messages.
    pub fn redacted(&self) -> String {
        let url = self.expose();
        let mut out = match (url.find("://"), userinfo(url)) {
            (Some(i), Some(info)) if info.contains(':') => {
                let user = info.split(':').next().unwrap_or_default();
                let rest = &url[i + 3 + info.len()..];
                format!("{}://{user}:{MASK}{rest}", &url[..i])
            }
            _ => url.to_owned(),
        };
        // Values are replaced from the right, so earlier byte offsets stay valid.
        let secrets: Vec<(usize, usize)> = query_params(&out)
            .filter(|(name, _)| is_secret_param(name))
            .map(|(_, value)| (offset_in(&out, value), value.len()))
            .collect();
        for (start, len) in secrets.into_iter().rev() {
            out.replace_range(start..start + len, MASK);
        }
        out
    }
}

fn userinfo(url: &str) -> Option<&str> {
    let after = &url[url.find("://")? + 3..];
    let authority = after.split(['/', '?', '#']).next().unwrap_or_default();
    authority.rfind('@').map(|at| &authority[..at])
}

/// The `name=value` pairs of the query, as slices of `url`. Split on `&` and `;` alike: redacting
/// a pair a driver would not read costs nothing, missing one it reads leaks it.
fn query_params(url: &str) -> impl Iterator<Item = (&str, &str)> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let query = query.split('#').next().unwrap_or_default();
    query.split(['&', ';']).filter_map(|pair| pair.split_once('='))
}

/// A query parameter that holds a secret: its name, percent-decoded and in any case, mentions a
/// password, a token or a secret (`password`, `pass`, `PASSWORD`, `sslpassword`, `p%61ss`,
/// `auth_token`, ...). Deliberately broad: a harmless parameter redacted in a log line is a
/// smaller loss than a password printed.
fn is_secret_param(name: &str) -> bool {
    let name = percent_decode(name).to_ascii_lowercase();
    ["pass", "pwd", "secret", "token"].iter().any(|word| name.contains(word))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (b, hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where `part`, a slice of `whole`, starts in it.
fn offset_in(whole: &str, part: &str) -> usize {
    part.as_ptr() as usize - whole.as_ptr() as usize
}

impl<'de> Deserialize<'de> for SecretUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self(secrecy::SecretString::from(scalar_string(d)?)))
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretUrl({})", self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        let u = SecretUrl::new("postgres://app:s3cret@db:5432/x");
        assert!(u.has_password());
        assert_eq!(u.redacted(), "postgres://app:***@db:5432/x");
        assert!(!format!("{u:?}").contains("s3cret"));
        let plain = SecretUrl::new("sqlite://rampart-data/rampart.db");
        assert!(!plain.has_password());
        assert_eq!(plain.redacted(), "sqlite://rampart-data/rampart.db");
        assert!(!SecretUrl::new("redis://127.0.0.1:6379").has_password());
    }

    #[test]
    fn redacts_passwords_in_the_query() {
        for (url, redacted) in [
            ("postgres://app@db/x?password=s3cret", "postgres://app@db/x?password=***"),
            (
                "postgres://app@db/x?sslmode=disable&PassWord=s3cret#f",
                "postgres://app@db/x?sslmode=disable&PassWord=***#f",
            ),
            ("redis+unix:///run/redis.sock?db=1&pass=s3cret", "redis+unix:///run/redis.sock?db=1&pass=***"),
            ("redis://h/?p%61ss=s3cret;x=1", "redis://h/?p%61ss=***;x=1"),
            ("postgres://app:s3cret@db/x?password=s3cret", "postgres://app:***@db/x?password=***"),
        ] {
            let u = SecretUrl::new(url);
            assert!(u.has_password(), "{url}");
            assert_eq!(u.redacted(), redacted);
            assert!(!format!("{u:?}").contains("s3cret"), "{url}");
        }
        let plain = SecretUrl::new("postgres://app@db/x?sslmode=verify-full&sslrootcert=/ca.pem");
        assert!(!plain.has_password());
        assert_eq!(plain.redacted(), plain.expose());
    }
}

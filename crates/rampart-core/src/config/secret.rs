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

/// A connection URL that may carry a password (`postgres://user:pw@host/db`). Its `Debug` and
/// [`SecretUrl::redacted`] hide the password; [`SecretUrl::expose`] is for the driver only.
#[derive(Clone)]
pub struct SecretUrl(secrecy::SecretString);

impl SecretUrl {
    pub fn new(s: &str) -> Self {
        Self(secrecy::SecretString::from(s.to_owned()))
    }
    pub fn expose(&self) -> &str {
        secrecy::ExposeSecret::expose_secret(&self.0)
    }
    /// True when the URL carries a password (`scheme://user:password@host`).
    pub fn has_password(&self) -> bool {
        userinfo(self.expose()).is_some_and(|u| u.contains(':'))
    }
    /// The URL with any password replaced, safe for logs and error messages.
    pub fn redacted(&self) -> String {
        let url = self.expose();
        match (url.find("://"), userinfo(url)) {
            (Some(i), Some(info)) if info.contains(':') => {
                let user = info.split(':').next().unwrap_or_default();
                let rest = &url[i + 3 + info.len()..];
                format!("{}://{user}:***{rest}", &url[..i])
            }
            _ => url.to_owned(),
        }
    }
}

fn userinfo(url: &str) -> Option<&str> {
    let after = &url[url.find("://")? + 3..];
    let authority = after.split(['/', '?', '#']).next().unwrap_or_default();
    authority.rfind('@').map(|at| &authority[..at])
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
}

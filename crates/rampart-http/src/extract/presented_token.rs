//! An opaque token as a client presents it (a refresh token, an `mfa_token`, a mailed reset or
//! verification token, a session cookie): its shape is checked once, here, when it is read.

use rampart_core::opaque_token::{self, TokenHash};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

/// What a client sent where one of our opaque tokens belongs. Anything that cannot be one of
/// them (wrong length or alphabet) is kept only as "malformed", so that it is refused without a
/// database lookup, and each endpoint still answers it as it answers an unknown token (a 401 for
/// a refresh token, 204 for a revocation, 400 for a mailed token): the shape is not a secret, but
/// the answer should not depend on it.
pub struct PresentedToken(Option<SecretString>);

impl PresentedToken {
    pub fn parse(raw: &str) -> Self {
        Self(opaque_token::well_formed(raw).then(|| SecretString::from(raw.to_owned())))
    }

    /// The lookup hash, or `None` for something that cannot be one of our tokens.
    pub fn hash(&self) -> Option<TokenHash> {
        self.0.as_ref().map(|t| TokenHash::of(t.expose_secret()))
    }
}

impl<'de> Deserialize<'de> for PresentedToken {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = SecretString::deserialize(d)?;
        Ok(Self::parse(raw.expose_secret()))
    }
}

/// Never prints the token.
impl std::fmt::Debug for PresentedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "PresentedToken(..)" } else { "PresentedToken(malformed)" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_tokens_have_a_hash() {
        let (t, h) = opaque_token::generate();
        let p = PresentedToken::parse(t.expose_secret());
        assert_eq!(p.hash().map(|x| x.as_str().to_owned()), Some(h.as_str().to_owned()));
        assert!(!format!("{p:?}").contains(t.expose_secret()));
        for bad in ["", "short", &"a".repeat(42), &format!("{}'", "a".repeat(42))] {
            assert!(PresentedToken::parse(bad).hash().is_none(), "{bad}");
        }
        let json: PresentedToken = serde_json::from_str(&format!("\"{}\"", t.expose_secret())).unwrap();
        assert!(json.hash().is_some());
        assert!(serde_json::from_str::<PresentedToken>("12").is_err());
    }
}

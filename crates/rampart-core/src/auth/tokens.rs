//! Access tokens: short-lived JWTs signed with the key ring.
//!
//! Verification pins everything: the configured algorithm, a `kid` from our own key ring, our
//! issuer and audience, `exp`/`nbf` with at most 30 s of leeway. No header field of the token
//! chooses how it is verified: `alg: none` and HMAC algorithms are refused by the pin, and an
//! embedded `jwk`, `jku`, `x5u` or `x5c` is refused outright rather than ignored.
//!
//! A verified token's claims are cached (keyed by the SHA-256 of the whole token) until its `exp`,
//! so a client reusing its token pays for the signature check once. Revocation is checked by the
//! caller on every request, cache hit or not.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::{Algorithm, Header, Validation};
use quick_cache::sync::Cache;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::keys::KeyRing;
use crate::clock::{Millis, now_ms};

pub const LEEWAY_SECS: u64 = 30;
/// Longer tokens are refused before any parsing.
pub const MAX_TOKEN_LEN: usize = 4096;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    /// The login this token belongs to; revoking it kills the token.
    pub sid: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    pub roles: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("token header not accepted")]
    Header,
    #[error("unknown or retired signing key")]
    UnknownKey,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("no signing key")]
    NoKey,
}

pub struct TokenService {
    ring: RwLock<Arc<KeyRing>>,
    alg: Algorithm,
    issuer: String,
    audience: String,
    ttl: Duration,
    cache: Cache<[u8; 32], Arc<AccessClaims>>,
}

impl TokenService {
    pub fn new(ring: KeyRing, alg: Algorithm, issuer: String, audience: String, ttl: Duration) -> Self {
        Self { ring: RwLock::new(Arc::new(ring)), alg, issuer, audience, ttl, cache: Cache::new(100_000) }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn ring(&self) -> Arc<KeyRing> {
        match self.ring.read() {
            Ok(r) => Arc::clone(&r),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Swaps in a reloaded key ring (after `rampart keys rotate`).
    pub fn replace_ring(&self, ring: KeyRing) {
        match self.ring.write() {
            Ok(mut r) => *r = Arc::new(ring),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(ring),
        }
    }

    /// Signs an access token for `sub` in login `sid`. Returns the token and its lifetime.
    pub fn issue(&self, sub: &str, sid: &str, roles: Vec<String>) -> Result<(String, u64), TokenError> {
        let ring = self.ring();
        let now = now_ms();
        let key = ring.signing(now).ok_or(TokenError::NoKey)?;
        let iat = now / 1000;
        let ttl = self.ttl.as_secs();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: sub.to_owned(),
            sid: sid.to_owned(),
            iat,
            nbf: iat,
            exp: iat + i64::try_from(ttl).unwrap_or(600),
            jti: crate::token::new_id(),
            roles,
        };
        let mut header = Header::new(self.alg);
        header.kid = Some(key.kid.clone());
        header.typ = Some("at+jwt".into());
        let token =
            jsonwebtoken::encode(&header, &claims, &key.encoding).map_err(|e| TokenError::Invalid(e.to_string()))?;
        Ok((token, ttl))
    }

    pub fn verify(&self, token: &str) -> Result<Arc<AccessClaims>, TokenError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let now = now_ms();
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(claims) = self.cache.get(&digest) {
            // Cached only after a full verification; still bounded by its own expiry.
            if now / 1000 < claims.exp + LEEWAY_SECS as i64 {
                return Ok(claims);
            }
            self.cache.remove(&digest);
        }
        let claims = Arc::new(self.verify_uncached(token, now)?);
        self.cache.insert(digest, Arc::clone(&claims));
        Ok(claims)
    }

    fn verify_uncached(&self, token: &str, now: Millis) -> Result<AccessClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != self.alg {
            return Err(TokenError::Header);
        }
        if header.jwk.is_some() || header.jku.is_some() || header.x5u.is_some() || header.x5c.is_some() {
            return Err(TokenError::Header);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let ring = self.ring();
        let key = ring.verifying(&kid, now).ok_or(TokenError::UnknownKey)?;
        if key.alg != self.alg {
            return Err(TokenError::Header);
        }
        let mut v = Validation::new(self.alg);
        v.leeway = LEEWAY_SECS;
        v.validate_nbf = true;
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        v.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &v)
            .map_err(|e| TokenError::Invalid(format!("{:?}", e.kind())))?;
        Ok(data.claims)
    }
}

pub fn algorithm(alg: crate::config::JwtAlgorithm) -> Algorithm {
    match alg {
        crate::config::JwtAlgorithm::RS256 => Algorithm::RS256,
        crate::config::JwtAlgorithm::EdDSA => Algorithm::EdDSA,
    }
}

//! Access tokens: short-lived JWTs signed with the key ring.
//!
//! Verification pins everything: the configured algorithm, a `kid` from our own key ring, our
//! issuer and audience, `exp`/`nbf` with at most 30 s of leeway. No header field of the token
//! chooses how it is verified: `alg: none` and HMAC algorithms are refused by the pin, and an
//! embedded `jwk`, `jku`, `x5u` or `x5c` is refused outright rather than ignored.
//!
//! A token's lifetime is bounded by the configuration, not only by its own `exp`: `exp - iat` may
//! not exceed the access-token TTL plus the leeway, and `iat` may not lie in the future. A token
//! signed by one of our keys but with a longer life (a leaked key, an older configuration with a
//! longer TTL) is refused rather than honoured until a far `exp`.
//!
//! A verified token's claims are cached (keyed by the SHA-256 of the whole token) until its `exp`,
//! so a client reusing its token pays for the signature check once. The cache belongs to one key
//! ring: reloading the ring drops it, and an entry is used only while its `kid` still verifies, so
//! a key removed from `keys_dir` stops verifying its tokens at the reload, cached or not.
//! Revocation is checked by the caller on every request, cache hit or not.

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
    /// Signing failed (the key does not fit the algorithm).
    #[error("invalid token: {0}")]
    Sign(#[source] jsonwebtoken::errors::Error),
    /// The signature or a standard claim (`exp`, `nbf`, `iss`, `aud`, ...) did not verify. Shown
    /// by its kind (`ExpiredSignature`, `InvalidAudience`, ...), for the debug log.
    #[error("invalid token: {:?}", .0.kind())]
    Rejected(#[source] jsonwebtoken::errors::Error),
    #[error("invalid token: iat is in the future")]
    IssuedInFuture,
    #[error("invalid token: lifetime exceeds the access-token TTL")]
    LifetimeTooLong,
    #[error("no signing key")]
    NoKey,
}

/// The key ring in use and its generation, swapped together so that a verification can tell which
/// ring it was made with.
struct CurrentRing {
    ring: Arc<KeyRing>,
    generation: u64,
}

/// A verification remembered: the claims, the key that verified them and the ring generation.
struct Verified {
    claims: Arc<AccessClaims>,
    kid: String,
    generation: u64,
}

pub struct TokenService {
    ring: RwLock<CurrentRing>,
    alg: Algorithm,
    issuer: String,
    audience: String,
    ttl: Duration,
    cache: Cache<[u8; 32], Arc<Verified>>,
}

impl TokenService {
    pub fn new(ring: KeyRing, alg: Algorithm, issuer: String, audience: String, ttl: Duration) -> Self {
        let ring = RwLock::new(CurrentRing { ring: Arc::new(ring), generation: 0 });
        Self { ring, alg, issuer, audience, ttl, cache: Cache::new(100_000) }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn ring(&self) -> Arc<KeyRing> {
        self.current().0
    }

    /// The ring and its generation, read together.
    fn current(&self) -> (Arc<KeyRing>, u64) {
        let read = |c: &CurrentRing| (Arc::clone(&c.ring), c.generation);
        match self.ring.read() {
            Ok(c) => read(&c),
            Err(poisoned) => read(&poisoned.into_inner()),
        }
    }

    /// Swaps in a reloaded key ring (after `rampart keys rotate`, or a key removed from
    /// `keys_dir`) and forgets every cached verification: they were made with the old ring, and a
    /// key that is gone must stop verifying now, not when its cached tokens expire. The new
    /// generation also voids an entry that a verification still running on the old ring inserts
    /// after the clear.
    pub fn replace_ring(&self, ring: KeyRing) {
        let swap = |c: &mut CurrentRing| {
            c.ring = Arc::new(ring);
            c.generation += 1;
        };
        match self.ring.write() {
            Ok(mut c) => swap(&mut c),
            Err(poisoned) => swap(&mut poisoned.into_inner()),
        }
        self.cache.clear();
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
            jti: crate::opaque_token::new_id(),
            roles,
        };
        let mut header = Header::new(self.alg);
        header.kid = Some(key.kid.clone());
        header.typ = Some("at+jwt".into());
        let token = jsonwebtoken::encode(&header, &claims, &key.encoding).map_err(TokenError::Sign)?;
        Ok((token, ttl))
    }

    pub fn verify(&self, token: &str) -> Result<Arc<AccessClaims>, TokenError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let now = now_ms();
        let (ring, generation) = self.current();
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(hit) = self.cache.get(&digest) {
            // Cached only after a full verification, and used only while it is still bounded by
            // its own expiry, was made with the ring in use, and its key still verifies (a key
            // also retires by age, without a reload).
            if now / 1000 < hit.claims.exp + LEEWAY_SECS as i64
                && hit.generation == generation
                && ring.verifying(&hit.kid, now).is_some()
            {
                return Ok(Arc::clone(&hit.claims));
            }
            self.cache.remove(&digest);
        }
        let (claims, kid) = self.verify_uncached(token, &ring, now)?;
        let claims = Arc::new(claims);
        self.cache.insert(digest, Arc::new(Verified { claims: Arc::clone(&claims), kid, generation }));
        Ok(claims)
    }

    /// The claims and the `kid` of the key that verified them.
    fn verify_uncached(&self, token: &str, ring: &KeyRing, now: Millis) -> Result<(AccessClaims, String), TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != self.alg {
            return Err(TokenError::Header);
        }
        if header.jwk.is_some() || header.jku.is_some() || header.x5u.is_some() || header.x5c.is_some() {
            return Err(TokenError::Header);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
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
        let data = jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &v).map_err(TokenError::Rejected)?;
        self.check_lifetime(&data.claims, now)?;
        Ok((data.claims, kid))
    }

    /// `exp` is chosen by whoever signed: one of our keys in someone else's hands, or this server
    /// under an older configuration, could have picked any. No token may live longer than the
    /// configured TTL (plus the leeway), counted from an `iat` that is not in the future (else a
    /// short `exp - iat` far ahead would be a long life in disguise).
    fn check_lifetime(&self, claims: &AccessClaims, now: Millis) -> Result<(), TokenError> {
        let leeway = LEEWAY_SECS as i64;
        let max_life = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX).saturating_add(leeway);
        if claims.iat > now / 1000 + leeway {
            return Err(TokenError::IssuedInFuture);
        }
        if claims.exp.saturating_sub(claims.iat) > max_life {
            return Err(TokenError::LifetimeTooLong);
        }
        Ok(())
    }
}

pub fn algorithm(alg: crate::config::JwtAlgorithm) -> Algorithm {
    match alg {
        crate::config::JwtAlgorithm::RS256 => Algorithm::RS256,
        crate::config::JwtAlgorithm::EdDSA => Algorithm::EdDSA,
    }
}

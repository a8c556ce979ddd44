//! Opaque bearer secrets (session values, later refresh and reset tokens): 256 random bits from the
//! OS, sent to the client once, stored only as a SHA-256 hash.
//!
//! A fast hash is right here, unlike for passwords: the input already has 256 bits of entropy, so
//! there is nothing to brute-force, and the lookup stays one indexed equality on the hash.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Hex of the SHA-256 of a token: what the store keeps and looks up by.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenHash(String);

impl TokenHash {
    pub fn of(token: &str) -> Self {
        Self(hex(&Sha256::digest(token.as_bytes())))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

/// A fresh 256-bit token, base64url without padding (43 characters), and its hash.
pub fn generate() -> (SecretString, TokenHash) {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = TokenHash::of(&token);
    (SecretString::from(token), hash)
}

/// A token as a client sent it: refused early when it cannot be one of ours, so that arbitrary
/// input never reaches a lookup.
pub fn well_formed(candidate: &str) -> bool {
    candidate.len() == 43 && candidate.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The CSRF token of a session: HMAC-SHA256 keyed with the session value. It is derived rather
/// than stored, so it needs no column, dies with the session, and knowing it reveals nothing about
/// the session value (the HMAC is one-way).
pub fn csrf_token(session_value: &SecretString) -> String {
    let mac = <Hmac<Sha256> as Mac>::new_from_slice(session_value.expose_secret().as_bytes());
    match mac {
        Ok(mut mac) => {
            mac.update(b"rampart csrf v1");
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        }
        // HMAC takes keys of any length; this arm cannot be reached.
        Err(_) => String::new(),
    }
}

/// Constant-time equality, for comparing a presented secret with the expected one.
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A random UUIDv4 string: the public id of users, sessions and records.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Both halves of a byte are below 16: `get` never misses.
        for half in [b >> 4, b & 0x0f] {
            s.extend(DIGITS.get(usize::from(half)).copied().map(char::from));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, ha) = generate();
        let (b, hb) = generate();
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(well_formed(a.expose_secret()));
        assert_eq!(ha, TokenHash::of(a.expose_secret()));
        assert_ne!(ha, hb);
        assert_eq!(ha.as_str().len(), 64);
    }

    #[test]
    fn csrf_depends_on_session() {
        let (a, _) = generate();
        let (b, _) = generate();
        assert_eq!(csrf_token(&a), csrf_token(&a));
        assert_ne!(csrf_token(&a), csrf_token(&b));
        assert!(ct_eq(&csrf_token(&a), &csrf_token(&a)));
        assert!(!ct_eq(&csrf_token(&a), &csrf_token(&b)));
    }

    #[test]
    fn malformed_tokens() {
        assert!(!well_formed("short"));
        assert!(!well_formed(&"a".repeat(42)));
        assert!(!well_formed(&format!("{}'", "a".repeat(42))));
    }
}

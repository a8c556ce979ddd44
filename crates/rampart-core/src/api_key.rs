//! API keys: `rpk_` + the key's id (a UUID, 32 hex digits) + `_` + 256 random bits (base64url,
//! 43 characters).
//!
//! The id is in the key so that a presented key is found by one indexed lookup on the primary
//! key, and then compared by hash in constant time: an unknown or malformed key costs at most that
//! one lookup (a malformed one not even that), never a scan or a hash per stored key. Only the
//! SHA-256 of the whole key is stored: its secret has 256 bits of entropy, so a fast hash leaves
//! nothing to brute-force (a password hash would only cost every request milliseconds).
//!
//! The `rpk_` prefix tells a key apart from a JWT (which starts with `ey`) without parsing either,
//! and makes a leaked key easy for secret scanners to recognise.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use rand::rngs::OsRng;
use secrecy::SecretString;

use crate::opaque_token::{TokenHash, ct_eq};

/// What every key starts with.
pub const PREFIX: &str = "rpk_";

const ID_HEX: usize = 32;
const SECRET_CHARS: usize = 43;
/// `rpk_` + id + `_` + secret.
const KEY_LEN: usize = PREFIX.len() + ID_HEX + 1 + SECRET_CHARS;

/// Whether an `Authorization: Bearer` credential is meant as an API key (rather than a JWT).
pub fn looks_like_key(credential: &str) -> bool {
    credential.starts_with(PREFIX)
}

/// A fresh key for the key id `id` (a hyphenated UUID), and the hash to store.
pub fn mint(id: &uuid::Uuid) -> (SecretString, TokenHash) {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let key = format!("{PREFIX}{}_{}", id.simple(), URL_SAFE_NO_PAD.encode(bytes));
    let hash = TokenHash::of(&key);
    (SecretString::from(key), hash)
}

/// The part of a key that may be shown again (in lists): `rpk_` and the first 8 digits of its id.
/// It names the key to its owner and proves nothing.
pub fn display_prefix(id: &uuid::Uuid) -> String {
    let simple = id.simple().to_string();
    format!("{PREFIX}{}", simple.get(..8).unwrap_or(&simple))
}

/// A presented key, parsed: its id and its hash. `None` for anything that is not exactly the shape
/// [`mint`] makes, before any database work.
pub struct Presented {
    pub id: String,
    pub hash: TokenHash,
}

impl Presented {
    pub fn parse(candidate: &str) -> Option<Self> {
        if candidate.len() != KEY_LEN || !candidate.is_ascii() {
            return None;
        }
        let rest = candidate.strip_prefix(PREFIX)?;
        let (id_hex, secret) = rest.split_at_checked(ID_HEX)?;
        let secret = secret.strip_prefix('_')?;
        let id_ok = id_hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let secret_ok =
            secret.len() == SECRET_CHARS && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok || !secret_ok {
            return None;
        }
        let id = uuid::Uuid::try_parse(id_hex).ok()?.hyphenated().to_string();
        Some(Self { id, hash: TokenHash::of(candidate) })
    }

    /// Whether this key is the one whose hash is `stored`, in constant time.
    pub fn matches(&self, stored: &str) -> bool {
        ct_eq(self.hash.as_str(), stored)
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn minted_keys_parse_back_to_their_id_and_hash() {
        let id = uuid::Uuid::new_v4();
        let (key, hash) = mint(&id);
        let key = key.expose_secret();
        assert!(key.starts_with("rpk_") && key.len() == KEY_LEN, "{key}");
        let p = Presented::parse(key).unwrap();
        assert_eq!(p.id, id.hyphenated().to_string());
        assert!(p.matches(hash.as_str()));
        let (other, _) = mint(&id);
        assert_ne!(other.expose_secret(), key, "256 random bits each time");
        assert!(!Presented::parse(other.expose_secret()).unwrap().matches(hash.as_str()));
        assert!(display_prefix(&id).starts_with("rpk_") && display_prefix(&id).len() == 12);
        assert!(key.starts_with(&display_prefix(&id)));
    }

    #[test]
    fn anything_else_is_refused_before_a_lookup() {
        let (key, _) = mint(&uuid::Uuid::new_v4());
        let key = key.expose_secret();
        for bad in [
            "",
            "rpk_",
            "eyJhbGciOiJSUzI1NiJ9.e30.x",
            &key[..key.len() - 1],
            &format!("{key}A"),
            &key.replacen("rpk_", "rpx_", 1),
            &key.replacen('_', "-", 2),
            &format!("{}G{}", &key[..4], &key[5..]),
            &format!("{}é", &key[..key.len() - 2]),
            &format!("{}'", &key[..key.len() - 1]),
        ] {
            assert!(Presented::parse(bad).is_none(), "{bad:?}");
        }
    }
}

//! The data-encryption key (`RAMPART_DATA_KEY`): AES-256-GCM from `ring`, for the few secrets the
//! server must be able to read back (TOTP secrets). Everything it can avoid reading back (passwords,
//! session values, refresh, reset and recovery codes) is hashed instead.
//!
//! A sealed value is `v1.` + base64url(nonce ‖ ciphertext ‖ tag). The nonce is 96 random bits:
//! safe for far more seals than a user table will ever need under one key. The caller passes
//! associated data (the user id), so a ciphertext copied onto another user's row does not open.
//!
//! The data key is also the one secret every instance of a deployment shares, so keys that must
//! agree across instances (the list-cursor MAC key) are derived from it: HKDF-SHA256 (RFC 5869)
//! with a label per purpose. A subkey reveals nothing about the data key or about another
//! subkey, and the data key itself is only ever used for AES-GCM.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

const PREFIX: &str = "v1.";
/// The HKDF salt of every subkey.
const SUBKEY_SALT: &[u8] = b"rampart data-key subkeys v1";

#[derive(Debug, thiserror::Error)]
pub enum DataKeyError {
    #[error("the data key must be 32 random bytes, base64-encoded (e.g. `openssl rand -base64 32`)")]
    Malformed,
    #[error("the system random generator failed")]
    Random,
    /// Wrong key, tampered value, or a value sealed for another user.
    #[error("a sealed value could not be opened")]
    Open,
}

pub struct DataKey {
    key: LessSafeKey,
    /// HKDF's pseudorandom key (the extract step), as the HMAC key of the expand step.
    subkey_prk: hmac::Key,
    rng: SystemRandom,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey([redacted])")
    }
}

impl DataKey {
    /// From the configured base64 text (standard or URL-safe alphabet, padding optional).
    pub fn from_base64(text: &str) -> Result<Self, DataKeyError> {
        let text = text.trim();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
            .map_err(|_| DataKeyError::Malformed)?;
        if bytes.len() != 32 {
            return Err(DataKeyError::Malformed);
        }
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| DataKeyError::Malformed)?;
        let prk = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, SUBKEY_SALT), &bytes);
        let subkey_prk = hmac::Key::new(hmac::HMAC_SHA256, prk.as_ref());
        Ok(Self { key: LessSafeKey::new(key), subkey_prk, rng: SystemRandom::new() })
    }

    /// The HMAC-SHA256 key for one purpose, named by `label`: HKDF-SHA256 of the data key with
    /// info `label` and 32 bytes of output, which is the expand step's first and only block,
    /// `HMAC(PRK, label || 0x01)`. The same data key and label give the same subkey on every
    /// instance.
    pub fn subkey(&self, label: &str) -> hmac::Key {
        let mut info = label.as_bytes().to_vec();
        info.push(1);
        let okm = hmac::sign(&self.subkey_prk, &info);
        hmac::Key::new(hmac::HMAC_SHA256, okm.as_ref())
    }

    /// 32 fresh random bytes as base64: what the dev profile writes to its data-key file.
    pub fn generate_base64() -> Result<String, DataKeyError> {
        let mut bytes = [0u8; 32];
        SystemRandom::new().fill(&mut bytes).map_err(|_| DataKeyError::Random)?;
        Ok(STANDARD.encode(bytes))
    }

    pub fn seal(&self, plaintext: &[u8], associated: &str) -> Result<String, DataKeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| DataKeyError::Random)?;
        let mut buf = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(associated.as_bytes()), &mut buf)
            .map_err(|_| DataKeyError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out)))
    }

    pub fn open(&self, sealed: &str, associated: &str) -> Result<Vec<u8>, DataKeyError> {
        let body = sealed.strip_prefix(PREFIX).ok_or(DataKeyError::Open)?;
        let raw = URL_SAFE_NO_PAD.decode(body).map_err(|_| DataKeyError::Open)?;
        if raw.len() < NONCE_LEN {
            return Err(DataKeyError::Open);
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| DataKeyError::Open)?;
        let mut buf = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(associated.as_bytes()), &mut buf)
            .map_err(|_| DataKeyError::Open)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DataKey {
        DataKey::from_base64(&DataKey::generate_base64().unwrap()).unwrap()
    }

    #[test]
    fn round_trip_and_randomized() {
        let k = key();
        let a = k.seal(b"secret", "user-1").unwrap();
        let b = k.seal(b"secret", "user-1").unwrap();
        assert_ne!(a, b, "a fresh nonce per seal");
        assert!(!a.contains("secret"));
        assert_eq!(k.open(&a, "user-1").unwrap(), b"secret");
    }

    #[test]
    fn refuses_other_user_other_key_and_tampering() {
        let k = key();
        let sealed = k.seal(b"secret", "user-1").unwrap();
        assert!(k.open(&sealed, "user-2").is_err());
        assert!(key().open(&sealed, "user-1").is_err());
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(k.open(std::str::from_utf8(&tampered).unwrap(), "user-1").is_err());
        assert!(k.open("garbage", "user-1").is_err());
    }

    #[test]
    fn subkeys_are_hkdf_sha256_stable_and_distinct() {
        // The derivation is checked against HKDF computed by hand with the `hmac` crate.
        let text = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let k = DataKey::from_base64(text).unwrap();
        let again = DataKey::from_base64(text).unwrap();
        let tag = |key: &hmac::Key| hmac::sign(key, b"msg").as_ref().to_vec();
        assert_eq!(tag(&k.subkey("a")), tag(&again.subkey("a")), "the same on every instance");
        assert_ne!(tag(&k.subkey("a")), tag(&k.subkey("b")), "one key per label");
        assert_ne!(tag(&k.subkey("a")), tag(&key().subkey("a")), "one key per data key");
        use ::hmac::Mac;
        type H = ::hmac::Hmac<sha2::Sha256>;
        let ikm = STANDARD.decode(text).unwrap();
        let mut m = H::new_from_slice(SUBKEY_SALT).unwrap();
        m.update(&ikm);
        let prk = m.finalize().into_bytes();
        let mut m = H::new_from_slice(&prk).unwrap();
        m.update(b"a\x01");
        let okm = m.finalize().into_bytes();
        let mut m = H::new_from_slice(&okm).unwrap();
        m.update(b"msg");
        assert_eq!(tag(&k.subkey("a")), m.finalize().into_bytes().to_vec());
    }

    #[test]
    fn key_must_be_32_bytes() {
        assert!(DataKey::from_base64("c2hvcnQ=").is_err());
        assert!(DataKey::from_base64("not base64 !!").is_err());
        assert!(format!("{:?}", key()).contains("redacted"));
    }
}

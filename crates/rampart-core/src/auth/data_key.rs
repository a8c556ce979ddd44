//! The data-encryption key (`RAMPART_DATA_KEY`): AES-256-GCM from `ring`, for the few secrets the
//! server must be able to read back (TOTP secrets). Everything it can avoid reading back (passwords,
//! session values, refresh, reset and recovery codes) is hashed instead.
//!
//! It is a key ring: the current key, which seals everything new, and, while `rampart data-key
//! rotate` runs, the previous one (`RAMPART_DATA_KEY_PREVIOUS`), which only opens. A sealed value
//! is `v2.` + the sealing key's id + `.` + base64url(nonce ‖ ciphertext ‖ tag), so opening picks
//! its key instead of trying each. The id is the first 6 bytes of a domain-separated SHA-256 of
//! the key (48 bits: enough to tell two keys apart, far too few to say anything about a 256-bit
//! key). Values sealed before key ids existed (`v1.` + base64url(…)) still open: under the
//! current key, else the previous one.
//!
//! The nonce is 96 random bits: safe for far more seals than a user table will ever need under
//! one key. The caller passes associated data (the user id), so a ciphertext copied onto another
//! user's row does not open.
//!
//! The data key is also the one secret every instance of a deployment shares, so keys that must
//! agree across instances (the list-cursor MAC key) are derived from it: HKDF-SHA256 (RFC 5869)
//! with a label per purpose. A subkey reveals nothing about the data key or about another
//! subkey, and the data key itself is only ever used for AES-GCM. Subkeys come from the current
//! key only: what they protect is short-lived (a cursor made before a rotation is refused after
//! it, and the client starts its listing again).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::digest;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// Values sealed before key ids: no id, so the ring tries its keys in turn.
const LEGACY_PREFIX: &str = "v1.";
const PREFIX: &str = "v2.";
/// The HKDF salt of every subkey.
const SUBKEY_SALT: &[u8] = b"rampart data-key subkeys v1";
/// Hashed before the key for its id, so the id is no plain SHA-256 of the key used elsewhere.
const KEY_ID_LABEL: &[u8] = b"rampart data-key id v1\0";

#[derive(Debug, thiserror::Error)]
pub enum DataKeyError {
    #[error("the data key must be 32 random bytes, base64-encoded (e.g. `openssl rand -base64 32`)")]
    Malformed,
    #[error("the previous data key is the current one: set the previous key to the one being replaced")]
    PreviousIsCurrent,
    #[error("the system random generator failed")]
    Random,
    /// Wrong key, tampered value, or a value sealed for another user.
    #[error("a sealed value could not be opened")]
    Open,
    /// Sealed under a key the ring does not hold (the previous key was removed before
    /// `rampart data-key rotate` ran). The id is no secret: it names the key to put back.
    #[error("sealed with data key {0}, which is neither the current nor the previous data key")]
    UnknownKey(String),
}

/// One key of the ring, with its id.
struct RingKey {
    id: String,
    aead: LessSafeKey,
}

impl RingKey {
    fn parse(text: &str) -> Result<(Self, Vec<u8>), DataKeyError> {
        let text = text.trim();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
            .map_err(|_| DataKeyError::Malformed)?;
        if bytes.len() != 32 {
            return Err(DataKeyError::Malformed);
        }
        let aead = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| DataKeyError::Malformed)?);
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(KEY_ID_LABEL);
        ctx.update(&bytes);
        let hash = ctx.finish();
        let id = URL_SAFE_NO_PAD.encode(hash.as_ref().get(..6).ok_or(DataKeyError::Malformed)?);
        Ok((Self { id, aead }, bytes))
    }

    fn open(&self, body: &str, associated: &str) -> Result<Vec<u8>, DataKeyError> {
        let raw = URL_SAFE_NO_PAD.decode(body).map_err(|_| DataKeyError::Open)?;
        if raw.len() < NONCE_LEN {
            return Err(DataKeyError::Open);
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| DataKeyError::Open)?;
        let mut buf = ciphertext.to_vec();
        let plain = self
            .aead
            .open_in_place(nonce, Aad::from(associated.as_bytes()), &mut buf)
            .map_err(|_| DataKeyError::Open)?;
        Ok(plain.to_vec())
    }
}

pub struct DataKey {
    current: RingKey,
    previous: Option<RingKey>,
    /// HKDF's pseudorandom key (the extract step) of the current key, as the HMAC key of the
    /// expand step.
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
        let (current, bytes) = RingKey::parse(text)?;
        let prk = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, SUBKEY_SALT), &bytes);
        let subkey_prk = hmac::Key::new(hmac::HMAC_SHA256, prk.as_ref());
        Ok(Self { current, previous: None, subkey_prk, rng: SystemRandom::new() })
    }

    /// The ring with `text` as the previous key: it opens, never seals.
    pub fn with_previous(mut self, text: &str) -> Result<Self, DataKeyError> {
        let (previous, _) = RingKey::parse(text)?;
        // The same key twice is a slip (the new key was not put in place): refused, or a rotation
        // would report success while nothing changed.
        if previous.id == self.current.id {
            return Err(DataKeyError::PreviousIsCurrent);
        }
        self.previous = Some(previous);
        Ok(self)
    }

    /// The current key's id: what new seals carry.
    pub fn id(&self) -> &str {
        &self.current.id
    }

    /// The previous key's id, when one is configured.
    pub fn previous_id(&self) -> Option<&str> {
        self.previous.as_ref().map(|k| k.id.as_str())
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
        self.current
            .aead
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(associated.as_bytes()), &mut buf)
            .map_err(|_| DataKeyError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(format!("{PREFIX}{}.{}", self.current.id, URL_SAFE_NO_PAD.encode(out)))
    }

    pub fn open(&self, sealed: &str, associated: &str) -> Result<Vec<u8>, DataKeyError> {
        if let Some(rest) = sealed.strip_prefix(PREFIX) {
            let (id, body) = rest.split_once('.').ok_or(DataKeyError::Open)?;
            let key = [Some(&self.current), self.previous.as_ref()]
                .into_iter()
                .flatten()
                .find(|k| k.id == id)
                .ok_or_else(|| DataKeyError::UnknownKey(id.to_owned()))?;
            return key.open(body, associated);
        }
        let body = sealed.strip_prefix(LEGACY_PREFIX).ok_or(DataKeyError::Open)?;
        match (self.current.open(body, associated), &self.previous) {
            (Ok(plain), _) => Ok(plain),
            (Err(_), Some(previous)) => previous.open(body, associated),
            (Err(e), None) => Err(e),
        }
    }

    /// Whether `sealed` is sealed under the current key (so a rotation leaves it alone). Says
    /// nothing about whether it opens.
    pub fn is_current(&self, sealed: &str) -> bool {
        sealed.strip_prefix(PREFIX).and_then(|rest| rest.split_once('.')).is_some_and(|(id, _)| id == self.current.id)
    }

    /// `sealed`, opened with whichever key of the ring sealed it and sealed again under the
    /// current key.
    pub fn reseal(&self, sealed: &str, associated: &str) -> Result<String, DataKeyError> {
        self.seal(&self.open(sealed, associated)?, associated)
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

    const A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const B: &str = "HxweHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=";

    /// A value as versions before key ids sealed it: `v1.` + base64url(nonce ‖ ciphertext ‖ tag).
    fn legacy_seal(text: &str, plaintext: &[u8], associated: &str) -> String {
        let bytes = STANDARD.decode(text).unwrap();
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &bytes).unwrap());
        let nonce = [7u8; NONCE_LEN];
        let mut buf = plaintext.to_vec();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(associated.as_bytes()), &mut buf)
            .unwrap();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        format!("v1.{}", URL_SAFE_NO_PAD.encode(out))
    }

    #[test]
    fn seals_carry_the_current_key_id_and_the_previous_key_only_opens() {
        let a = DataKey::from_base64(A).unwrap();
        let old = a.seal(b"secret", "user-1").unwrap();
        assert!(old.starts_with(&format!("v2.{}.", a.id())), "{old}");
        assert_eq!(a.id().len(), 8);

        let ring = DataKey::from_base64(B).unwrap().with_previous(A).unwrap();
        assert_eq!(ring.previous_id(), Some(a.id()));
        assert_ne!(ring.id(), a.id());
        assert_eq!(ring.open(&old, "user-1").unwrap(), b"secret");
        assert!(ring.open(&old, "user-2").is_err(), "still bound to the user");
        assert!(!ring.is_current(&old));
        let new = ring.seal(b"secret", "user-1").unwrap();
        assert!(ring.is_current(&new) && new.starts_with(&format!("v2.{}.", ring.id())));
        let resealed = ring.reseal(&old, "user-1").unwrap();
        assert!(ring.is_current(&resealed));

        // Only B: what B sealed opens; what A sealed fails with A's id, to put it back.
        let only_b = DataKey::from_base64(B).unwrap();
        assert_eq!(only_b.open(&resealed, "user-1").unwrap(), b"secret");
        match only_b.open(&old, "user-1") {
            Err(DataKeyError::UnknownKey(id)) => assert_eq!(id, a.id()),
            other => panic!("{other:?}"),
        }
        // An id swapped for the current one does not make A's ciphertext open under B.
        let forged = old.replacen(a.id(), only_b.id(), 1);
        assert!(matches!(only_b.open(&forged, "user-1"), Err(DataKeyError::Open)));
    }

    #[test]
    fn values_sealed_before_key_ids_still_open_and_reseal() {
        let legacy = legacy_seal(A, b"secret", "user-1");
        let a = DataKey::from_base64(A).unwrap();
        assert_eq!(a.open(&legacy, "user-1").unwrap(), b"secret");
        assert!(!a.is_current(&legacy), "a rotation rewrites it with an id");
        assert!(a.is_current(&a.reseal(&legacy, "user-1").unwrap()));
        let ring = DataKey::from_base64(B).unwrap().with_previous(A).unwrap();
        assert_eq!(ring.open(&legacy, "user-1").unwrap(), b"secret");
        assert!(ring.open(&legacy, "user-2").is_err());
        assert!(DataKey::from_base64(B).unwrap().open(&legacy, "user-1").is_err());
    }

    #[test]
    fn the_previous_key_must_be_another_well_formed_key() {
        assert!(matches!(DataKey::from_base64(A).unwrap().with_previous(A), Err(DataKeyError::PreviousIsCurrent)));
        assert!(matches!(DataKey::from_base64(A).unwrap().with_previous("c2hvcnQ="), Err(DataKeyError::Malformed)));
    }
}

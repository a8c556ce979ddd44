//! Signing keys: PKCS#8 PEM files named `<kid>.pem` in `auth.keys_dir`, mode 0600, so that an
//! operator can also bring keys made with openssl.
//!
//! Rotation without a flag day: the newest key signs once it has been on disk for one reload
//! interval (every instance has re-read the directory by then, so every instance can verify what it
//! signs). An older key keeps verifying, and stays in the JWKS, until the last token it can have
//! signed has expired; after that it is refused even if its file is still there.

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

use crate::clock::{Millis, duration_ms, now_ms};
use crate::config::JwtAlgorithm;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read keys directory {}: {source}", dir.display())]
    ReadDir { dir: PathBuf, source: std::io::Error },
    #[error("cannot create {}: {source}", path.display())]
    Create { path: PathBuf, source: std::io::Error },
    #[error("cannot restrict {}: {source}", dir.display())]
    Restrict { dir: PathBuf, source: std::io::Error },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("RSA key generation failed: {0}")]
    GenerateRsa(#[source] rsa::Error),
    #[error("PEM encoding failed: {0}")]
    EncodePem(#[source] rsa::pkcs8::Error),
    /// ring's error says nothing more than that it failed.
    #[error("Ed25519 key generation failed")]
    GenerateEd25519,
    #[error("key file {}: {problem}", path.display())]
    Invalid {
        path: PathBuf,
        #[source]
        problem: KeyFileProblem,
    },
}

/// What is wrong with one key file. Parse errors are described by kind only: the message of a
/// PEM or key parser could quote key bytes.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileProblem {
    #[error("the file name (the kid) must be 1-64 characters of [A-Za-z0-9._-]")]
    Kid,
    #[error("cannot read: {0}")]
    Read(#[source] std::io::Error),
    /// Its metadata (for the permission check) could not be read.
    #[error(transparent)]
    Metadata(std::io::Error),
    #[error("mode {0:o} lets others read a private key; chmod 600 it")]
    Readable(u32),
    #[error("not an RSA private key in PEM (PKCS#8 or PKCS#1); jwt_algorithm is RS256")]
    NotRsa,
    #[error("RSA keys must have at least 2048 bits")]
    RsaTooSmall,
    #[error("unusable RSA key")]
    UnusableRsa,
    #[error("not a PKCS#8 PEM private key; jwt_algorithm is EdDSA")]
    NotPkcs8,
    #[error("not an Ed25519 private key; jwt_algorithm is EdDSA")]
    NotEd25519,
}

/// RSA modulus size for generated keys. 2048 bits: NIST-approved through 2030, and verification
/// (the per-request cost) is about four times cheaper than with 4096.
pub const RSA_BITS: usize = 2048;

pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    /// The public JWK (RFC 7517), as published.
    pub jwk: Value,
    /// When the key appeared (file modification time).
    pub created_ms: Millis,
}

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Signs new tokens now.
    Current,
    /// Newer than the current key, waiting out its activation delay (every instance must have
    /// loaded it before it signs).
    Next,
    /// Replaced, still verifying the tokens it signed until they have all expired.
    Retiring,
    /// Replaced and past the life of its last token: verifies nothing; its file can go.
    Expired,
}

impl KeyState {
    pub fn label(self) -> &'static str {
        match self {
            KeyState::Current => "current",
            KeyState::Next => "next",
            KeyState::Retiring => "retiring",
            KeyState::Expired => "expired",
        }
    }
}

/// The public facts about one signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySummary {
    pub kid: String,
    pub alg: String,
    pub state: KeyState,
    /// When the key file appeared.
    pub created_ms: Millis,
    /// When it starts (or started) to sign, if it becomes current.
    pub signs_from_ms: Millis,
    /// Until when it verifies: `None` while it is the newest key (no successor yet).
    pub verifies_until: Option<Millis>,
}

/// The keys of one directory, oldest first.
pub struct KeyRing {
    keys: Vec<SigningKey>,
    /// Also the activation delay of a new key.
    reload_interval: Millis,
    /// Longest an access token can live, leeway included.
    max_token_life: Millis,
}

impl KeyRing {
    pub fn load(
        dir: &Path,
        alg: JwtAlgorithm,
        reload_interval: Duration,
        max_token_life: Duration,
    ) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        for path in pem_files(dir)? {
            keys.push(load_key(&path, alg)?);
        }
        keys.sort_by(|a, b| a.created_ms.cmp(&b.created_ms).then_with(|| a.kid.cmp(&b.kid)));
        Ok(Self { keys, reload_interval: duration_ms(reload_interval), max_token_life: duration_ms(max_token_life) })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key that signs now: the newest one past its activation delay (or the only one).
    pub fn signing(&self, now: Millis) -> Option<&SigningKey> {
        self.keys.iter().rev().find(|k| now - k.created_ms >= self.reload_interval).or_else(|| self.keys.first())
    }

    /// Until when tokens signed by `keys[i]` can be valid: the moment its successor took over,
    /// plus the longest token life. `None`: still signing, no end yet.
    fn valid_until(&self, i: usize) -> Option<Millis> {
        let next = self.keys.get(i + 1)?;
        Some(next.created_ms + self.reload_interval + self.max_token_life)
    }

    /// The key that may verify a token with this `kid` now.
    pub fn verifying(&self, kid: &str, now: Millis) -> Option<&SigningKey> {
        let i = self.keys.iter().position(|k| k.kid == kid)?;
        match self.valid_until(i) {
            Some(end) if now > end => None,
            _ => self.keys.get(i),
        }
    }

    /// The JWKS: every key that can still verify a token (current, upcoming and retiring).
    pub fn jwks(&self, now: Millis) -> Value {
        let keys: Vec<&Value> = (self.keys.iter().enumerate())
            .filter(|&(i, _)| self.valid_until(i).is_none_or(|end| now <= end))
            .map(|(_, k)| &k.jwk)
            .collect();
        json!({ "keys": keys })
    }

    /// Key files whose tokens have all expired.
    pub fn expired_files(&self, dir: &Path, now: Millis) -> Vec<PathBuf> {
        (self.keys.iter().enumerate())
            .filter(|&(i, _)| self.valid_until(i).is_some_and(|end| now > end))
            .map(|(_, k)| dir.join(format!("{}.pem", k.kid)))
            .collect()
    }

    /// What an admin may see of the ring: ids, algorithm, state and dates, oldest first. Built
    /// field by field from public facts, so no private material can reach a page through it.
    pub fn summary(&self, now: Millis) -> Vec<KeySummary> {
        let current = self.signing(now).map(|k| k.kid.as_str());
        let current_at = self.keys.iter().position(|k| Some(k.kid.as_str()) == current);
        (self.keys.iter().enumerate())
            .map(|(i, k)| {
                let verifies_until = self.valid_until(i);
                let state = match current_at {
                    Some(c) if i == c => KeyState::Current,
                    Some(c) if i > c => KeyState::Next,
                    _ if verifies_until.is_some_and(|end| now > end) => KeyState::Expired,
                    _ => KeyState::Retiring,
                };
                KeySummary {
                    kid: k.kid.clone(),
                    alg: format!("{:?}", k.alg),
                    state,
                    created_ms: k.created_ms,
                    signs_from_ms: k.created_ms + self.reload_interval,
                    verifies_until,
                }
            })
            .collect()
    }

    /// A cheap fingerprint of the directory, to reload only when it changed.
    pub fn fingerprint(dir: &Path) -> Vec<(PathBuf, Millis)> {
        let mut v: Vec<(PathBuf, Millis)> =
            pem_files(dir).unwrap_or_default().into_iter().map(|p| (p.clone(), modified_ms(&p).unwrap_or(0))).collect();
        v.sort();
        v
    }
}

fn pem_files(dir: &Path) -> Result<Vec<PathBuf>, KeyError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(KeyError::ReadDir { dir: dir.to_owned(), source }),
    };
    Ok(entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pem") && p.is_file())
        .collect())
}

fn modified_ms(path: &Path) -> Option<Millis> {
    let t = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(duration_ms(t.duration_since(UNIX_EPOCH).ok()?))
}

fn invalid(path: &Path, problem: KeyFileProblem) -> KeyError {
    KeyError::Invalid { path: path.to_owned(), problem }
}

fn load_key(path: &Path, alg: JwtAlgorithm) -> Result<SigningKey, KeyError> {
    let kid = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
    if kid.is_empty() || kid.len() > 64 || !kid.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        return Err(invalid(path, KeyFileProblem::Kid));
    }
    check_permissions(path)?;
    let pem_text = std::fs::read_to_string(path).map_err(|e| invalid(path, KeyFileProblem::Read(e)))?;
    let created_ms = modified_ms(path).unwrap_or_else(now_ms);
    // Parse errors are described by kind only (`KeyFileProblem`): a parser's message could quote
    // key bytes.
    match alg {
        JwtAlgorithm::RS256 => {
            let key = rsa::RsaPrivateKey::from_pkcs8_pem(&pem_text)
                .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(&pem_text))
                .map_err(|_| invalid(path, KeyFileProblem::NotRsa))?;
            if key.size() * 8 < 2048 {
                return Err(invalid(path, KeyFileProblem::RsaTooSmall));
            }
            let (n, e) = (key.n().to_bytes_be(), key.e().to_bytes_be());
            let encoding = EncodingKey::from_rsa_pem(pem_text.as_bytes())
                .map_err(|_| invalid(path, KeyFileProblem::UnusableRsa))?;
            let jwk = json!({
                "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                "n": URL_SAFE_NO_PAD.encode(&n), "e": URL_SAFE_NO_PAD.encode(&e),
            });
            Ok(SigningKey {
                kid,
                alg: Algorithm::RS256,
                encoding,
                decoding: DecodingKey::from_rsa_raw_components(&n, &e),
                jwk,
                created_ms,
            })
        }
        JwtAlgorithm::EdDSA => {
            let der = pem::parse(&pem_text)
                .ok()
                .filter(|p| p.tag() == "PRIVATE KEY")
                .map(|p| p.contents().to_vec())
                .ok_or_else(|| invalid(path, KeyFileProblem::NotPkcs8))?;
            let pair = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
                .map_err(|_| invalid(path, KeyFileProblem::NotEd25519))?;
            let public = ring::signature::KeyPair::public_key(&pair).as_ref().to_vec();
            let jwk = json!({
                "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(&public),
            });
            Ok(SigningKey {
                kid,
                alg: Algorithm::EdDSA,
                encoding: EncodingKey::from_ed_der(&der),
                decoding: DecodingKey::from_ed_der(&public),
                jwk,
                created_ms,
            })
        }
    }
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).map_err(|e| invalid(path, KeyFileProblem::Metadata(e)))?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(invalid(path, KeyFileProblem::Readable(mode & 0o777)));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_: &Path) -> Result<(), KeyError> {
    Ok(())
}

/// Writes a new private key (mode 0600, in a 0700 directory) and returns its kid.
pub fn generate(dir: &Path, alg: JwtAlgorithm) -> Result<String, KeyError> {
    std::fs::create_dir_all(dir).map_err(|source| KeyError::Create { path: dir.to_owned(), source })?;
    restrict_dir(dir)?;
    let pem_text = match alg {
        JwtAlgorithm::RS256 => {
            let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, RSA_BITS).map_err(KeyError::GenerateRsa)?;
            key.to_pkcs8_pem(LineEnding::LF).map_err(KeyError::EncodePem)?.to_string()
        }
        JwtAlgorithm::EdDSA => {
            let doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
                .map_err(|_| KeyError::GenerateEd25519)?;
            pem::encode(&pem::Pem::new("PRIVATE KEY", doc.as_ref().to_vec()))
        }
    };
    let kid = format!("k{}", &crate::opaque_token::hex(&rand_bytes())[..16]);
    let path = dir.join(format!("{kid}.pem"));
    write_private(&path, pem_text.as_bytes())?;
    Ok(kid)
}

fn rand_bytes() -> [u8; 8] {
    use rand::RngCore;
    let mut b = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

#[cfg(unix)]
fn restrict_dir(dir: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|source| KeyError::Restrict { dir: dir.to_owned(), source })
}

#[cfg(not(unix))]
fn restrict_dir(_: &Path) -> Result<(), KeyError> {
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|source| KeyError::Create { path: path.to_owned(), source })?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(|source| KeyError::Write { path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> PathBuf {
        let d = std::env::temp_dir().join(format!("rampart-keys-{}", crate::opaque_token::new_id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn generated_keys_load_with_mode_0600() {
        for alg in [JwtAlgorithm::EdDSA, JwtAlgorithm::RS256] {
            let dir = tmp();
            let kid = generate(&dir, alg).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(dir.join(format!("{kid}.pem"))).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600);
            }
            let ring = KeyRing::load(&dir, alg, Duration::from_secs(0), Duration::from_secs(600)).unwrap();
            assert_eq!(ring.signing(now_ms()).unwrap().kid, kid);
            assert_eq!(ring.jwks(now_ms())["keys"][0]["kid"], json!(kid));
            // The other algorithm's loader refuses this key.
            let other = if alg == JwtAlgorithm::RS256 { JwtAlgorithm::EdDSA } else { JwtAlgorithm::RS256 };
            assert!(KeyRing::load(&dir, other, Duration::from_secs(0), Duration::from_secs(600)).is_err());
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn a_retired_key_verifies_until_its_last_token_expires_then_never() {
        let dir = tmp();
        let old = generate(&dir, JwtAlgorithm::EdDSA).unwrap();
        let new = generate(&dir, JwtAlgorithm::EdDSA).unwrap();
        let t0 = std::time::SystemTime::now() - Duration::from_secs(3600);
        let set = |kid: &str, t: std::time::SystemTime| {
            std::fs::File::options().write(true).open(dir.join(format!("{kid}.pem"))).unwrap().set_modified(t).unwrap();
        };
        set(&old, t0);
        set(&new, t0 + Duration::from_secs(100));
        let ring = KeyRing::load(&dir, JwtAlgorithm::EdDSA, Duration::from_secs(1), Duration::from_secs(10)).unwrap();
        let ms = |d: u64| duration_ms(t0.duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(d));
        // Before the new key's activation delay the old one still signs; after it, the new one.
        assert_eq!(ring.signing(ms(100)).unwrap().kid, old);
        assert_eq!(ring.signing(ms(102)).unwrap().kid, new);
        // The old key verifies (and is published) until activation + token life, then never.
        assert!(ring.verifying(&old, ms(110)).is_some());
        assert_eq!(ring.jwks(ms(110))["keys"].as_array().unwrap().len(), 2);
        assert!(ring.verifying(&old, ms(112)).is_none());
        assert_eq!(ring.jwks(ms(112))["keys"].as_array().unwrap().len(), 1);
        assert_eq!(ring.expired_files(&dir, ms(112)), vec![dir.join(format!("{old}.pem"))]);
        assert!(ring.verifying(&new, ms(10_000)).is_some());
        assert!(ring.verifying("nope", ms(110)).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_summary_names_each_key_state_and_no_secret() {
        let dir = tmp();
        let old = generate(&dir, JwtAlgorithm::EdDSA).unwrap();
        let mid = generate(&dir, JwtAlgorithm::EdDSA).unwrap();
        let new = generate(&dir, JwtAlgorithm::EdDSA).unwrap();
        let t0 = std::time::SystemTime::now() - Duration::from_secs(3600);
        let set = |kid: &str, t: std::time::SystemTime| {
            std::fs::File::options().write(true).open(dir.join(format!("{kid}.pem"))).unwrap().set_modified(t).unwrap();
        };
        set(&old, t0);
        set(&mid, t0 + Duration::from_secs(100));
        set(&new, t0 + Duration::from_secs(200));
        let ring = KeyRing::load(&dir, JwtAlgorithm::EdDSA, Duration::from_secs(1), Duration::from_secs(10)).unwrap();
        let ms = |d: u64| duration_ms(t0.duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(d));
        let states = |at: u64| ring.summary(ms(at)).iter().map(|k| (k.kid.clone(), k.state)).collect::<Vec<_>>();
        // Asked at 105 s: `mid` signs, `old` still verifies its tokens, and `new` (dated later)
        // waits as next.
        assert_eq!(
            states(105),
            [(old.clone(), KeyState::Retiring), (mid.clone(), KeyState::Current), (new.clone(), KeyState::Next)]
        );
        // At 205 s: `new` signs, `mid` retires, `old` is past its last token.
        assert_eq!(states(205), [(old, KeyState::Expired), (mid, KeyState::Retiring), (new, KeyState::Current)]);
        let s = ring.summary(ms(205));
        assert_eq!(s[2].verifies_until, None);
        assert_eq!(s[1].verifies_until, Some(ms(211)));
        assert_eq!(s[2].signs_from_ms, ms(201));
        assert_eq!(s[0].alg, "EdDSA");
        assert!(!format!("{s:?}").contains("PRIVATE"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unreadable_directory_keeps_the_io_error() {
        let dir = tmp();
        let file = dir.join("not-a-directory");
        std::fs::write(&file, b"x").unwrap();
        let e = KeyRing::load(&file, JwtAlgorithm::EdDSA, Duration::ZERO, Duration::ZERO).err().unwrap();
        let cause = std::error::Error::source(&e).and_then(|c| c.downcast_ref::<std::io::Error>()).expect("io cause");
        assert_eq!(e.to_string(), format!("cannot read keys directory {}: {cause}", file.display()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn world_readable_keys_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tmp();
        let kid = generate(&dir, JwtAlgorithm::EdDSA).unwrap();
        let p = dir.join(format!("{kid}.pem"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = KeyRing::load(&dir, JwtAlgorithm::EdDSA, Duration::ZERO, Duration::ZERO).err().unwrap().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        assert!(!e.contains("PRIVATE"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! TLS served directly (`server.tls_cert_file` / `server.tls_key_file`): rustls on the ring
//! provider, TLS 1.2 and 1.3 only, rustls' default suites (AEAD with forward secrecy only: no CBC,
//! no RSA key exchange, no RC4/3DES), ALPN `http/1.1` (the server speaks HTTP/1 only).
//!
//! The certificate is held by [`Certificates`], a resolver whose current key pair is swapped in
//! place: [`spawn_reload`] re-reads both files every [`RELOAD_EVERY`] and, when their content
//! changed and the new pair loads (parses, and the key matches the certificate), every handshake
//! from then on uses it. Open connections keep theirs, so a renewal drops nothing. A new pair that
//! does not load (half-written, mismatched, unreadable) keeps the old one and logs an error.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// How often the certificate files are re-read. Two small files: cheap, and a renewal is live
/// within seconds.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);

/// Why a certificate and key pair cannot be used. Never holds key material; names the file.
/// [`TlsError::key`] is the config key it is about.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {reason}")]
    Read { key: &'static str, path: String, reason: String },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: String },
    #[error("{path} holds no usable PEM private key ({reason})")]
    BadKey { path: String, reason: String },
    #[error("the key does not belong to the certificate in tls_cert_file ({reason})")]
    Mismatch { reason: String },
    #[error("TLS settings: {0}")]
    Config(String),
}

impl TlsError {
    /// The config key the problem is about.
    pub fn key(&self) -> &'static str {
        match self {
            TlsError::Read { key: "tls_key_file", .. } | TlsError::BadKey { .. } | TlsError::Mismatch { .. } => {
                "server.tls_key_file"
            }
            _ => "server.tls_cert_file",
        }
    }
}

/// The configured files, as read: compared on each poll to see whether they changed.
#[derive(PartialEq, Eq)]
struct FileBytes {
    cert: Vec<u8>,
    key: Vec<u8>,
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read { key, path: path.display().to_string(), reason: e.to_string() })
}

fn read_both(cert: &Path, key: &Path) -> Result<FileBytes, TlsError> {
    Ok(FileBytes { cert: read("tls_cert_file", cert)?, key: read("tls_key_file", key)? })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses a PEM chain (leaf first) and key and checks that they belong together.
fn certified_key(files: &FileBytes, cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_slice_iter(&files.cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsError::NoCertificate { path: cert.display().to_string() })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: cert.display().to_string() });
    }
    // The reason is rustls' fixed text ("no keys found", a PEM syntax error): never key bytes.
    let private = PrivateKeyDer::from_pem_slice(&files.key)
        .map_err(|e| TlsError::BadKey { path: key.display().to_string(), reason: e.to_string() })?;
    // `from_der` loads the key with the provider and checks it against the leaf certificate.
    CertifiedKey::from_der(chain, private, &provider()).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => TlsError::Mismatch { reason: e.to_string() },
        other => TlsError::BadKey { path: key.display().to_string(), reason: other.to_string() },
    })
}

/// The server certificate in use, replaceable while the server runs.
#[derive(Debug)]
pub struct Certificates {
    current: RwLock<Arc<CertifiedKey>>,
    cert_path: PathBuf,
    key_path: PathBuf,
}

impl Certificates {
    /// Loads the pair now: start-up refuses to run with files that do not load.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Self>, TlsError> {
        let bytes = read_both(cert, key)?;
        let pair = certified_key(&bytes, cert, key)?;
        Ok(Arc::new(Self {
            current: RwLock::new(Arc::new(pair)),
            cert_path: cert.to_path_buf(),
            key_path: key.to_path_buf(),
        }))
    }

    fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|k| Arc::clone(&k))
    }

    fn replace(&self, pair: CertifiedKey) {
        if let Ok(mut k) = self.current.write() {
            *k = Arc::new(pair);
        }
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}

/// The acceptor for the public listener: TLS 1.2 and 1.3, ALPN http/1.1, this certificate.
pub fn acceptor(certs: Arc<Certificates>) -> Result<TlsAcceptor, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(certs);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Re-reads the files every [`RELOAD_EVERY`]; a changed pair that loads replaces the current
/// one. A failure is logged once per distinct content, so a broken file does not flood the log.
pub fn spawn_reload(certs: Arc<Certificates>) {
    tokio::spawn(async move {
        let (cert, key) = (certs.cert_path.clone(), certs.key_path.clone());
        let mut seen = read_both(&cert, &key).ok();
        let mut tick = tokio::time::interval(RELOAD_EVERY);
        let mut failing = false;
        loop {
            tick.tick().await;
            let now = match read_both(&cert, &key) {
                Ok(now) => now,
                Err(e) => {
                    if !failing {
                        tracing::error!(error = %e, "TLS certificate reload failed; keeping the loaded certificate");
                        failing = true;
                    }
                    continue;
                }
            };
            if seen.as_ref() == Some(&now) {
                continue;
            }
            match certified_key(&now, &cert, &key) {
                Ok(pair) => {
                    certs.replace(pair);
                    tracing::info!(event = "tls_reloaded", "TLS certificate reloaded");
                    failing = false;
                }
                Err(e) => {
                    tracing::error!(error = %e, "TLS certificate reload failed; keeping the loaded certificate");
                    failing = true;
                }
            }
            seen = Some(now);
        }
    });
}

//! TOTP (RFC 6238) through `totp-rs`: SHA-1, 6 digits, 30-second steps, the parameters every
//! authenticator app understands, and recovery codes.
//!
//! Replay protection needs to know *which* step a code matched, which `totp-rs`'s `check` does
//! not say, so [`Totp::matching_step`] asks it for the code of each allowed step and compares in
//! constant time. The store then accepts a step only if it is later than the last one used.

use rand::RngCore;
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use totp_rs::{Algorithm, TOTP};

use crate::opaque_token::{TokenHash, ct_eq};

pub const DIGITS: usize = 6;
pub const STEP_SECS: u64 = 30;
/// One step either side: a phone clock a little off, or a code typed as it rolled over.
pub const SKEW_STEPS: u64 = 1;
/// 160 bits, RFC 4226's recommendation.
pub const SECRET_BYTES: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    #[error("invalid TOTP parameters: {0}")]
    Parameters(#[source] totp_rs::TotpUrlError),
    /// The `otpauth://` URI does not fit in a QR code (an issuer or email far too long).
    #[error("invalid TOTP parameters: QR code: {0:?}")]
    QrCode(#[source] qrcodegen::DataTooLong),
}

pub struct Totp(TOTP);

impl Totp {
    /// `account` is the user's email, `issuer` the service name shown in the authenticator app.
    pub fn new(secret: Vec<u8>, issuer: &str, account: &str) -> Result<Self, TotpError> {
        // The otpauth label is `issuer:account`; neither part may hold a colon.
        let issuer = issuer.replace(':', " ");
        let account = account.replace(':', " ");
        TOTP::new(Algorithm::SHA1, DIGITS, 1, STEP_SECS, secret, Some(issuer), account)
            .map(Self)
            .map_err(TotpError::Parameters)
    }

    /// A fresh random secret.
    pub fn generate_secret() -> Vec<u8> {
        let mut secret = vec![0u8; SECRET_BYTES];
        OsRng.fill_bytes(&mut secret);
        secret
    }

    /// RFC 4648 base32 without padding: what a user types into an app by hand.
    pub fn secret_base32(&self) -> String {
        self.0.get_secret_base32()
    }

    pub fn otpauth_uri(&self) -> String {
        self.0.get_url()
    }

    /// The step (Unix time / 30) whose code `code` is, among the current one and one either
    /// side; `None` for a wrong or malformed code. Every candidate is compared, whatever matched,
    /// so the time taken does not depend on which step (if any) it was.
    pub fn matching_step(&self, code: &str, unix_secs: u64) -> Option<u64> {
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let now = unix_secs / STEP_SECS;
        let mut found = None;
        for step in now.saturating_sub(SKEW_STEPS)..=now + SKEW_STEPS {
            if ct_eq(&self.0.generate(step * STEP_SECS), code) && found.is_none() {
                found = Some(step);
            }
        }
        found
    }

    /// The setup QR code as a standalone SVG (dark modules as one path, a 4-module quiet zone).
    pub fn qr_svg(&self) -> Result<String, TotpError> {
        let qr = qrcodegen::QrCode::encode_text(&self.otpauth_uri(), qrcodegen::QrCodeEcc::Medium)
            .map_err(TotpError::QrCode)?;
        let border = 4;
        let size = qr.size() + 2 * border;
        let mut path = String::new();
        for y in 0..qr.size() {
            for x in 0..qr.size() {
                if qr.get_module(x, y) {
                    path.push_str(&format!("M{},{}h1v1h-1z", x + border, y + border));
                }
            }
        }
        Ok(format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" shape-rendering=\"crispEdges\">\
             <rect width=\"100%\" height=\"100%\" fill=\"#fff\"/><path fill=\"#000\" d=\"{path}\"/></svg>"
        ))
    }
}

/// Recovery codes: 10 per enrolment, each 80 random bits as 16 base32 characters in groups of
/// four (`abcd-efgh-ijkl-mnop`). 80 bits make a fast hash safe to store (nothing to brute-force
/// offline), and a lookup stays one indexed equality, like every other opaque token here.
pub const RECOVERY_CODES: usize = 10;
const RECOVERY_LEN: usize = 16;
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

pub fn generate_recovery_codes() -> Vec<SecretString> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; RECOVERY_LEN];
            OsRng.fill_bytes(&mut bytes);
            // `b & 31` indexes the 32-letter alphabet; `get` only satisfies the indexing lint.
            let chars: Vec<char> =
                bytes.iter().filter_map(|b| ALPHABET.get(usize::from(b & 31)).copied().map(char::from)).collect();
            let groups: Vec<String> = chars.chunks(4).map(|c| c.iter().collect()).collect();
            SecretString::from(groups.join("-"))
        })
        .collect()
}

/// The hash a recovery code is stored and looked up by, after normalizing what a person may type
/// differently (case, dashes, spaces). `None` when it cannot be a recovery code at all.
pub fn recovery_code_hash(typed: &str) -> Option<TokenHash> {
    let normalized: String =
        typed.chars().filter(|c| !matches!(c, '-' | ' ')).map(|c| c.to_ascii_lowercase()).collect();
    (normalized.len() == RECOVERY_LEN && normalized.bytes().all(|b| ALPHABET.contains(&b)))
        .then(|| TokenHash::of(&normalized))
}

/// The hash of a freshly generated code (the same normalization as [`recovery_code_hash`]).
pub fn stored_recovery_hash(code: &SecretString) -> TokenHash {
    TokenHash::of(&code.expose_secret().replace('-', ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totp() -> Totp {
        Totp::new(Totp::generate_secret(), "Rampart", "ada@example.com").unwrap()
    }

    #[test]
    fn accepts_one_step_of_skew_only() {
        let t = totp();
        let now = 1_700_000_000u64;
        let step = now / STEP_SECS;
        for (offset, expected) in
            [(-90i64, None), (-30, Some(step - 1)), (0, Some(step)), (30, Some(step + 1)), (90, None)]
        {
            let code = t.0.generate(now.checked_add_signed(offset).unwrap());
            assert_eq!(t.matching_step(&code, now), expected, "offset {offset}");
        }
        assert_eq!(t.matching_step("12345", now), None);
        assert_eq!(t.matching_step("abcdef", now), None);
    }

    #[test]
    fn uri_and_qr() {
        let t = totp();
        let uri = t.otpauth_uri();
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        assert!(uri.contains(&format!("secret={}", t.secret_base32())));
        let svg = t.qr_svg().unwrap();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(t.secret_base32().len(), 32);
    }

    #[test]
    fn recovery_codes_normalize() {
        let codes = generate_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let c = codes[0].expose_secret();
        assert_eq!(c.len(), 19);
        let h = stored_recovery_hash(&codes[0]);
        assert_eq!(recovery_code_hash(c), Some(h.clone()));
        assert_eq!(recovery_code_hash(&c.to_uppercase().replace('-', " ")), Some(h));
        assert_eq!(recovery_code_hash("123456"), None);
        assert_eq!(recovery_code_hash("abcd-efgh-ijkl-mno1"), None);
    }
}

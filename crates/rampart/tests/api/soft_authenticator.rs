//! A software passkey authenticator for the black-box tests: it builds what a browser and a
//! platform authenticator would send (clientDataJSON, authenticator data, a `none` attestation
//! object with an ES256 COSE key, ECDSA P-256 assertions), so that the verifier under test
//! (webauthn-rs, inside the server) sees real WebAuthn data. Every field an attack needs to get
//! wrong is a knob: the origin, the rp id whose hash is signed, the counter, the key that signs,
//! the user-verified flag.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const ORIGIN: &str = "http://localhost";
pub const RP_ID: &str = "localhost";

const UP: u8 = 0x01;
const UV: u8 = 0x04;
const AT: u8 = 0x40;

pub struct SoftPasskey {
    key: EcdsaKeyPair,
    pub credential_id: Vec<u8>,
    /// The user handle the server gave at registration (returned when signing in).
    pub user_handle: Vec<u8>,
    pub counter: u32,
    pub origin: String,
    /// The rp id whose SHA-256 goes into the authenticator data.
    pub rp_id: String,
    pub user_verified: bool,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

fn new_key() -> EcdsaKeyPair {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap()
}

impl SoftPasskey {
    pub fn new() -> Self {
        Self {
            key: new_key(),
            credential_id: rand::random::<[u8; 32]>().to_vec(),
            user_handle: Vec::new(),
            counter: 0,
            origin: ORIGIN.into(),
            rp_id: RP_ID.into(),
            user_verified: true,
        }
    }

    /// The same credential id, signed by another key (an impostor who knows the id).
    pub fn impostor_of(other: &SoftPasskey) -> Self {
        let mut s = Self::new();
        s.credential_id = other.credential_id.clone();
        s.user_handle = other.user_handle.clone();
        s.counter = other.counter;
        s
    }

    fn client_data(&self, kind: &str, options: &Value) -> Vec<u8> {
        let challenge = options["challenge"].as_str().expect("options.challenge");
        serde_json::to_vec(&json!({
            "type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false
        }))
        .unwrap()
    }

    fn auth_data(&self, flags: u8) -> Vec<u8> {
        let mut d = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        let uv = if self.user_verified { UV } else { 0 };
        d.push(flags | UP | uv);
        d.extend_from_slice(&self.counter.to_be_bytes());
        d
    }

    fn cose_key(&self) -> Vec<u8> {
        let public = self.key.public_key().as_ref();
        let (x, y) = (&public[1..33], &public[33..65]);
        let mut c = Cbor::default();
        c.map(5);
        c.int(1).int(2); // kty: EC2
        c.int(3).int(-7); // alg: ES256
        c.int(-1).int(1); // crv: P-256
        c.int(-2).bytes(x);
        c.int(-3).bytes(y);
        c.out
    }

    /// `navigator.credentials.create(...)` answered, as `RegistrationResponseJSON`.
    pub fn register(&mut self, options: &Value) -> Value {
        self.user_handle = unb64(options["user"]["id"].as_str().expect("options.user.id"));
        let mut auth_data = self.auth_data(AT);
        auth_data.extend_from_slice(&[0u8; 16]); // AAGUID: none
        auth_data.extend_from_slice(&u16::try_from(self.credential_id.len()).unwrap().to_be_bytes());
        auth_data.extend_from_slice(&self.credential_id);
        auth_data.extend_from_slice(&self.cose_key());
        let mut att = Cbor::default();
        att.map(3);
        att.text("fmt").text("none");
        att.text("attStmt").map(0);
        att.text("authData").bytes(&auth_data);
        self.registration_json(&att.out, &self.client_data("webauthn.create", options))
    }

    pub fn registration_json(&self, attestation_object: &[u8], client_data: &[u8]) -> Value {
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "attestationObject": b64(attestation_object),
                "clientDataJSON": b64(client_data),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        })
    }

    /// `navigator.credentials.get(...)` answered, as `AuthenticationResponseJSON`; the counter
    /// goes up by one first (set `counter` to test what a clone would send).
    pub fn assert(&mut self, options: &Value) -> Value {
        self.counter += 1;
        self.assert_with_counter(options)
    }

    /// An assertion with the counter as it is now.
    pub fn assert_with_counter(&self, options: &Value) -> Value {
        let client_data = self.client_data("webauthn.get", options);
        let auth_data = self.auth_data(0);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let signature = self.key.sign(&SystemRandom::new(), &signed).unwrap();
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "authenticatorData": b64(&auth_data),
                "clientDataJSON": b64(&client_data),
                "signature": b64(signature.as_ref()),
                "userHandle": b64(&self.user_handle),
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        })
    }
}

/// Just enough CBOR (RFC 8949) for an attestation object and a COSE key.
#[derive(Default)]
pub struct Cbor {
    pub out: Vec<u8>,
}

impl Cbor {
    fn head(&mut self, major: u8, n: u64) -> &mut Self {
        let m = major << 5;
        match n {
            0..=23 => self.out.push(m | n as u8),
            24..=0xff => self.out.extend_from_slice(&[m | 24, n as u8]),
            0x100..=0xffff => {
                self.out.push(m | 25);
                self.out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            _ => {
                self.out.push(m | 26);
                self.out.extend_from_slice(&(n as u32).to_be_bytes());
            }
        }
        self
    }
    pub fn int(&mut self, v: i64) -> &mut Self {
        if v >= 0 { self.head(0, v as u64) } else { self.head(1, (-1 - v) as u64) }
    }
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.head(2, b.len() as u64);
        self.out.extend_from_slice(b);
        self
    }
    pub fn text(&mut self, s: &str) -> &mut Self {
        self.head(3, s.len() as u64);
        self.out.extend_from_slice(s.as_bytes());
        self
    }
    pub fn map(&mut self, entries: u64) -> &mut Self {
        self.head(5, entries)
    }
}

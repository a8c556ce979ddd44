//! Credential logic shared by every login path (cookie login, token grant, MFA).

pub mod access_tokens;
pub mod data_key;
pub mod hasher;
pub mod keys;
pub mod totp;
pub mod wrapped_hash;

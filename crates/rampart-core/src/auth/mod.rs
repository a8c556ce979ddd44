//! Credential logic shared by every login path (cookie login, token grant, MFA).

pub mod data_key;
pub mod hasher;
pub mod keys;
pub mod tokens;
pub mod totp;
pub mod wrapped_hash;

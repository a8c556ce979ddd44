//! Credential logic shared by every login path (cookie login, token grant, later MFA).

pub mod hasher;
pub mod keys;
pub mod revocation;
pub mod tokens;

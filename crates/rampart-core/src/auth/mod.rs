//! Credential logic shared by every login path (cookie login, token grant, later MFA).

pub mod hasher;

//! Rampart's domain: configuration, identity types and the credential logic.
//!
//! Nothing here speaks HTTP, SQL or Redis; the store, the shared state (`rampart-shared`) and the
//! HTTP layer depend on this crate, never the other way round.

pub mod api_key;
pub mod auth;
pub mod clock;
pub mod config;
pub mod cursor;
pub mod email;
pub mod ident;
pub mod opaque_token;
pub mod password;
pub mod resources;

//! Rampart's domain: configuration, identity types and the credential logic.
//!
//! Nothing here speaks HTTP or SQL; the store and the HTTP layer depend on this crate, never the
//! other way round.

pub mod auth;
pub mod clock;
pub mod config;
pub mod cursor;
pub mod email;
pub mod ident;
pub mod limit;
pub mod password;
mod redis_link;
pub mod resources;
pub mod token;

//! Extractors: a handler that needs a user takes [`Authenticated`] and cannot run without one.

mod client;
mod json;
mod session;

pub use client::{ClientIp, RequestContext, client_ip};
pub use json::ApiJson;
pub use session::{Authenticated, Credential};

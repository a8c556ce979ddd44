//! Extractors: a handler that needs a user takes [`Authenticated`] and cannot run without one.

mod client;
mod ids;
mod json;
mod maybe;
mod presented_token;
mod request_id;
mod role;
mod session;

pub use client::{ClientIp, ProxyTrust, RequestContext, UserAgent};
pub use ids::{IdPath, RecordPath};
pub use json::ApiJson;
pub(crate) use json::{declares_more_than, read_body};
pub use maybe::MaybeAuthenticated;
pub use presented_token::PresentedToken;
pub use request_id::{REQUEST_ID, RequestId};
pub use role::{Admin, RequireRole, require};
pub use session::{Authenticated, Credential, KeysAccepted};

//! The state that every instance of a deployment must share to enforce its limits: the
//! rate-limit cells ([`limit`]) and the set of revoked logins ([`revocation`]). In one process
//! both live in memory; with `redis.url` both live in Redis, over one connection
//! ([`SharedState::redis`]), with the in-memory backends as the fallback while Redis does not
//! answer.
//!
//! Why a crate of its own rather than a module of `rampart-core` or `rampart-store`:
//! - `rampart-core` holds the domain and the credential logic and speaks no network protocol;
//!   a Redis client, its timeouts and its degraded mode do not belong there.
//! - `rampart-store` is the database: the record, written in transactions, which every decision
//!   here falls back to. This state is not a record. It is a cache and a set of counters that
//!   must answer in milliseconds on every request, may be lost (a Redis restarted empty starts
//!   every budget full; the revocation feed refills the set from the database), and degrades to
//!   per-instance state instead of failing the request. Keeping it apart keeps the store free of
//!   that failure model, and this crate free of SQL.
//!
//! Dependencies: `rampart-core` only (the config types, the clock); `rampart-http` and the
//! binary use this crate.

pub mod limit;
mod redis_link;
pub mod revocation;

use std::path::Path;
use std::sync::Arc;

use rampart_core::config::SecretUrl;

use crate::limit::{Limiter, Quotas, RedisLimiter};
use crate::redis_link::Link;
pub use crate::redis_link::{Backend, ConnectError, Reason, Unanswered};
use crate::revocation::{RedisRevocations, Revocations};

/// This instance's rate limiter and revocation set, built together so that with Redis they share
/// one connection (and so one view of whether Redis answers).
pub struct SharedState {
    pub limiter: Limiter,
    pub revocations: Revocations,
}

impl SharedState {
    /// Both in this process only: nothing is shared with other instances but the database.
    pub fn memory(quotas: Quotas) -> Self {
        Self { limiter: Limiter::memory(quotas), revocations: Revocations::memory() }
    }

    /// Both in the Redis at `url`, connected once now, every key under `prefix`. The error names
    /// the URL with its password hidden.
    pub async fn redis(
        url: &SecretUrl,
        prefix: &str,
        tls_ca_file: Option<&Path>,
        quotas: Quotas,
    ) -> Result<Self, ConnectError> {
        let link = Arc::new(Link::connect(url, prefix, tls_ca_file).await?);
        Ok(Self {
            limiter: Limiter::Redis(RedisLimiter::new(Arc::clone(&link), quotas)),
            revocations: Revocations::Redis(RedisRevocations::new(link)),
        })
    }
}

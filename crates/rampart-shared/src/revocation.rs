//! The set of revoked logins (`sid`s), checked on every bearer request.
//!
//! Narrow on purpose: revoke, ask, forget. In one process it is an in-memory map with expiry;
//! with several instances it lives in Redis ([`RedisRevocations`]), so that a logout on one
//! instance holds on all of them at once. An entry lives as long as a token of that login can:
//! after that, every such token is expired anyway.
//!
//! Each instance also reads the logins revoked in the database into its own set every second
//! ([`Revocations::note_revoked`], fed by `rampart serve`), so a revocation reaches every instance
//! within seconds even when its Redis write was lost, or when there is no Redis at all.
//!
//! The set is a cache of what the database already knows (an ended login is ended there), so
//! when Redis cannot answer, [`Revocations::is_revoked`] says [`Revoked::Unknown`] rather than
//! guessing: the caller then asks the database. Failing open would let a logged-out token work
//! during a Redis outage; failing closed would log everyone out.

mod redis;

use std::collections::HashMap;
use std::sync::RwLock;

use rampart_core::clock::{Millis, now_ms};

use crate::Unanswered;
// `self::`: a bare `redis::` would be ambiguous with the redis crate.
pub use self::redis::RedisRevocations;

/// The answer to "is this login revoked?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    Yes,
    No,
    /// The shared set did not answer and this instance has not seen the login revoked: ask the
    /// database, which is the source of truth.
    Unknown,
}

pub enum Revocations {
    Memory(MemoryRevocations),
    Redis(RedisRevocations),
}

impl Revocations {
    pub fn memory() -> Self {
        Self::Memory(MemoryRevocations::default())
    }

    /// `sid` is revoked until `until` (when its last possible token expires).
    pub async fn revoke(&self, sid: &str, until: Millis) {
        match self {
            Self::Memory(m) => m.revoke(sid, until),
            Self::Redis(r) => r.revoke(sid, until).await,
        }
    }

    /// Records a revocation that this instance read from the database (`sessions.revoked_at`),
    /// in its own set only: every instance reads the database for itself, so writing it to Redis
    /// as well would only multiply the writes. Cheap for a login already known.
    pub fn note_revoked(&self, sid: &str, until: Millis) {
        match self {
            Self::Memory(m) => m.note(sid, until),
            Self::Redis(r) => r.note_revoked(sid, until),
        }
    }

    /// [`Revoked::Yes`] or [`Revoked::No`]; [`Revoked::Unknown`] only from Redis, when it does not
    /// answer and this instance has not revoked the login itself.
    pub async fn is_revoked(&self, sid: &str) -> Revoked {
        match self {
            Self::Memory(m) => m.is_revoked(sid, now_ms()),
            Self::Redis(r) => r.is_revoked(sid).await,
        }
    }

    /// True while Redis does not answer (never for memory).
    pub async fn degraded(&self) -> bool {
        match self {
            Self::Memory(_) => false,
            Self::Redis(r) => r.degraded(),
        }
    }

    /// For readiness: whether the shared set answers (memory always does). The error names no
    /// URL.
    pub async fn ping(&self) -> Result<(), Unanswered> {
        match self {
            Self::Memory(_) => Ok(()),
            Self::Redis(r) => r.ping().await,
        }
    }
}

#[derive(Default)]
pub struct MemoryRevocations {
    map: RwLock<HashMap<String, Millis>>,
}

impl MemoryRevocations {
    fn revoke(&self, sid: &str, until: Millis) {
        let Ok(mut map) = self.map.write() else { return };
        // Amortised cleanup: sweep expired entries whenever the map doubles.
        if map.len() >= 1024 && map.len().is_power_of_two() {
            let now = now_ms();
            map.retain(|_, until| *until > now);
        }
        map.insert(sid.to_owned(), until);
    }

    /// [`MemoryRevocations::revoke`], skipped when the login is already known until at least
    /// `until` (the database feed reads each revocation several times).
    fn note(&self, sid: &str, until: Millis) {
        let known = self.map.read().is_ok_and(|m| m.get(sid).is_some_and(|u| *u >= until));
        if !known && until > now_ms() {
            self.revoke(sid, until);
        }
    }

    /// The entries still in force, for replaying them into Redis.
    fn live(&self, now: Millis) -> Vec<(String, Millis)> {
        let Ok(map) = self.map.read() else { return Vec::new() };
        map.iter().filter(|(_, until)| **until > now).map(|(sid, until)| (sid.clone(), *until)).collect()
    }

    fn is_revoked(&self, sid: &str, now: Millis) -> Revoked {
        // A poisoned lock fails closed: treat the login as revoked.
        let revoked = self.map.read().map(|m| m.get(sid).is_some_and(|until| *until > now)).unwrap_or(true);
        if revoked { Revoked::Yes } else { Revoked::No }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn revoked_until_expiry() {
        let r = Revocations::memory();
        assert_eq!(r.is_revoked("a").await, Revoked::No);
        r.revoke("a", now_ms() + 60_000).await;
        assert_eq!(r.is_revoked("a").await, Revoked::Yes);
        r.revoke("b", now_ms() - 1).await;
        assert_eq!(r.is_revoked("b").await, Revoked::No);
        // Read back from the database: the same as a revocation made here.
        r.note_revoked("c", now_ms() + 60_000);
        assert_eq!(r.is_revoked("c").await, Revoked::Yes);
        r.note_revoked("d", now_ms() - 1);
        assert_eq!(r.is_revoked("d").await, Revoked::No);
        assert!(!r.degraded().await);
        assert_eq!(r.ping().await, Ok(()));
    }
}

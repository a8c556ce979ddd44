//! The set of revoked logins (`sid`s), checked on every bearer request.
//!
//! Narrow on purpose: revoke, ask, forget. In one process it is an in-memory map with expiry;
//! the scale-out backend (Redis) implements the same three operations. An entry lives as long as a
//! token of that login can: after that, every such token is expired anyway.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::clock::{Millis, now_ms};

pub enum Revocations {
    Memory(MemoryRevocations),
}

impl Revocations {
    pub fn memory() -> Self {
        Self::Memory(MemoryRevocations::default())
    }

    /// `sid` is revoked until `until` (when its last possible token expires).
    pub async fn revoke(&self, sid: &str, until: Millis) {
        match self {
            Self::Memory(m) => m.revoke(sid, until),
        }
    }

    pub async fn is_revoked(&self, sid: &str) -> bool {
        match self {
            Self::Memory(m) => m.is_revoked(sid, now_ms()),
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

    fn is_revoked(&self, sid: &str, now: Millis) -> bool {
        // A poisoned lock fails closed: treat the login as revoked.
        self.map.read().map(|m| m.get(sid).is_some_and(|until| *until > now)).unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn revoked_until_expiry() {
        let r = Revocations::memory();
        assert!(!r.is_revoked("a").await);
        r.revoke("a", now_ms() + 60_000).await;
        assert!(r.is_revoked("a").await);
        r.revoke("b", now_ms() - 1).await;
        assert!(!r.is_revoked("b").await);
    }
}

//! In-memory GCRA counters in a bounded cache.
//!
//! Why not governor's keyed limiter: its store is a map that grows with every distinct key it has
//! ever seen, so an attacker rotating IPv6 addresses or emails grows it without bound. Here each
//! key has its own governor *direct* limiter (one atomic GCRA cell), held in a `quick_cache` of
//! at most [`CAPACITY`] entries. Evicting an entry only forgets its state, i.e. gives that key a
//! fresh budget, which is exactly what an attacker with rotating keys gets anyway by using a new
//! key; a key that is being hammered is touched constantly and so is the last to be evicted. Only
//! keys active within the last window matter (an idle cell has refilled completely), so the
//! capacity only has to cover the distinct clients of one minute.
//!
//! The cache key is a u64: a SipHash of (policy, key) under a per-process random seed
//! (`RandomState`), so a client cannot choose keys that collide with someone else's bucket.
//!
//! The global login budget is a single limiter outside the cache, so it can never be evicted.

use std::convert::Infallible;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock, QuantaClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};

use super::{Bucket, Quota, Quotas, Refusal, client_key};

/// Distinct (policy, key) pairs remembered at once: at about 190 bytes each (measured: 18 MiB
/// for a full cache), 100 000 entries are under 20 MiB. That covers 100 000 distinct clients a minute on one instance; past
/// that, the least used keys are forgotten first (see the module comment).
pub const CAPACITY: usize = 100_000;

type Cell =
    governor::RateLimiter<NotKeyed, InMemoryState, QuantaClock, NoOpMiddleware<<QuantaClock as Clock>::Instant>>;

pub struct MemoryLimiter {
    quotas: Quotas,
    clock: QuantaClock,
    seed: RandomState,
    cells: quick_cache::sync::Cache<u64, Arc<Cell>>,
    global: Cell,
}

impl MemoryLimiter {
    pub fn new(quotas: Quotas, capacity: usize) -> Self {
        let clock = QuantaClock::default();
        let global = Cell::direct_with_clock(gcra(quotas.login_global), clock.clone());
        Self { quotas, clock, seed: RandomState::new(), cells: quick_cache::sync::Cache::new(capacity.max(1)), global }
    }

    /// Keys currently remembered (never more than the capacity).
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    pub fn check(&self, bucket: Bucket<'_>) -> Result<(), Refusal> {
        let policy = bucket.policy();
        let outcome = if bucket == Bucket::LoginGlobal {
            self.global.check()
        } else {
            // Concurrent first requests for one key wait for a single insert (the cache's
            // placeholder), so they share one cell instead of each getting a fresh budget.
            let Ok(cell) = self.cells.get_or_insert_with(&self.key(bucket), || {
                Ok::<_, Infallible>(Arc::new(Cell::direct_with_clock(gcra(self.quotas.of(policy)), self.clock.clone())))
            });
            cell.check()
        };
        outcome.map_err(|not_until| Refusal {
            policy,
            quota: self.quotas.of(policy),
            retry_after: not_until.wait_time_from(self.clock.now()),
        })
    }

    fn key(&self, bucket: Bucket<'_>) -> u64 {
        let mut h = self.seed.build_hasher();
        bucket.policy().hash(&mut h);
        match bucket {
            Bucket::LoginIp(ip) | Bucket::ApiIp(ip) => client_key(ip).hash(&mut h),
            Bucket::LoginAccount(s) | Bucket::ApiUser(s) | Bucket::ApiKey(s) => s.hash(&mut h),
            Bucket::LoginGlobal => {}
        }
        h.finish()
    }
}

/// `count` per `window` as GCRA: a burst of `count`, one cell back every `window / count`.
fn gcra(q: Quota) -> governor::Quota {
    // The config check refuses 0; should one slip through, 1 is the strictest safe reading.
    let count = NonZeroU32::new(q.count).unwrap_or(NonZeroU32::MIN);
    let period = (q.window / count.get()).max(std::time::Duration::from_nanos(1));
    governor::Quota::with_period(period)
        .unwrap_or_else(|| governor::Quota::per_hour(NonZeroU32::MIN))
        .allow_burst(count)
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv6Addr};
    use std::time::Duration;

    use super::*;
    use crate::limit::Policy;

    fn quotas(n: u32) -> Quotas {
        let q = Quota { count: n, window: Duration::from_secs(60) };
        Quotas { login_ip: q, login_account: q, login_global: q, api_ip: q, api_user: q, api_key: q }
    }

    #[test]
    fn ten_a_minute_is_a_burst_of_ten_then_one_every_six_seconds() {
        let l = MemoryLimiter::new(quotas(10), 1000);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..10 {
            assert!(l.check(Bucket::LoginIp(ip)).is_ok());
        }
        let refused = l.check(Bucket::LoginIp(ip)).unwrap_err();
        assert_eq!(refused.policy, Policy::LoginIp);
        assert_eq!(refused.quota.count, 10);
        assert!((5..=6).contains(&refused.retry_after.as_secs()), "{refused:?}");
        assert_eq!(refused.retry_after_secs(), 6);
        // Refusals spend nothing: the wait does not grow with every refused attempt.
        for _ in 0..100 {
            assert!(l.check(Bucket::LoginIp(ip)).unwrap_err().retry_after <= refused.retry_after);
        }
        // Other keys and other policies for the same key have budgets of their own.
        assert!(l.check(Bucket::LoginIp("192.0.2.2".parse().unwrap())).is_ok());
        assert!(l.check(Bucket::ApiIp(ip)).is_ok());
        assert!(l.check(Bucket::LoginAccount("a@example.com")).is_ok());
    }

    #[test]
    fn the_global_budget_is_shared_by_everyone() {
        let l = MemoryLimiter::new(quotas(3), 1000);
        for _ in 0..3 {
            assert!(l.check(Bucket::LoginGlobal).is_ok());
        }
        assert_eq!(l.check(Bucket::LoginGlobal).unwrap_err().policy, Policy::LoginGlobal);
        // It lives outside the cache: no amount of churn can evict it.
        assert_eq!(l.len(), 0);
    }

    #[test]
    fn an_ipv6_subnet_shares_one_budget() {
        let l = MemoryLimiter::new(quotas(2), 1000);
        for i in 0..2u16 {
            assert!(l.check(Bucket::LoginIp(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, i, 1, 2, 3)))).is_ok());
        }
        let next = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 9, 9, 9, 9));
        assert!(l.check(Bucket::LoginIp(next)).is_err());
    }

    /// Resident set size of this process, from /proc/self/status (Linux).
    fn rss_kib() -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// A million distinct keys (an attacker rotating addresses) leave at most CAPACITY entries
    /// and a bounded amount of memory behind. An unbounded keyed map holds all million.
    #[test]
    fn a_million_distinct_keys_stay_within_the_bound() {
        let l = MemoryLimiter::new(quotas(10), CAPACITY);
        let before = rss_kib();
        for i in 0..1_000_000u32 {
            let ip = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, (i >> 16) as u16, i as u16, 0, 0, 0, 1));
            assert!(l.check(Bucket::ApiIp(ip)).is_ok());
        }
        assert!(l.len() <= CAPACITY, "{} entries for a capacity of {CAPACITY}", l.len());
        assert!(l.len() >= CAPACITY / 2, "the cache should be in use: {} entries", l.len());
        if let (Some(before), Some(after)) = (before, rss_kib()) {
            let grown_mib = after.saturating_sub(before) / 1024;
            // Measured: about 18 MiB. Without the bound a million entries take about 130 MiB.
            assert!(grown_mib <= 64, "RSS grew by {grown_mib} MiB");
        }
    }
}

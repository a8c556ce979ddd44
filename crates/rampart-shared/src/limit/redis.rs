//! Rate limits shared by every instance, in Redis.
//!
//! **The GCRA is the in-memory one, moved into Redis.** A quota of `n` per window is a burst of
//! `n` and one cell back every `window / n` (`t`): a bucket's state is its theoretical arrival
//! time (TAT); a request at `now` is allowed when `now >= TAT - t·(n-1)`, and then moves the TAT
//! to `max(TAT, now) + t`; a refused request writes nothing, so it spends nothing, and waits
//! `TAT - t·(n-1) - now`. One Lua script reads, decides and writes in one round trip, atomically
//! (Redis runs a script alone), and takes `now` from the Redis server's `TIME`, not from the
//! calling instance, so instances with skewed clocks still share one budget. The key expires
//! (`PX`) when its TAT has passed: an idle bucket has refilled completely, and a missing key
//! reads as a full one. Needs Redis 5 or later (scripts replicated by effect, so `TIME` before a
//! write is allowed).
//!
//! **Keys** (under `redis.key_prefix`, `rampart` by default): `rampart:rl:{policy}:{key}`, where the key of an IP budget is its [`client_key`]
//! (IPv6: the /64) and that of an email or user id is a SHA-256 prefix (128 bits, hex), so Redis
//! never holds a raw email. `rampart:rl:login-global:all` is the deployment's login budget. (Lockouts, of accounts and of
//! unknown emails alike, live in the database: see `rampart_store::attempts`.)
//!
//! **When Redis does not answer** (down, erroring, or slower than 250 ms), the call is answered
//! by a [`MemoryLimiter`] inside this one, with the same quotas: limits become per instance for
//! as long as the outage lasts (with N instances, up to N times the quota), never unlimited. A warning is logged at most every 30 s (no
//! keys, no URL). After a failure, calls stay local for 1 s and then try Redis again, so they go
//! back to the shared state within about a second of Redis answering (see `crate::redis_link`).
//! To make the local state worth having, every answer from Redis is mirrored into it: a cell
//! Redis granted is also spent locally. So a client
//! that used its budget through this instance does not get a fresh one the moment Redis goes
//! away.
//!
//! The alternatives were rejected: failing closed (refusing every request) would turn a Redis
//! outage into a full outage of login and API; failing open (no limits) would hand an attacker
//! unlimited password guesses by knocking Redis over.

use std::sync::Arc;
use std::time::Duration;

use redis::Script;
use sha2::{Digest, Sha256};

use super::{Bucket, CAPACITY, MemoryLimiter, Quota, Quotas, Refusal, client_key};
use crate::redis_link::{Backend, Link, Unanswered};

/// KEYS[last] the bucket; ARGV[1] `t`, ARGV[2] `tau = t·(n-1)`, both in microseconds. Returns 0
/// when the cell is granted, else the wait in microseconds (at least 1). With two keys, KEYS[1] is
/// a revoked-login key checked first: a verified bearer token's two checks in one round trip,
/// -1 (and nothing spent) when the login is revoked.
const GCRA: &str = r"
if #KEYS == 2 and redis.call('EXISTS', KEYS[1]) == 1 then
  return -1
end
local bucket = KEYS[#KEYS]
local t = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = tonumber(redis.call('GET', bucket)) or now
local earliest = tat - tau
if now < earliest then
  return earliest - now
end
if tat < now then
  tat = now
end
tat = tat + t
-- '%.0f': tostring() would print 1.7e+15 and lose the microseconds.
redis.call('SET', bucket, string.format('%.0f', tat), 'PX', math.max(1, math.ceil((tat - now) / 1000)))
return 0
";

pub struct RedisLimiter {
    /// Shared with the revocation set (see `crate::redis_link`).
    link: Arc<Link>,
    quotas: Quotas,
    /// Answers while Redis does not, and mirrors what Redis answered (module comment).
    local: MemoryLimiter,
    gcra: Script,
}

/// What [`RedisLimiter::check_unless_revoked`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Unless {
    /// The login is revoked; nothing was spent.
    Revoked,
    Granted,
    Refused(Refusal),
}

impl RedisLimiter {
    pub(crate) fn new(link: Arc<Link>, quotas: Quotas) -> Self {
        Self { link, quotas, local: MemoryLimiter::new(quotas, CAPACITY), gcra: Script::new(GCRA) }
    }

    pub async fn check(&self, bucket: Bucket<'_>) -> Result<(), Refusal> {
        let policy = bucket.policy();
        let quota = self.quotas.of(policy);
        let (t, tau) = gcra_params(quota);
        let mut call = self.gcra.key(self.link.key(&bucket_key(bucket)));
        call.arg(t).arg(tau);
        let outcome = self.link.call(|mut conn| async move { call.invoke_async::<u64>(&mut conn).await }).await;
        match outcome {
            Some(0) => {
                // Mirror the spent cell; the shared answer is the one that counts.
                let _ = self.local.check(bucket);
                Ok(())
            }
            Some(wait_us) => Err(Refusal { policy, quota, retry_after: Duration::from_micros(wait_us) }),
            None => self.local.check(bucket),
        }
    }

    /// The revocation check of a verified bearer token and, unless revoked, one cell of `bucket`,
    /// in one round trip (`revoked_key` is the full key of the login in the revocation set).
    /// `None` when Redis does not answer: the caller then makes both checks with their own
    /// fallbacks.
    pub async fn check_unless_revoked(&self, revoked_key: String, bucket: Bucket<'_>) -> Option<Unless> {
        let policy = bucket.policy();
        let quota = self.quotas.of(policy);
        let (t, tau) = gcra_params(quota);
        let mut call = self.gcra.key(revoked_key);
        call.key(self.link.key(&bucket_key(bucket))).arg(t).arg(tau);
        let outcome = self.link.call(|mut conn| async move { call.invoke_async::<i64>(&mut conn).await }).await?;
        Some(match outcome {
            -1 => Unless::Revoked,
            0 => {
                let _ = self.local.check(bucket);
                Unless::Granted
            }
            wait_us => Unless::Refused(Refusal {
                policy,
                quota,
                retry_after: Duration::from_micros(u64::try_from(wait_us).unwrap_or(1)),
            }),
        })
    }

    /// True from a failed Redis call until the next successful one: limits are per instance.
    pub fn degraded(&self) -> bool {
        self.link.degraded()
    }

    /// Asks Redis for a PONG (readiness); the error names no URL.
    pub async fn ping(&self) -> Result<(), Unanswered> {
        self.link.ping().await.map_err(|reason| Unanswered { backend: Backend::RateLimit, reason })
    }
}

/// `t` and `tau` in microseconds, as governor derives them (see `memory::gcra`).
fn gcra_params(q: Quota) -> (u64, u64) {
    // The config check refuses 0; should one slip through, 1 is the strictest safe reading.
    let count = q.count.max(1);
    let t = u64::try_from((q.window / count).as_micros()).unwrap_or(u64::MAX).max(1);
    (t, t.saturating_mul(u64::from(count - 1)))
}

fn bucket_key(bucket: Bucket<'_>) -> String {
    let policy = bucket.policy().name();
    match bucket {
        Bucket::LoginIp(ip) | Bucket::ApiIp(ip) => format!("rl:{policy}:{}", client_key(ip)),
        Bucket::LoginAccount(s) | Bucket::ApiUser(s) | Bucket::ApiKey(s) => format!("rl:{policy}:{}", hashed(s)),
        Bucket::LoginGlobal => format!("rl:{policy}:all"),
    }
}

/// The first 128 bits of SHA-256, in hex, under a prefix of our own (so the value is not the
/// plain hash of an email that some other system may also store).
fn hashed(s: &str) -> String {
    let digest = Sha256::new().chain_update(b"rampart-limit\0").chain_update(s.as_bytes()).finalize();
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn keys_hide_emails_and_share_an_ipv6_64() {
        let k = bucket_key(Bucket::LoginAccount("alice@example.com"));
        assert!(k.starts_with("rl:login-account:"), "{k}");
        assert!(!k.contains("alice") && !k.contains("example"), "{k}");
        assert_eq!(k.len(), "rl:login-account:".len() + 32);
        assert_ne!(k, bucket_key(Bucket::LoginAccount("bob@example.com")));
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(bucket_key(Bucket::LoginIp(a)), bucket_key(Bucket::LoginIp(b)));
        assert_eq!(bucket_key(Bucket::ApiIp("192.0.2.7".parse().unwrap())), "rl:api-ip:192.0.2.7");
        assert_eq!(bucket_key(Bucket::LoginGlobal), "rl:login-global:all");
    }

    #[test]
    fn gcra_parameters_match_governor() {
        let q = |count| Quota { count, window: Duration::from_secs(60) };
        // 10 a minute: one cell every 6 s, and 9 more on top of the first.
        assert_eq!(gcra_params(q(10)), (6_000_000, 54_000_000));
        assert_eq!(gcra_params(q(1)), (60_000_000, 0));
        assert_eq!(gcra_params(q(0)), (60_000_000, 0));
    }
}

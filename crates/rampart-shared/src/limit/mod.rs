//! Rate limits: GCRA budgets per client IP, per account, per user and across the deployment.
//!
//! Narrow on purpose, like [`crate::revocation`]: one operation, "may this bucket spend one
//! cell now?". In one process the counters live in memory ([`MemoryLimiter`]); with several
//! instances they live in Redis ([`RedisLimiter`], an atomic GCRA in Lua, falling back to local
//! counters while Redis does not answer), which is why `check` is `async` although the
//! in-memory one never waits.
//!
//! A quota of `n` per minute is GCRA with a burst of `n` and one cell back every `60/n` seconds:
//! `n` attempts at once are allowed, the next one is refused, and the budget refills steadily
//! rather than all at the top of a minute (no double burst across a window edge).

mod memory;
mod redis;

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use rampart_core::config::RateLimitConfig;

use self::redis::Unless;
use crate::Unanswered;
use crate::revocation::{Revocations, Revoked};
pub use memory::{CAPACITY, MemoryLimiter};
// `self::`: a bare `redis::` would be ambiguous with the redis crate.
pub use self::redis::RedisLimiter;

/// The budgets, each with the name that clients see in `RateLimit-Policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Login-like attempts (login, token password grant, later MFA verify and forgot-password)
    /// from one client IP: one shared bucket for all of them.
    LoginIp,
    /// Login-like attempts on one account (its normalized email), whoever sends them.
    LoginAccount,
    /// Login-like attempts across the whole deployment.
    LoginGlobal,
    /// Every other request from one client IP.
    ApiIp,
    /// Every authenticated request of one user (keyed on the verified user id).
    ApiUser,
    /// Every request made with one API key (keyed on the verified key id).
    ApiKey,
}

impl Policy {
    /// The name in the `RateLimit-Policy` and `RateLimit` headers.
    pub fn name(self) -> &'static str {
        match self {
            Policy::LoginIp => "login-ip",
            Policy::LoginAccount => "login-account",
            Policy::LoginGlobal => "login-global",
            Policy::ApiIp => "api-ip",
            Policy::ApiUser => "api-user",
            Policy::ApiKey => "api-key",
        }
    }
}

/// What a request spends a cell from: a policy together with its key, so that a key of the
/// wrong kind cannot be passed for a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket<'a> {
    LoginIp(IpAddr),
    /// The normalized email. Unknown emails have buckets too, so a refusal says nothing about
    /// whether the account exists.
    LoginAccount(&'a str),
    LoginGlobal,
    ApiIp(IpAddr),
    /// A user id taken from a verified credential, never from an unverified token claim.
    ApiUser(&'a str),
    /// A key id taken from a verified API key (its secret matched), never from an unverified one.
    ApiKey(&'a str),
}

impl Bucket<'_> {
    pub fn policy(&self) -> Policy {
        match self {
            Bucket::LoginIp(_) => Policy::LoginIp,
            Bucket::LoginAccount(_) => Policy::LoginAccount,
            Bucket::LoginGlobal => Policy::LoginGlobal,
            Bucket::ApiIp(_) => Policy::ApiIp,
            Bucket::ApiUser(_) => Policy::ApiUser,
            Bucket::ApiKey(_) => Policy::ApiKey,
        }
    }
}

/// The client an IP budget belongs to. An IPv6 client is its /64: one subscriber is routinely
/// given a whole /64, and counting each of its 2^64 addresses separately would hand it 2^64
/// budgets. IPv4-mapped IPv6 addresses count as the IPv4 address they carry.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// `count` cells per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub count: u32,
    pub window: Duration,
}

/// Every policy's quota, from `[rate_limit]`.
#[derive(Debug, Clone, Copy)]
pub struct Quotas {
    pub login_ip: Quota,
    pub login_account: Quota,
    pub login_global: Quota,
    pub api_ip: Quota,
    pub api_user: Quota,
    pub api_key: Quota,
}

const MINUTE: Duration = Duration::from_secs(60);

impl Quotas {
    /// The per-account login budget has no key of its own in the config: it is the per-IP one
    /// (10 a minute by default), so that a single account gets no more guesses from a botnet
    /// than one client gets. The lockout (5 failures by default) usually bites first; this
    /// budget also covers unknown emails, which cannot be locked.
    pub fn from_config(c: &RateLimitConfig) -> Self {
        let per_minute = |count: u32| Quota { count, window: MINUTE };
        Self {
            login_ip: per_minute(c.login_per_ip_per_minute),
            login_account: per_minute(c.login_per_ip_per_minute),
            login_global: per_minute(c.login_global_per_minute),
            api_ip: per_minute(c.api_per_ip_per_minute),
            api_user: per_minute(c.api_per_user_per_minute),
            api_key: per_minute(c.api_per_key_per_minute),
        }
    }

    pub fn of(&self, policy: Policy) -> Quota {
        match policy {
            Policy::LoginIp => self.login_ip,
            Policy::LoginAccount => self.login_account,
            Policy::LoginGlobal => self.login_global,
            Policy::ApiIp => self.api_ip,
            Policy::ApiUser => self.api_user,
            Policy::ApiKey => self.api_key,
        }
    }
}

/// A refused request: which budget ran out, its quota, and when the next cell is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub policy: Policy,
    pub quota: Quota,
    pub retry_after: Duration,
}

impl Refusal {
    /// Whole seconds, rounded up and at least 1: `Retry-After: 0` would invite an immediate,
    /// equally refused retry.
    pub fn retry_after_secs(&self) -> u64 {
        let d = self.retry_after;
        let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        secs.max(1)
    }
}

// One per process, built at start-up and never moved again: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Limiter {
    Memory(MemoryLimiter),
    Redis(RedisLimiter),
}

impl Limiter {
    /// In-memory counters with the default capacity ([`CAPACITY`] keys).
    pub fn memory(quotas: Quotas) -> Self {
        Self::Memory(MemoryLimiter::new(quotas, CAPACITY))
    }

    /// Spends one cell of `bucket`, or says why not. A refused request spends nothing.
    pub async fn check(&self, bucket: Bucket<'_>) -> Result<(), Refusal> {
        match self {
            Self::Memory(m) => m.check(bucket),
            Self::Redis(r) => r.check(bucket).await,
        }
    }

    /// For a verified bearer token: whether its login is revoked and, when it is not, one cell of
    /// the user's API budget (never spent for a revoked login: a stale token must not spend its
    /// victim's budget). With Redis for both, one round trip instead of two; when Redis does not
    /// answer, the two checks run apart, each with its own fallback. Nothing is spent for a
    /// [`Revoked::Unknown`]: the caller asks the database, then spends with [`Limiter::check`].
    pub async fn check_bearer(&self, revocations: &Revocations, sid: &str, user_id: &str) -> Result<Revoked, Refusal> {
        let bucket = Bucket::ApiUser(user_id);
        if let (Self::Redis(limiter), Revocations::Redis(set)) = (self, revocations) {
            if set.known_revoked(sid) {
                return Ok(Revoked::Yes);
            }
            if let Some(answer) = limiter.check_unless_revoked(set.key_for(sid), bucket).await {
                // Redis answered: if that ended an outage, the revocation set writes back what
                // it recorded meanwhile (this path makes no call of the set's own that would).
                set.replay_if_recovered().await;
                return match answer {
                    Unless::Revoked => Ok(Revoked::Yes),
                    Unless::Granted => Ok(Revoked::No),
                    Unless::Refused(refusal) => Err(refusal),
                };
            }
        }
        let revoked = revocations.is_revoked(sid).await;
        if revoked == Revoked::No {
            self.check(bucket).await?;
        }
        Ok(revoked)
    }

    /// True while limits are per instance because Redis does not answer (never for memory).
    pub async fn degraded(&self) -> bool {
        match self {
            Self::Memory(_) => false,
            Self::Redis(r) => r.degraded(),
        }
    }

    /// For readiness: whether the shared store answers (memory always does). The error names no
    /// URL and no key.
    pub async fn ping(&self) -> Result<(), Unanswered> {
        match self {
            Self::Memory(_) => Ok(()),
            Self::Redis(r) => r.ping().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_their_64_and_mapped_v4_is_v4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(client_key(v4), v4);
    }

    #[test]
    fn retry_after_rounds_up_and_is_never_zero() {
        let q = Quota { count: 10, window: MINUTE };
        let r = |ms| Refusal { policy: Policy::LoginIp, quota: q, retry_after: Duration::from_millis(ms) };
        assert_eq!(r(0).retry_after_secs(), 1);
        assert_eq!(r(1).retry_after_secs(), 1);
        assert_eq!(r(1000).retry_after_secs(), 1);
        assert_eq!(r(5001).retry_after_secs(), 6);
    }
}

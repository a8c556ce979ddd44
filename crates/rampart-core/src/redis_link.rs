//! The connection to Redis shared by the scale-out backends ([`crate::limit::RedisLimiter`],
//! [`crate::auth::revocation::RedisRevocations`]), and what they do when Redis does not answer.
//!
//! One multiplexed connection per backend (redis' `ConnectionManager`, which reconnects by
//! itself). Every call is bounded by [`CALL_TIMEOUT`], so a hung Redis delays a request by at
//! most that and never hangs it. A failed call makes the link *degraded*: the backend answers
//! from its local state for that call, a warning is logged at most once per [`WARN_EVERY`], and
//! for [`RETRY_EVERY`] after it calls skip Redis altogether, so that an outage does not add the
//! timeout to every request. After that the next call tries Redis again, and the first one that
//! succeeds ends the degraded state.
//!
//! Nothing here logs a key, a URL or a Redis error's text: only a coarse reason ("timed out",
//! "connection refused", a server error code, redis' fixed text for an unusable URL), because
//! keys hold client addresses and account hashes, and the URL may hold a password.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, RedisResult};

use crate::config::SecretUrl;

/// How long one Redis call may take before the caller falls back to local state.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(250);
/// After a failed call, how long calls go straight to local state before Redis is tried again.
pub const RETRY_EVERY: Duration = Duration::from_secs(1);
/// At most one "Redis does not answer" warning per backend in this interval.
pub const WARN_EVERY: Duration = Duration::from_secs(30);
/// How long start-up waits for the first connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct Link {
    conn: ConnectionManager,
    /// Put before every key (`{prefix}:rl:...`), so that deployments (or test servers) can share
    /// one Redis without sharing counters.
    prefix: String,
    /// Which backend this is and what a fallback means for it, for the log.
    backend: &'static str,
    fallback: &'static str,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    degraded: bool,
    /// Set when a call succeeds after a failure, until [`Link::take_recovered`] reads it.
    recovered: bool,
    skip_until: Option<Instant>,
    last_warned: Option<Instant>,
}

impl Link {
    /// Connects once, at start-up. The error names the URL with its password hidden.
    pub(crate) async fn connect(
        url: &SecretUrl,
        prefix: &str,
        backend: &'static str,
        fallback: &'static str,
    ) -> Result<Self, String> {
        // redis' own parse errors are generic; ours says which URL (redacted), never its password.
        let client = redis::Client::open(url.expose())
            .map_err(|e| format!("redis URL {} is not usable: {}", url.redacted(), reason(&e)))?;
        // Few retries inside redis: the calls themselves retry every RETRY_EVERY, and start-up
        // should fail fast with the real reason rather than time out.
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(2)
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_max_delay(Duration::from_secs(1));
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, client.get_connection_manager_with_config(config))
            .await
            .map_err(|_| format!("cannot connect to redis at {}: timed out", url.redacted()))?
            .map_err(|e| format!("cannot connect to redis at {}: {}", url.redacted(), reason(&e)))?;
        let link = Self { conn, prefix: prefix.to_owned(), backend, fallback, state: Mutex::new(State::default()) };
        link.ping().await.map_err(|e| format!("redis at {} does not answer PING: {e}", url.redacted()))?;
        Ok(link)
    }

    /// The full key for `rest` under this deployment's prefix.
    pub(crate) fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.prefix)
    }

    /// Runs one call against Redis, or returns `None` (and the caller falls back to local
    /// state): Redis errored, timed out, or failed less than [`RETRY_EVERY`] ago.
    pub(crate) async fn call<T, F, Fut>(&self, f: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        if self.skipping() {
            return None;
        }
        match tokio::time::timeout(CALL_TIMEOUT, f(self.conn.clone())).await {
            Ok(Ok(value)) => {
                self.succeeded();
                Some(value)
            }
            Ok(Err(e)) => {
                self.failed(&reason(&e));
                None
            }
            Err(_) => {
                self.failed("timed out");
                None
            }
        }
    }

    /// For readiness: always asks Redis (ignoring the retry pause), and updates the state.
    pub(crate) async fn ping(&self) -> Result<(), String> {
        let mut conn = self.conn.clone();
        let outcome = match tokio::time::timeout(CALL_TIMEOUT, redis::cmd("PING").query_async::<()>(&mut conn)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(reason(&e)),
            Err(_) => Err("timed out".to_owned()),
        };
        match &outcome {
            Ok(()) => self.succeeded(),
            Err(why) => self.failed(why),
        }
        outcome.map_err(|why| format!("redis ({}): {why}", self.backend))
    }

    /// True from a failed call until the next successful one.
    pub(crate) fn degraded(&self) -> bool {
        // A poisoned lock (a panic while holding it, which nothing here does) reads as degraded.
        self.state.lock().map(|s| s.degraded).unwrap_or(true)
    }

    /// True once after each end of a degraded spell: the backend may have writes to replay (the
    /// Redis that answers now may be a fresh one that lost its data).
    pub(crate) fn take_recovered(&self) -> bool {
        self.state.lock().map(|mut s| std::mem::take(&mut s.recovered)).unwrap_or(false)
    }

    fn skipping(&self) -> bool {
        let Ok(s) = self.state.lock() else { return false };
        s.skip_until.is_some_and(|until| Instant::now() < until)
    }

    fn succeeded(&self) {
        let Ok(mut s) = self.state.lock() else { return };
        if s.degraded {
            tracing::info!(backend = self.backend, "redis answers again: back to the shared state");
            s.recovered = true;
        }
        s.degraded = false;
        s.skip_until = None;
        metrics::gauge!("rampart_redis_degraded", "backend" => self.backend).set(0.0);
    }

    fn failed(&self, why: &str) {
        let Ok(mut s) = self.state.lock() else { return };
        let now = Instant::now();
        s.degraded = true;
        s.skip_until = Some(now + RETRY_EVERY);
        metrics::gauge!("rampart_redis_degraded", "backend" => self.backend).set(1.0);
        if s.last_warned.is_none_or(|at| now.duration_since(at) >= WARN_EVERY) {
            s.last_warned = Some(now);
            tracing::warn!(backend = self.backend, reason = why, "redis does not answer: {}", self.fallback);
        }
    }
}

/// A coarse reason for the log and for error messages: no key, no URL, no server error text.
fn reason(e: &RedisError) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connection_refusal() {
        "connection refused".to_owned()
    } else if e.is_connection_dropped() {
        "connection dropped".to_owned()
    } else if matches!(e.kind(), redis::ErrorKind::InvalidClientConfig) {
        // redis' fixed texts for a URL it cannot use ("Missing hostname", "can't connect with
        // TLS, the feature is not enabled"): they never quote the URL.
        e.to_string()
    } else if let Some(code) = e.code() {
        format!("server error {code}")
    } else {
        e.category().to_owned()
    }
}

//! The one connection to Redis shared by the scale-out backends ([`crate::limit::RedisLimiter`],
//! [`crate::revocation::RedisRevocations`]), and what they do when Redis does not answer.
//!
//! One multiplexed connection for both (redis' `ConnectionManager`, which reconnects by itself),
//! so one view of whether Redis answers: a call of either backend that fails makes the link
//! *degraded* for both. Every call is bounded by [`CALL_TIMEOUT`], so a hung Redis delays a
//! request by at most that and never hangs it. While the link is degraded each backend answers
//! from its local state; a warning per backend (what the fallback means for it) is logged at most
//! once per [`WARN_EVERY`], and for [`RETRY_EVERY`] after a failure calls skip Redis altogether,
//! so that an outage does not add the timeout to every request. After that the next call tries
//! Redis again, and the first one that succeeds ends the degraded state.
//!
//! Nothing here logs a key, a URL or a Redis error's text: only a coarse [`Reason`] ("timed
//! out", "connection refused", a server error code, redis' fixed text for an unusable URL),
//! because keys hold client addresses and account hashes, the URL may hold a password, and a
//! server's error text may quote either. That is also why no error here carries the
//! `RedisError` itself as its source.

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rampart_core::config::SecretUrl;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, RedisResult};

/// How long one Redis call may take before the caller falls back to local state.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(250);
/// After a failed call, how long calls go straight to local state before Redis is tried again.
pub const RETRY_EVERY: Duration = Duration::from_secs(1);
/// At most one "Redis does not answer" warning per backend in this interval.
pub const WARN_EVERY: Duration = Duration::from_secs(30);
/// How long start-up waits for the first connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A user of the link: the `backend` of its log lines and of the `rampart_redis_degraded` gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    RateLimit,
    Revocations,
}

impl Backend {
    const ALL: [Backend; 2] = [Backend::RateLimit, Backend::Revocations];

    pub fn name(self) -> &'static str {
        match self {
            Backend::RateLimit => "rate-limit",
            Backend::Revocations => "revocations",
        }
    }

    /// What a degraded link means for this backend, for the warning.
    fn fallback(self) -> &'static str {
        match self {
            Backend::RateLimit => "rate limits are per instance until it answers",
            Backend::Revocations => "revocation checks go to the database until it answers",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why Redis did not serve a call: coarse on purpose (module comment).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    #[error("timed out")]
    TimedOut,
    #[error("connection refused")]
    Refused,
    #[error("connection dropped")]
    Dropped,
    /// redis' fixed text for a URL it cannot use ("Missing hostname", "can't connect with TLS,
    /// the feature is not enabled"): it never quotes the URL.
    #[error("{0}")]
    UnusableUrl(String),
    /// The TLS handshake refused the server's certificate (rustls' verdict, not the server's words).
    #[error(
        "its TLS certificate is not trusted (it must chain to redis.tls_ca_file, or to a public root without it, and name the URL's host)"
    )]
    Untrusted,
    /// The server's error code (`NOAUTH`, `WRONGPASS`, ...), never its message.
    #[error("server error {0}")]
    Server(String),
    /// redis' category of the error ("I/O error", "response error", ...).
    #[error("{0}")]
    Other(String),
}

impl From<&RedisError> for Reason {
    fn from(e: &RedisError) -> Self {
        if e.is_timeout() {
            Reason::TimedOut
        } else if e.is_connection_refusal() {
            Reason::Refused
        } else if e.is_connection_dropped() {
            Reason::Dropped
        } else if matches!(e.kind(), redis::ErrorKind::InvalidClientConfig) {
            Reason::UnusableUrl(e.to_string())
        } else if e.kind() == redis::ErrorKind::Io && e.to_string().contains("invalid peer certificate") {
            // rustls' fixed text for a certificate it refuses, carried in an I/O error.
            Reason::Untrusted
        } else if let Some(code) = e.code() {
            Reason::Server(code.to_owned())
        } else {
            Reason::Other(e.category().to_owned())
        }
    }
}

/// Start-up could not reach Redis. `url` is the redacted URL: its password is hidden.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("config key `redis.tls_ca_file`: cannot read {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("redis URL {url} is not usable: {reason}")]
    Url {
        url: String,
        #[source]
        reason: Reason,
    },
    #[error("cannot connect to redis at {url}: {reason}")]
    Connect {
        url: String,
        #[source]
        reason: Reason,
    },
    #[error("redis at {url} does not answer PING: {reason}")]
    Ping {
        url: String,
        #[source]
        reason: Reason,
    },
}

/// A readiness `PING` that Redis did not answer, as seen by one backend. Names no URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("redis ({backend}): {reason}")]
pub struct Unanswered {
    pub backend: Backend,
    #[source]
    pub reason: Reason,
}

pub(crate) struct Link {
    conn: ConnectionManager,
    /// Put before every key (`{prefix}:rl:...`), so that deployments (or test servers) can share
    /// one Redis without sharing counters.
    prefix: String,
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
        tls_ca_file: Option<&Path>,
    ) -> Result<Self, ConnectError> {
        // redis' own parse errors are generic; ours says which URL (redacted), never its password.
        let unusable = |e: RedisError| ConnectError::Url { url: url.redacted(), reason: Reason::from(&e) };
        let client = match tls_ca_file {
            // `rediss://` verified against this CA only (a private CA, as managed Redis often
            // uses), instead of the public roots.
            Some(path) => {
                let ca = std::fs::read(path)
                    .map_err(|e| ConnectError::CaFile { path: path.display().to_string(), reason: e.to_string() })?;
                let certs = redis::TlsCertificates { client_tls: None, root_cert: Some(ca) };
                redis::Client::build_with_tls(url.expose(), certs).map_err(unusable)?
            }
            None => redis::Client::open(url.expose()).map_err(unusable)?,
        };
        // Few retries inside redis: the calls themselves retry every RETRY_EVERY, and start-up
        // should fail fast with the real reason rather than time out.
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(2)
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_max_delay(Duration::from_secs(1));
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, client.get_connection_manager_with_config(config))
            .await
            .map_err(|_| ConnectError::Connect { url: url.redacted(), reason: Reason::TimedOut })?
            .map_err(|e| ConnectError::Connect { url: url.redacted(), reason: Reason::from(&e) })?;
        let link = Self { conn, prefix: prefix.to_owned(), state: Mutex::new(State::default()) };
        link.ping().await.map_err(|reason| ConnectError::Ping { url: url.redacted(), reason })?;
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
                self.failed(&Reason::from(&e));
                None
            }
            Err(_) => {
                self.failed(&Reason::TimedOut);
                None
            }
        }
    }

    /// For readiness: always asks Redis (ignoring the retry pause), and updates the state.
    pub(crate) async fn ping(&self) -> Result<(), Reason> {
        let mut conn = self.conn.clone();
        let outcome = match tokio::time::timeout(CALL_TIMEOUT, redis::cmd("PING").query_async::<()>(&mut conn)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Reason::from(&e)),
            Err(_) => Err(Reason::TimedOut),
        };
        match &outcome {
            Ok(()) => self.succeeded(),
            Err(why) => self.failed(why),
        }
        outcome
    }

    /// True from a failed call until the next successful one.
    pub(crate) fn degraded(&self) -> bool {
        // A poisoned lock (a panic while holding it, which nothing here does) reads as degraded.
        self.state.lock().map(|s| s.degraded).unwrap_or(true)
    }

    /// True once after each end of a degraded spell: the revocation set may have writes to
    /// replay (the Redis that answers now may be a fresh one that lost its data). Whichever
    /// backend's call ended the spell, the flag waits for the revocation set to read it.
    pub(crate) fn take_recovered(&self) -> bool {
        self.state.lock().map(|mut s| std::mem::take(&mut s.recovered)).unwrap_or(false)
    }

    fn skipping(&self) -> bool {
        let Ok(s) = self.state.lock() else { return false };
        s.skip_until.is_some_and(|until| Instant::now() < until)
    }

    fn succeeded(&self) {
        let Ok(mut s) = self.state.lock() else { return };
        let was_degraded = std::mem::take(&mut s.degraded);
        s.recovered |= was_degraded;
        s.skip_until = None;
        drop(s);
        for backend in Backend::ALL {
            if was_degraded {
                tracing::info!(backend = backend.name(), "redis answers again: back to the shared state");
            }
            metrics::gauge!("rampart_redis_degraded", "backend" => backend.name()).set(0.0);
        }
    }

    fn failed(&self, why: &Reason) {
        let Ok(mut s) = self.state.lock() else { return };
        let now = Instant::now();
        s.degraded = true;
        s.skip_until = Some(now + RETRY_EVERY);
        let warn = s.last_warned.is_none_or(|at| now.duration_since(at) >= WARN_EVERY);
        if warn {
            s.last_warned = Some(now);
        }
        drop(s);
        for backend in Backend::ALL {
            metrics::gauge!("rampart_redis_degraded", "backend" => backend.name()).set(1.0);
            if warn {
                tracing::warn!(backend = backend.name(), reason = %why, "redis does not answer: {}", backend.fallback());
            }
        }
    }
}

//! The configuration: one typed struct, read once at start-up from TOML plus `RAMPART_SECTION__KEY`
//! environment overrides, unknown keys refused ([`load()`]), then checked as a whole into the
//! [`Settings`] the server runs on ([`check()`]).

pub mod access;
pub mod check;
mod duration;
pub mod load;
pub mod net;
pub mod problem;
pub mod resources;
pub mod roles;
pub mod secret;
pub mod settings;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub use check::{Accepted, Checked, check};
pub use load::{ConfigError, Loaded, Origin, load};
pub use net::{TrustedProxies, WebOrigin};
pub use problem::{Level, Problem};
pub use resources::{FieldConfig, FieldType, ResourceConfig};
pub use roles::Roles;
pub use secret::{SecretUrl, SecretValue};
pub use settings::{CorsSettings, ServerSettings, Settings, TlsFiles};

use crate::auth::hasher::HashParams;
use crate::password::PasswordPolicy;

/// The example configuration, which is also the dev profile used when there is no config file.
pub const EXAMPLE_TOML: &str = include_str!("../../../../config/rampart.example.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    #[default]
    Dev,
    Production,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub profile: Profile,
    /// 32 random bytes, base64. Encrypts TOTP secrets at rest. From `RAMPART_DATA_KEY` or a file.
    pub data_key: Option<SecretValue>,
    pub data_key_file: Option<PathBuf>,
    /// The key being replaced, while `rampart data-key rotate` runs: it opens what it sealed,
    /// never seals. From `RAMPART_DATA_KEY_PREVIOUS` or a file.
    pub data_key_previous: Option<SecretValue>,
    pub data_key_previous_file: Option<PathBuf>,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub redis: RedisConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    #[serde(default)]
    pub cors: CorsConfig,
    #[serde(default)]
    pub mail: MailConfig,
    #[serde(default)]
    pub roles: RolesConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub ui: UiConfig,
    #[serde(default)]
    pub resources: BTreeMap<String, ResourceConfig>,
}

/// `auth.require_email_verification`, by default on in production only.
fn email_verification_required(auth: &AuthConfig, profile: Profile) -> bool {
    auth.require_email_verification.unwrap_or(profile == Profile::Production)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub public_url: String,
    /// CIDRs (or single addresses) whose forwarding header (`trusted_header`) is believed.
    pub trusted_proxies: Vec<String>,
    /// The one header those proxies write. Only it is read: a header the proxy does not write
    /// passes through it untouched, so it is whatever the client chose to send.
    pub trusted_header: TrustedHeader,
    pub metrics_listen: Option<SocketAddr>,
    /// PEM certificate chain (leaf first) and private key: TLS served directly when both are set.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// A plain-HTTP listener that only redirects to the https `public_url`.
    pub http_redirect_listen: Option<SocketAddr>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: "http://localhost:8080".into(),
            trusted_proxies: Vec::new(),
            trusted_header: TrustedHeader::XForwardedFor,
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9090))),
            tls_cert_file: None,
            tls_key_file: None,
            http_redirect_listen: None,
        }
    }
}

/// `server.trusted_header`: which forwarding header the trusted proxies write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrustedHeader {
    /// `X-Forwarded-For: client, proxy1, ...`
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client;proto=https, for=proxy1`
    Forwarded,
}

impl TrustedHeader {
    /// The header name, lower case, as `http::HeaderMap` looks it up.
    pub fn name(self) -> &'static str {
        match self {
            Self::XForwardedFor => "x-forwarded-for",
            Self::Forwarded => "forwarded",
        }
    }
}

impl<'de> Deserialize<'de> for TrustedHeader {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        // Header names are case-insensitive, so the value is too. Anything else is refused with
        // its fix rather than falling back to a default: reading the wrong header lets every
        // client choose its own IP.
        match s.to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Ok(Self::XForwardedFor),
            "forwarded" => Ok(Self::Forwarded),
            _ => Err(serde::de::Error::custom(format!(
                "`{s}` is not a forwarding header Rampart reads (fix: write \"x-forwarded-for\" or \"forwarded\", the one header your trusted proxies write)"
            ))),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub url: SecretUrl,
    pub url_file: Option<PathBuf>,
    pub migrate_url: Option<SecretUrl>,
    pub migrate_url_file: Option<PathBuf>,
    /// Unset: [`DatabaseConfig::max_connections_for`] picks by backend.
    pub max_connections: Option<u32>,
    #[serde(with = "duration")]
    pub busy_timeout: Duration,
    /// Whether `serve` (and the other runtime commands) migrate at start. Default: on in dev, off
    /// in production, where the runtime then never needs the owner's credentials and `rampart
    /// migrate` is a separate deploy step. See [`Settings::migrate_on_start`].
    pub migrate_on_start: Option<bool>,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: SecretUrl::new("sqlite://rampart-data/rampart.db"),
            url_file: None,
            migrate_url: None,
            migrate_url_file: None,
            max_connections: None,
            busy_timeout: Duration::from_secs(5),
            migrate_on_start: None,
        }
    }
}

impl DatabaseConfig {
    /// `max_connections` when set. Unset: 8 on PostgreSQL, the one pool every statement uses;
    /// on SQLite, the reader pool, one per core (at least 2, at most 8). Why fewer there:
    /// SQLite's hot reads (records, refresh tokens, API keys) run on the calling thread on
    /// connections of their own, so the pool serves only the auth flows' reads, short local
    /// reads that keep a core busy rather than wait; and every pooled SQLite connection is a
    /// thread of its own held for the process's life, with its memory (idle RSS, issue 17: eight
    /// readers cost about 3 MB more than two). Two at least, so that one slow read (an admin
    /// list) never holds up every sign-in on a one-core machine.
    pub fn max_connections_for(&self, sqlite: bool) -> u32 {
        self.max_connections.unwrap_or_else(|| {
            if sqlite {
                let cores = std::thread::available_parallelism().map_or(2, usize::from);
                u32::try_from(cores.clamp(2, 8)).unwrap_or(8)
            } else {
                8
            }
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    pub url: Option<SecretUrl>,
    pub url_file: Option<PathBuf>,
    /// Put before every key Rampart writes, so that deployments can share one Redis.
    pub key_prefix: String,
    /// PEM CA certificate(s) a `rediss://` server's certificate must chain to (instead of the
    /// Mozilla roots).
    pub tls_ca_file: Option<PathBuf>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self { url: None, url_file: None, key_prefix: "rampart".into(), tls_ca_file: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlgorithm {
    Argon2id,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordHashConfig {
    pub algorithm: HashAlgorithm,
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for PasswordHashConfig {
    /// OWASP's minimum for Argon2id: 19 MiB, 2 iterations, 1 lane.
    fn default() -> Self {
        Self { algorithm: HashAlgorithm::Argon2id, memory_kib: 19456, iterations: 2, parallelism: 1 }
    }
}

impl PasswordHashConfig {
    pub fn params(&self) -> HashParams {
        HashParams { memory_kib: self.memory_kib, iterations: self.iterations, parallelism: self.parallelism }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum JwtAlgorithm {
    RS256,
    EdDSA,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub password_hash: PasswordHashConfig,
    /// Minimum zxcvbn score (0 to 4) of a new password.
    pub password_min_score: u8,
    /// Threads that hash passwords. Default: the number of cores.
    pub hash_workers: Option<usize>,
    /// Hash jobs allowed to wait; past that, logins answer 503 at once.
    pub hash_queue: usize,
    #[serde(with = "duration")]
    pub access_token_ttl: Duration,
    #[serde(with = "duration")]
    pub refresh_token_ttl: Duration,
    #[serde(with = "duration")]
    pub session_idle_timeout: Duration,
    #[serde(with = "duration")]
    pub session_absolute_timeout: Duration,
    pub jwt_algorithm: JwtAlgorithm,
    /// `aud` of access tokens. Default: the origin of `server.public_url` (which is also `iss`).
    pub jwt_audience: Option<String>,
    pub keys_dir: PathBuf,
    /// How often the keys directory is re-read; also how long a new key waits before signing.
    #[serde(with = "duration")]
    pub keys_reload_interval: Duration,
    /// A refresh token unused for this long dies (the login's absolute limit is refresh_token_ttl).
    #[serde(with = "duration")]
    pub refresh_token_idle_timeout: Duration,
    /// A just-rotated refresh token presented again within this window, from the same IP and
    /// User-Agent, is a concurrent refresh (two tabs), not a replay. Zero disables the allowance.
    #[serde(with = "duration")]
    pub refresh_reuse_grace: Duration,
    pub require_email_verification: Option<bool>,
    /// How long a password-reset link works.
    #[serde(with = "duration")]
    pub password_reset_ttl: Duration,
    /// How long an email-verification link works.
    #[serde(with = "duration")]
    pub email_verification_ttl: Duration,
    /// How long an `mfa_token` (a login waiting for its second factor) lives.
    #[serde(with = "duration")]
    pub mfa_challenge_ttl: Duration,
    /// The service name authenticator apps show next to the account.
    pub totp_issuer: String,
    /// How recent the sign-in behind a session or token must be for a sensitive change made
    /// without a password (removing a passkey).
    #[serde(with = "duration")]
    pub reauth_window: Duration,
    pub passkeys: PasskeysConfig,
    pub api_keys: ApiKeysConfig,
}

/// `auth.passkeys`: WebAuthn.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasskeysConfig {
    /// Roles whose members must sign in with a passkey: once they have one, a password (with or
    /// without TOTP) no longer signs them in, and the last one cannot be removed.
    pub required_for_roles: Vec<String>,
    /// The relying-party id (a domain). Default: the host of `server.public_url`.
    pub rp_id: Option<String>,
    /// The name authenticators show. Default: the host of `server.public_url`.
    pub rp_name: Option<String>,
    /// How long a started ceremony can be finished (the contract says 2 minutes; tests shorten it).
    #[serde(with = "duration")]
    pub challenge_ttl: Duration,
}

impl Default for PasskeysConfig {
    fn default() -> Self {
        Self { required_for_roles: Vec::new(), rp_id: None, rp_name: None, challenge_ttl: Duration::from_secs(120) }
    }
}

/// `auth.api_keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiKeysConfig {
    /// The longest life a key may be given (`expires_in_days` at most this; the default 90 days is
    /// capped by it too).
    #[serde(with = "duration")]
    pub max_ttl: Duration,
}

impl Default for ApiKeysConfig {
    fn default() -> Self {
        Self { max_ttl: Duration::from_secs(365 * 86400) }
    }
}

impl AuthConfig {
    /// What a new password must pass (`auth.password_min_score`).
    pub fn password_policy(&self) -> PasswordPolicy {
        PasswordPolicy { min_score: self.password_min_score }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            password_hash: PasswordHashConfig::default(),
            password_min_score: 3,
            hash_workers: None,
            hash_queue: 32,
            access_token_ttl: Duration::from_secs(600),
            refresh_token_ttl: Duration::from_secs(30 * 86400),
            session_idle_timeout: Duration::from_secs(30 * 60),
            session_absolute_timeout: Duration::from_secs(12 * 3600),
            jwt_algorithm: JwtAlgorithm::RS256,
            jwt_audience: None,
            keys_dir: PathBuf::from("rampart-data/keys"),
            keys_reload_interval: Duration::from_secs(30),
            refresh_token_idle_timeout: Duration::from_secs(7 * 86400),
            refresh_reuse_grace: Duration::from_secs(10),
            require_email_verification: None,
            password_reset_ttl: Duration::from_secs(30 * 60),
            email_verification_ttl: Duration::from_secs(24 * 3600),
            mfa_challenge_ttl: Duration::from_secs(5 * 60),
            totp_issuer: "Rampart".into(),
            reauth_window: Duration::from_secs(5 * 60),
            passkeys: PasskeysConfig::default(),
            api_keys: ApiKeysConfig::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    pub login_per_ip_per_minute: u32,
    pub login_global_per_minute: u32,
    pub lockout_after_failures: u32,
    #[serde(with = "duration")]
    pub lockout_duration: Duration,
    pub api_per_user_per_minute: u32,
    pub api_per_ip_per_minute: u32,
    /// Every request made with one API key, whoever owns it.
    pub api_per_key_per_minute: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            login_per_ip_per_minute: 10,
            login_global_per_minute: 100,
            lockout_after_failures: 5,
            lockout_duration: Duration::from_secs(15 * 60),
            api_per_user_per_minute: 600,
            api_per_ip_per_minute: 1200,
            api_per_key_per_minute: 600,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    pub smtp_url: Option<SecretUrl>,
    pub smtp_url_file: Option<PathBuf>,
    pub from: Option<String>,
    /// The link a password-reset mail carries; `{token}` is replaced by the token. Default:
    /// `{public_url}/reset-password#token={token}` (a fragment never reaches a server log).
    pub reset_link: Option<String>,
    /// The link an email-verification mail carries. Default: `{public_url}/verify-email#token={token}`.
    pub verify_link: Option<String>,
    /// Messages this instance sends a minute at most. Half of it is kept for security mail
    /// (password resets, lockout and change notices), which routine mail (verification links,
    /// sign-up notices) can never use up.
    pub max_per_minute: u32,
    /// A queued mail that still cannot be sent this long after it was queued is given up (an
    /// error log line and `rampart_mail_given_up_total`), and its body erased.
    #[serde(with = "duration")]
    pub give_up_after: Duration,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            smtp_url: None,
            smtp_url_file: None,
            from: None,
            reset_link: None,
            verify_link: None,
            max_per_minute: 120,
            give_up_after: Duration::from_secs(24 * 3600),
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RolesConfig {
    pub declared: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    pub max_body_bytes: usize,
    pub max_json_depth: usize,
    /// Whole-request deadline, handler included.
    #[serde(with = "duration")]
    pub request_timeout: Duration,
    /// How long a client may take to send its request head (slowloris defence).
    #[serde(with = "duration")]
    pub header_read_timeout: Duration,
    /// Repeated `authz_denied` events of one actor on one target within this window are written
    /// as one audit row with a `count`, so that a flood of denials cannot grow the log unbounded.
    #[serde(with = "duration")]
    pub denial_audit_window: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            max_json_depth: 32,
            request_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            denial_audit_window: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter: `info`, `warn`, `rampart=debug,info`, ...
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { level: "info".into(), format: LogFormat::Json }
    }
}

/// `[ui]`: the server-rendered pages under `/ui`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiConfig {
    /// Off: every `/ui` path is 404, as if the pages did not exist.
    pub enabled: bool,
    /// The product name in the header and the `<title>` of every page.
    pub title: String,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self { enabled: true, title: "Rampart".into() }
    }
}

#[cfg(test)]
mod tests {
    use super::DatabaseConfig;

    #[test]
    fn the_reader_pool_follows_the_cores_on_sqlite_unless_set() {
        let unset: DatabaseConfig = toml::from_str("url = \"sqlite://x.db\"").unwrap();
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let expected = u32::try_from(cores.clamp(2, 8)).unwrap();
        assert_eq!(unset.max_connections_for(true), expected);
        assert_eq!(unset.max_connections_for(false), 8, "PostgreSQL keeps its pool of 8");
        let set: DatabaseConfig = toml::from_str("url = \"sqlite://x.db\"\nmax_connections = 12").unwrap();
        assert_eq!(set.max_connections_for(true), 12);
        assert_eq!(set.max_connections_for(false), 12);
    }
}

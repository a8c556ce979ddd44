//! [`Settings`]: the configuration as [`super::check()`] accepted it, in types. Nothing downstream
//! parses a configured string again: origins, proxy ranges, roles, the data key and the declared
//! resources arrive parsed, and a `Settings` exists only when every one of them parsed.
//!
//! The sections keep the names of the config sections (`settings.auth.access_token_ttl` is
//! `auth.access_token_ttl`). A section whose values serde already types and `check` only bounds
//! (durations, counts, paths) is carried as read; a section holding text that needs parsing gets
//! a type of its own here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use super::net::{TrustedProxies, WebOrigin};
use super::roles::Roles;
use super::{
    AuthConfig, DatabaseConfig, LimitsConfig, LogConfig, MailConfig, Profile, RateLimitConfig, RedisConfig,
    TrustedHeader, UiConfig,
};
use crate::auth::data_key::DataKey;
use crate::resources::Registry;

#[derive(Debug)]
#[non_exhaustive]
pub struct Settings {
    pub profile: Profile,
    /// The configured data key, decoded; `None` in the dev profile when none is configured (the
    /// server then keeps one in [`Settings::dev_data_key_path`]). Shared, because the key holds
    /// no copyable bytes and the server state needs it too.
    pub data_key: Option<Arc<DataKey>>,
    pub server: ServerSettings,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub auth: AuthConfig,
    pub rate_limit: RateLimitConfig,
    pub cors: CorsSettings,
    pub mail: MailConfig,
    pub roles: Roles,
    pub limits: LimitsConfig,
    pub log: LogConfig,
    pub ui: UiConfig,
    /// The declared resources, compiled.
    pub resources: Registry,
}

impl Settings {
    pub fn require_email_verification(&self) -> bool {
        super::email_verification_required(&self.auth, self.profile)
    }

    /// `database.migrate_on_start`, by default on in dev only: in production the runtime then
    /// never opens `database.migrate_url` and refuses a schema older than its binary.
    pub fn migrate_on_start(&self) -> bool {
        self.database.migrate_on_start.unwrap_or(self.profile == Profile::Dev)
    }

    /// `aud` of access tokens: `auth.jwt_audience`, or else the public origin (which is also
    /// `iss`).
    pub fn jwt_audience(&self) -> &str {
        self.auth.jwt_audience.as_deref().unwrap_or(self.server.public_origin.as_str())
    }

    /// Where the dev profile keeps the data key it generates: beside the keys directory
    /// (`rampart-data/data.key` by default).
    pub fn dev_data_key_path(&self) -> PathBuf {
        self.auth.keys_dir.parent().unwrap_or(&self.auth.keys_dir).join("data.key")
    }
}

/// `[server]`.
#[derive(Debug)]
#[non_exhaustive]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// The URL clients use, as written (the OpenAPI `servers` entry, the base of mailed links).
    pub public_url: String,
    /// `scheme://host[:port]` of `public_url`: the origin our own pages and clients send, the
    /// token issuer, and whether HSTS is sent (when it is https, TLS terminated at a proxy or
    /// not).
    pub public_origin: WebOrigin,
    /// Whose forwarding header is believed.
    pub trusted_proxies: TrustedProxies,
    /// The one header those proxies write. Only it is read: a header the proxy does not write
    /// passes through it untouched, so it is whatever the client chose to send.
    pub trusted_header: TrustedHeader,
    pub metrics_listen: Option<SocketAddr>,
    /// TLS served directly, when both files are configured.
    pub tls: Option<TlsFiles>,
    /// The plain listener that only redirects to `public_url` (which is then https).
    pub http_redirect_listen: Option<SocketAddr>,
}

/// `server.tls_cert_file` and `server.tls_key_file`: PEM files, re-read when they change.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `[cors]`.
#[derive(Debug)]
#[non_exhaustive]
pub struct CorsSettings {
    /// Exact origins, never a wildcard.
    pub allowed_origins: Vec<WebOrigin>,
}

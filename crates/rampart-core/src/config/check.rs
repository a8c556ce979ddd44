//! Whole-config checks, shared by `rampart check` and start-up. The loaded configuration goes in;
//! out come every problem (each naming its key and a fix) and the typed [`Settings`], built from
//! the values as they are checked, so nothing is parsed twice. An `Error` stops the server; in the
//! production profile every unsafe setting is an error, in the dev profile the same settings are
//! at most warnings.

use std::sync::Arc;
use std::time::Duration;

use super::net::{WebOrigin, parse_cidr, trusts_everyone};
use super::problem::Report;
use super::settings::{CorsSettings, ServerSettings, Settings, TlsFiles};
use super::{Config, Level, Loaded, Origin, Problem, Profile, roles};
use crate::auth::data_key::{DataKey, DataKeyError};

/// The OWASP minimum for Argon2id.
pub const OWASP_MEMORY_KIB: u32 = 19456;
pub const OWASP_ITERATIONS: u32 = 2;
/// docs/api.md: access tokens live at most 15 minutes.
pub const MAX_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);

/// What [`check`] found.
#[derive(Debug)]
pub struct Checked {
    /// Where the configuration came from.
    pub origin: Origin,
    pub profile: Profile,
    /// Every problem, errors first.
    pub problems: Vec<Problem>,
    /// The typed settings, when every value is well-formed (an unsafe but well-formed setting
    /// still yields them: whether they may be used is [`Checked::accept`]'s verdict).
    settings: Option<Settings>,
}

/// A configuration that may be used: its settings, and the warnings to log.
#[derive(Debug)]
pub struct Accepted {
    pub settings: Settings,
    pub warnings: Vec<Problem>,
    pub origin: Origin,
}

impl Checked {
    /// The settings, unless an error remains once `waive` has taken out the problems the caller
    /// can live with (`keys generate` exists to fix a missing key). Refused: the remaining errors,
    /// in order (and the waived ones too, should one of them have kept a value from being typed).
    pub fn accept(self, waive: impl Fn(&Problem) -> bool) -> Result<Accepted, Vec<Problem>> {
        let Self { origin, problems, settings, .. } = self;
        let refuses = |p: &Problem| p.level == Level::Error && !waive(p);
        match settings {
            Some(settings) if !problems.iter().any(refuses) => {
                Ok(Accepted { settings, warnings: problems.into_iter().filter(|p| !waive(p)).collect(), origin })
            }
            None if !problems.iter().any(refuses) => {
                Err(problems.into_iter().filter(|p| p.level == Level::Error).collect())
            }
            _ => Err(problems.into_iter().filter(refuses).collect()),
        }
    }
}

/// Checks the loaded configuration as a whole, every problem at once, and types it into
/// [`Settings`] on the way.
pub fn check(loaded: Loaded) -> Checked {
    let Loaded { config: c, origin, inline_secrets } = loaded;
    let mut r = Report::new(c.profile);
    for key in &inline_secrets {
        r.production_only(
            key.as_str(),
            "a secret is written in the config file",
            format!(
                "set it through the environment (RAMPART_{}) or a `_file` key",
                key.to_uppercase().replace('.', "__")
            ),
        );
    }
    let server = check_server(&c, &mut r);
    check_auth(&c, &mut r);
    check_limits(&c, &mut r);
    let cors = check_cors(&c, &mut r);
    check_misc(&c, &mut r);
    let data_key = check_data_key(&c, &mut r);
    let errors = r.errors();
    let roles = roles::check(&c.roles.declared, &mut r);
    let roles_valid = r.errors() == errors;
    for role in &c.auth.passkeys.required_for_roles {
        if !roles.is_known(role) {
            r.error(
                "auth.passkeys.required_for_roles",
                format!("`{role}` is not a role"),
                "name built-in roles (user, admin) or ones in roles.declared",
            );
        }
    }
    // Rules are checked against the valid roles even when another one is misspelt, so that every
    // problem shows at once.
    let resources = crate::resources::compile::compile(&c.resources, &roles, &mut r);
    let profile = c.profile;
    let settings = match (server, cors, data_key, resources) {
        (Some(server), Some(cors), Some(data_key), Some(resources)) if roles_valid => Some(Settings {
            profile,
            data_key,
            server,
            database: c.database,
            redis: c.redis,
            auth: c.auth,
            rate_limit: c.rate_limit,
            cors,
            mail: c.mail,
            roles,
            limits: c.limits,
            log: c.log,
            ui: c.ui,
            resources,
        }),
        _ => None,
    };
    Checked { origin, profile, problems: r.into_problems(), settings }
}

fn check_server(c: &Config, r: &mut Report) -> Option<ServerSettings> {
    let public_origin = match WebOrigin::of_url(&c.server.public_url) {
        Ok(origin) => {
            if !origin.is_https() {
                r.production_only("server.public_url", "public_url is not https", "serve the public URL over https");
            }
            Some(origin)
        }
        Err(m) => {
            r.error("server.public_url", m, "write the URL clients use, e.g. https://auth.example.com");
            None
        }
    };
    let mut nets = Some(Vec::new());
    for (i, p) in c.server.trusted_proxies.iter().enumerate() {
        let key = format!("server.trusted_proxies[{i}]");
        let Some(net) = parse_cidr(p) else {
            r.error(key, format!("`{p}` is not an IP address or CIDR"), "write e.g. 10.0.0.0/8 or 192.0.2.7");
            nets = None;
            continue;
        };
        if trusts_everyone(&net) {
            r.unsafe_setting(
                key,
                format!(
                    "`{p}` trusts every address: any client can write its own IP into `{}` and get fresh rate-limit budgets and forged audit addresses",
                    c.server.trusted_header.name()
                ),
                "list only the addresses of your reverse proxies, e.g. 10.0.0.5 or 10.0.0.0/24",
            );
        }
        if let Some(nets) = &mut nets {
            nets.push(net);
        }
    }
    let tls = match (&c.server.tls_cert_file, &c.server.tls_key_file) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert: cert.clone(), key: key.clone() }),
        (None, None) => None,
        (Some(_), None) => {
            r.error("server.tls_key_file", "tls_cert_file is set without tls_key_file", "set both, or neither");
            None
        }
        (None, Some(_)) => {
            r.error("server.tls_cert_file", "tls_key_file is set without tls_cert_file", "set both, or neither");
            None
        }
    };
    if let Some(redirect) = c.server.http_redirect_listen {
        if !public_origin.as_ref().is_some_and(WebOrigin::is_https) {
            r.error(
                "server.http_redirect_listen",
                "redirects go to public_url, which is not https",
                "set server.public_url to the https URL clients use",
            );
        }
        // Port 0 (any free port, as tests use) clashes with nothing.
        if redirect.port() != 0 && (redirect == c.server.listen || Some(redirect) == c.server.metrics_listen) {
            r.error(
                "server.http_redirect_listen",
                "is the same address as another listener",
                "use its own port, e.g. 0.0.0.0:80",
            );
        }
    }
    // The production rule "no plain HTTP": TLS served here, or a TLS-terminating proxy in front.
    if c.server.trusted_proxies.is_empty() && tls.is_none() {
        r.production_only(
            "server.trusted_proxies",
            "plain HTTP with neither TLS served directly nor a trusted proxy in front",
            "either serve TLS (server.tls_cert_file and server.tls_key_file) or put Rampart behind a TLS-terminating proxy and list its address in server.trusted_proxies",
        );
    }
    Some(ServerSettings {
        listen: c.server.listen,
        public_url: c.server.public_url.clone(),
        public_origin: public_origin?,
        trusted_proxies: nets?.into_iter().collect(),
        trusted_header: c.server.trusted_header,
        metrics_listen: c.server.metrics_listen,
        tls,
        http_redirect_listen: c.server.http_redirect_listen,
    })
}

fn check_auth(c: &Config, r: &mut Report) {
    let a = &c.auth;
    let ph = &a.password_hash;
    if crate::auth::hasher::argon2_for(ph.params()).is_err() {
        r.error(
            "auth.password_hash",
            "these Argon2 parameters are invalid",
            "memory_kib >= 8 x parallelism, iterations >= 1, parallelism 1..=16",
        );
    } else if ph.memory_kib < OWASP_MEMORY_KIB || ph.iterations < OWASP_ITERATIONS {
        r.unsafe_setting(
            "auth.password_hash",
            format!(
                "Argon2 parameters below the OWASP minimum ({OWASP_MEMORY_KIB} KiB, {OWASP_ITERATIONS} iterations)"
            ),
            "memory_kib = 19456 and iterations = 2 at least",
        );
    }
    if a.password_min_score > 4 {
        r.error("auth.password_min_score", "zxcvbn scores go from 0 to 4", "use 3 (recommended) or 4");
    } else if a.password_min_score < 3 {
        r.unsafe_setting("auth.password_min_score", "passwords weaker than zxcvbn score 3 are accepted", "use 3 or 4");
    }
    if a.hash_queue == 0 {
        r.error(
            "auth.hash_queue",
            "must be at least 1, or nearly every concurrent login gets 503",
            "the default is 32",
        );
    }
    if let Some(aud) = &a.jwt_audience
        && (aud.trim().is_empty() || aud.len() > 256)
    {
        r.error("auth.jwt_audience", "must be 1 to 256 characters", "leave it unset to use the public URL's origin");
    }
    if a.hash_workers == Some(0) {
        r.error("auth.hash_workers", "must be at least 1", "leave it unset to use one worker per core");
    }
    if a.access_token_ttl.is_zero() || a.access_token_ttl > MAX_ACCESS_TOKEN_TTL {
        r.error("auth.access_token_ttl", "must be positive and at most 15m", "use e.g. \"10m\"");
    }
    for (key, d) in
        [("auth.refresh_token_ttl", a.refresh_token_ttl), ("auth.session_idle_timeout", a.session_idle_timeout)]
    {
        if d.is_zero() {
            r.error(key, "must be positive", "use e.g. \"30m\"");
        }
    }
    if a.refresh_reuse_grace > Duration::from_secs(60) {
        r.error(
            "auth.refresh_reuse_grace",
            "more than 60s widens the replay window",
            "use a few seconds (default 10s)",
        );
    }
    if a.keys_reload_interval.is_zero() || a.keys_reload_interval > Duration::from_secs(3600) {
        r.error("auth.keys_reload_interval", "must be between 1s and 1h", "the default is 30s");
    }
    if a.refresh_token_idle_timeout.is_zero() || a.refresh_token_idle_timeout > a.refresh_token_ttl {
        r.error(
            "auth.refresh_token_idle_timeout",
            "must be positive and at most refresh_token_ttl",
            "the default is 7d",
        );
    }
    if crate::auth::keys::KeyRing::fingerprint(&a.keys_dir).is_empty() {
        r.production_only(
            "auth.keys_dir",
            "no signing key: one would have to be generated on the spot",
            "run `rampart keys generate --config FILE` and deploy the key file with the server",
        );
    }
    // Keys are counted in whole days (`expires_in_days`); ten years is already longer than any
    // credential should live unrotated.
    let day = Duration::from_secs(86400);
    if a.api_keys.max_ttl < day || a.api_keys.max_ttl > 3650 * day {
        r.error("auth.api_keys.max_ttl", "must be between 1d and 3650d", "the default is 365d");
    }
    if a.session_absolute_timeout < a.session_idle_timeout {
        r.error(
            "auth.session_absolute_timeout",
            "shorter than the idle timeout",
            "make it at least session_idle_timeout",
        );
    }
    for (key, d, max) in [
        ("auth.password_reset_ttl", a.password_reset_ttl, Duration::from_secs(24 * 3600)),
        ("auth.email_verification_ttl", a.email_verification_ttl, Duration::from_secs(30 * 86400)),
        ("auth.mfa_challenge_ttl", a.mfa_challenge_ttl, Duration::from_secs(30 * 60)),
    ] {
        if d.is_zero() || d > max {
            r.error(
                key,
                format!("must be positive and at most {}", humantime::format_duration(max)),
                "see docs/configuration.md for the defaults",
            );
        }
    }
    if a.reauth_window.is_zero() || a.reauth_window > Duration::from_secs(3600) {
        r.error("auth.reauth_window", "must be positive and at most 1h", "the default is 5m");
    }
    check_passkeys(c, r);
    let issuer = a.totp_issuer.trim();
    if issuer.is_empty() || issuer.len() > 64 || issuer.chars().any(|ch| ch.is_control() || ch == ':') {
        r.error(
            "auth.totp_issuer",
            "must be 1 to 64 characters, without ':' or control characters",
            "the default is \"Rampart\"",
        );
    }
    if super::email_verification_required(a, c.profile) && c.mail.smtp_url.is_none() {
        r.production_only(
            "auth.require_email_verification",
            "email verification is required but no mail is configured",
            "set mail.smtp_url (through RAMPART_MAIL__SMTP_URL or mail.smtp_url_file) and mail.from",
        );
    }
}
/// `auth.passkeys`: the relying-party id must be the public host or a domain it belongs to
/// (browsers refuse any other, and webauthn-rs would refuse to start).
fn check_passkeys(c: &Config, r: &mut Report) {
    let p = &c.auth.passkeys;
    if p.challenge_ttl < Duration::from_secs(1) || p.challenge_ttl > Duration::from_secs(600) {
        r.error("auth.passkeys.challenge_ttl", "must be between 1s and 10m", "the default is 2m");
    }
    if let Some(name) = &p.rp_name
        && (name.trim().is_empty() || name.len() > 64 || name.chars().any(char::is_control))
    {
        r.error("auth.passkeys.rp_name", "must be 1 to 64 characters, without control characters", "leave it unset");
    }
    let Ok(origin) = WebOrigin::of_url(&c.server.public_url) else { return };
    let host = origin.host();
    let Some(rp_id) = &p.rp_id else {
        if host.parse::<std::net::IpAddr>().is_ok() {
            r.warn(
                "server.public_url",
                "an IP address cannot be a WebAuthn relying-party id: the passkey endpoints answer 503",
                "serve under a domain name (localhost works for development)",
            );
        }
        return;
    };
    let belongs = host == rp_id.as_str() || host.strip_suffix(rp_id.as_str()).is_some_and(|h| h.ends_with('.'));
    if rp_id.is_empty() || rp_id.contains(['/', ':']) || !belongs {
        r.error(
            "auth.passkeys.rp_id",
            format!("must be the host of server.public_url ({host}) or a domain it belongs to"),
            "leave it unset to use the public host",
        );
    }
}

fn check_limits(c: &Config, r: &mut Report) {
    let l = &c.limits;
    if c.rate_limit.lockout_duration.is_zero() {
        r.error("rate_limit.lockout_duration", "must be positive", "the default is 15m");
    }
    if !(1024..=16 * 1024 * 1024).contains(&l.max_body_bytes) {
        r.error("limits.max_body_bytes", "must be between 1 KiB and 16 MiB", "the default is 65536");
    }
    if !(2..=128).contains(&l.max_json_depth) {
        r.error("limits.max_json_depth", "must be between 2 and 128", "the default is 32");
    }
    if l.request_timeout.is_zero() || l.header_read_timeout.is_zero() {
        r.error("limits", "timeouts must be positive", "the defaults are 30s and 10s");
    }
    if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&l.denial_audit_window) {
        r.error("limits.denial_audit_window", "must be between 1s and 1h", "the default is 1m");
    }
    let rl = &c.rate_limit;
    for (key, v) in [
        ("rate_limit.login_per_ip_per_minute", rl.login_per_ip_per_minute),
        ("rate_limit.login_global_per_minute", rl.login_global_per_minute),
        ("rate_limit.lockout_after_failures", rl.lockout_after_failures),
        ("rate_limit.api_per_user_per_minute", rl.api_per_user_per_minute),
        ("rate_limit.api_per_ip_per_minute", rl.api_per_ip_per_minute),
        ("rate_limit.api_per_key_per_minute", rl.api_per_key_per_minute),
    ] {
        if v == 0 {
            r.error(key, "must be at least 1", "rate limits cannot be switched off; raise them instead");
        }
    }
}
/// `cors.allowed_origins`: exact origins only.
fn check_cors(c: &Config, r: &mut Report) -> Option<CorsSettings> {
    let mut allowed_origins = Some(Vec::new());
    for (i, o) in c.cors.allowed_origins.iter().enumerate() {
        let key = format!("cors.allowed_origins[{i}]");
        let exact = WebOrigin::of_url(o).ok().filter(|origin| origin.as_str() == o);
        match exact {
            Some(origin) => allowed_origins.iter_mut().for_each(|list| list.push(origin.clone())),
            None => {
                allowed_origins = None;
                if o == "*" {
                    r.error(
                        key,
                        "a wildcard origin is refused: Rampart's credentials are cookies and tokens",
                        "list each exact origin",
                    );
                } else {
                    r.error(
                        key,
                        format!("`{o}` is not an exact origin"),
                        "write scheme://host[:port] with no path or trailing slash",
                    );
                }
            }
        }
    }
    Some(CorsSettings { allowed_origins: allowed_origins? })
}

/// Mail, logging, Redis.
fn check_misc(c: &Config, r: &mut Report) {
    // Allowed (a single-instance deployment may want it), but then every instance holds the
    // owner's credentials, which is what production's default avoids.
    if c.profile == Profile::Production && c.database.migrate_on_start == Some(true) && c.database.migrate_url.is_some()
    {
        r.warn(
            "database.migrate_on_start",
            "the server migrates at start, so it holds database.migrate_url (the schema owner's credentials) while it runs",
            "set migrate_on_start = false and run `rampart migrate` as a deploy step",
        );
    }
    if let Some(url) = &c.mail.smtp_url {
        check_smtp_url(url.expose(), r);
    }
    if c.mail.smtp_url.is_some() && c.mail.from.is_none() {
        r.error(
            "mail.from",
            "mail.smtp_url is set but no sender",
            "set mail.from, e.g. \"App <no-reply@example.com>\"",
        );
    }
    if c.mail.max_per_minute == 0 {
        r.error(
            "mail.max_per_minute",
            "a mail budget of 0 would never send a password reset",
            "set a positive number of messages a minute (default 120)",
        );
    }
    if c.mail.give_up_after.is_zero() || c.mail.give_up_after > Duration::from_secs(30 * 86400) {
        r.error(
            "mail.give_up_after",
            "must be positive and at most 30 days",
            "how long a queued mail is retried before it is given up (default 24h)",
        );
    }
    for (key, link) in [("mail.reset_link", &c.mail.reset_link), ("mail.verify_link", &c.mail.verify_link)] {
        if let Some(l) = link
            && (!l.contains("{token}") || !(l.starts_with("https://") || l.starts_with("http://")))
        {
            r.error(
                key,
                "must be an http(s) URL containing {token}",
                "e.g. \"https://app.example.com/reset#token={token}\"",
            );
        }
    }
    let title = c.ui.title.trim();
    if title.is_empty() || title.chars().count() > 60 || title.chars().any(char::is_control) {
        r.error("ui.title", "must be 1 to 60 characters without control characters", "e.g. \"Acme accounts\"");
    }
    let level = c.log.level.to_ascii_lowercase();
    if level.contains("debug") || level.contains("trace") {
        r.production_only("log.level", "debug-level logging in production", "use info or warn");
    }
    let url = c.database.url.expose();
    if (url.starts_with("postgres://") || url.starts_with("postgresql://")) && c.redis.url.is_none() {
        r.warn(
            "redis.url",
            "PostgreSQL without Redis: rate limits stay in each process, so several instances would not share them (and revocations reach the others through the database within seconds, not at once)",
            "set redis.url when running more than one instance (see docs/deployment.md)",
        );
    }
    let prefix = &c.redis.key_prefix;
    if prefix.is_empty()
        || prefix.len() > 64
        || !prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
    {
        r.error("redis.key_prefix", "must be 1 to 64 letters, digits, '_', '-' or '.'", "the default is \"rampart\"");
    }
    check_transport(c, r);
}

/// TLS to PostgreSQL and Redis. In production, a database or Redis on another machine reached
/// without verified TLS is said (a warning: some run on a private network the operator trusts):
/// password hashes, session digests and revocations would cross the network readable and
/// changeable. Problems never quote a URL, which may hold a password.
fn check_transport(c: &Config, r: &mut Report) {
    let production = c.profile == Profile::Production;
    let db = c.database.url.expose().to_ascii_lowercase();
    if let Some(rest) = db.strip_prefix("postgres://").or_else(|| db.strip_prefix("postgresql://")) {
        let query = rest.split_once('?').map_or("", |(_, q)| q);
        let param = |name: &str| {
            query.split('&').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| v.to_owned()))
        };
        // A `host=/run/postgresql` parameter is a Unix socket: never on the network.
        let socket = param("host").is_some_and(|h| h.starts_with('/'));
        let verified = param("sslmode").is_some_and(|m| m == "verify-full");
        if production && !socket && !verified && !url_host_is_loopback(rest) {
            r.warn(
                "database.url",
                "PostgreSQL on another host is reached without verified TLS (sslmode=verify-full)",
                "add ?sslmode=verify-full&sslrootcert=/path/ca.pem to database.url (see docs/deployment.md)",
            );
        }
    }
    let redis = c.redis.url.as_ref().map(|u| u.expose().to_ascii_lowercase());
    let redis_tls = redis.as_deref().is_some_and(|u| u.starts_with("rediss://"));
    if let Some(rest) = redis.as_deref().and_then(|u| u.strip_prefix("redis://"))
        && production
        && !url_host_is_loopback(rest)
    {
        r.warn(
            "redis.url",
            "Redis on another host is reached without TLS",
            "use rediss:// (and redis.tls_ca_file for a private CA; see docs/deployment.md)",
        );
    }
    if c.redis.tls_ca_file.is_some() && !redis_tls {
        r.error(
            "redis.tls_ca_file",
            "is set but redis.url is not rediss://",
            "use a rediss:// URL, or remove tls_ca_file",
        );
    }
}

/// Whether the host of `user:password@host:port/path?query` (the URL after its scheme) is this
/// machine.
fn url_host_is_loopback(rest: &str) -> bool {
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match hostport.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => hostport.split(':').next().unwrap_or_default(),
    };
    // No host at all (`postgres:///db`) is the local Unix socket.
    host.is_empty() || host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The data key ring, decoded: `Some(None)` when none is configured, `None` when it is malformed.
fn check_data_key(c: &Config, r: &mut Report) -> Option<Option<Arc<DataKey>>> {
    let malformed = |r: &mut Report, key: &str| {
        r.error(key, "is not 32 bytes of base64", "32 random bytes, base64 (e.g. `openssl rand -base64 32`)");
        None
    };
    let current = match c.data_key.as_ref().map(|k| DataKey::from_base64(k.expose())) {
        Some(Ok(key)) => key,
        Some(Err(_)) => return malformed(r, "data_key"),
        None if c.data_key_previous.is_some() => {
            // A previous key without a current one: the generated dev key would seal, and the
            // operator's rotation would go to a key nobody configured.
            r.error(
                "data_key_previous",
                "is set without data_key",
                "set RAMPART_DATA_KEY to the new key beside RAMPART_DATA_KEY_PREVIOUS",
            );
            return None;
        }
        None => {
            r.production_only(
                "data_key",
                "no data key: one would have to be generated on the spot, and TOTP secrets need it",
                "set RAMPART_DATA_KEY (or data_key_file) to 32 random bytes, base64 (`openssl rand -base64 32`)",
            );
            return Some(None);
        }
    };
    let Some(previous) = &c.data_key_previous else {
        return Some(Some(Arc::new(current)));
    };
    match current.with_previous(previous.expose()) {
        Ok(ring) => Some(Some(Arc::new(ring))),
        Err(DataKeyError::PreviousIsCurrent) => {
            r.error(
                "data_key_previous",
                "is the same key as data_key",
                "set RAMPART_DATA_KEY to the new key and RAMPART_DATA_KEY_PREVIOUS to the one it replaces",
            );
            None
        }
        Err(_) => malformed(r, "data_key_previous"),
    }
}

/// `smtp://` (plain, or STARTTLS with `?tls=required`) or `smtps://` (implicit TLS). Mail carries
/// reset links: plain SMTP to another host is only a warning (some relays sit on a private
/// network), but it is said. Problems never quote the URL, which may hold a password.
fn check_smtp_url(url: &str, r: &mut Report) {
    let lower = url.to_ascii_lowercase();
    let Some((scheme, rest)) = lower.split_once("://") else {
        r.error("mail.smtp_url", "is not a URL", "e.g. smtps://user:password@smtp.example.com:465");
        return;
    };
    if scheme != "smtp" && scheme != "smtps" {
        r.error(
            "mail.smtp_url",
            "must start with smtp:// or smtps://",
            "e.g. smtps://user:password@smtp.example.com:465",
        );
        return;
    }
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host = host.split(['/', '?', ':']).next().unwrap_or_default();
    let loopback = host == "localhost" || host.starts_with("127.") || rest.contains("[::1]");
    if scheme == "smtp" && !lower.contains("tls=required") && !loopback {
        r.warn(
            "mail.smtp_url",
            "mail (with reset links) would travel to the relay unencrypted",
            "use smtps:// or add ?tls=required for STARTTLS",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load;

    fn checked(toml_text: &str, env: &[(&str, &str)]) -> Checked {
        let p = std::env::temp_dir().join(format!("rampart-check-{}.toml", uuid::Uuid::new_v4()));
        std::fs::write(&p, toml_text).unwrap();
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        let loaded = load(Some(&p), env).unwrap();
        let _ = std::fs::remove_file(&p);
        check(loaded)
    }

    fn problems(toml_text: &str, env: &[(&str, &str)]) -> Vec<Problem> {
        checked(toml_text, env).problems
    }

    fn errors(p: &[Problem]) -> Vec<&str> {
        p.iter().filter(|p| p.level == Level::Error).map(|p| p.key.as_str()).collect()
    }

    #[test]
    fn the_example_is_clean_in_dev() {
        let p = problems(crate::config::EXAMPLE_TOML, &[]);
        assert!(errors(&p).is_empty(), "{p:?}");
    }

    #[test]
    fn production_refuses_unsafe_settings() {
        let p = problems(
            "profile = \"production\"\ndata_key = \"x\"\n[auth]\npassword_hash = { algorithm = \"argon2id\", memory_kib = 4096, iterations = 1, parallelism = 1 }\n[log]\nlevel = \"debug\"\n[cors]\nallowed_origins = [\"*\"]\n",
            &[],
        );
        let e = errors(&p);
        for key in [
            "data_key",
            "server.public_url",
            "server.trusted_proxies",
            "auth.password_hash",
            "auth.require_email_verification",
            "log.level",
            "cors.allowed_origins[0]",
            "auth.keys_dir",
        ] {
            assert!(e.contains(&key), "{key} not refused: {p:?}");
        }
    }

    fn warned<'a>(p: &'a [Problem], key: &str) -> Vec<&'a str> {
        p.iter().filter(|p| p.level == Level::Warning && p.key == key).map(|p| p.message.as_str()).collect()
    }

    #[test]
    fn tls_files_go_in_pairs_and_satisfy_the_plain_http_rule() {
        let prod = "profile = \"production\"\n[server]\npublic_url = \"https://auth.example.com\"\n";
        let p = problems(&format!("{prod}tls_cert_file = \"/c.pem\"\ntls_key_file = \"/k.pem\"\n"), &[]);
        assert!(!errors(&p).contains(&"server.trusted_proxies"), "{p:?}");
        let p = problems(prod, &[]);
        assert!(errors(&p).contains(&"server.trusted_proxies"), "{p:?}");
        let p = problems("[server]\ntls_cert_file = \"/c.pem\"\n", &[]);
        assert!(errors(&p).contains(&"server.tls_key_file"), "{p:?}");
        let p = problems("[server]\ntls_key_file = \"/k.pem\"\n", &[]);
        assert!(errors(&p).contains(&"server.tls_cert_file"), "{p:?}");
        // The redirect listener needs an https target and a port of its own.
        let p = problems("[server]\nhttp_redirect_listen = \"127.0.0.1:8081\"\n", &[]);
        assert!(errors(&p).contains(&"server.http_redirect_listen"), "{p:?}");
        let p = problems(
            "[server]\npublic_url = \"https://a.example\"\nlisten = \"127.0.0.1:8443\"\nhttp_redirect_listen = \"127.0.0.1:8443\"\n",
            &[],
        );
        assert!(errors(&p).contains(&"server.http_redirect_listen"), "{p:?}");
        let p = problems("[server]\npublic_url = \"https://a.example\"\nhttp_redirect_listen = \"0.0.0.0:80\"\n", &[]);
        assert!(!errors(&p).contains(&"server.http_redirect_listen"), "{p:?}");
    }

    #[test]
    fn production_warns_about_remote_stores_without_tls() {
        let prod = "profile = \"production\"\n";
        for (url, warns) in [
            ("postgres://app@db.internal/rampart", true),
            ("postgres://app@db.internal/rampart?sslmode=require", true),
            ("postgres://app@db.internal/rampart?sslmode=verify-full&sslrootcert=/ca.pem", false),
            ("postgres://app@127.0.0.1:5432/rampart", false),
            ("postgres://app@[::1]:5432/rampart", false),
            ("postgres://app@localhost/rampart", false),
            ("postgres:///rampart?host=/run/postgresql", false),
        ] {
            let p = problems(&format!("{prod}[database]\nurl = \"{url}\"\n"), &[]);
            assert_eq!(!warned(&p, "database.url").is_empty(), warns, "{url}: {p:?}");
            // Dev says nothing about it.
            let p = problems(&format!("[database]\nurl = \"{url}\"\n"), &[]);
            assert!(warned(&p, "database.url").is_empty(), "{url}: {p:?}");
        }
        let tls = |p: &[Problem]| warned(p, "redis.url").iter().any(|m| m.contains("without TLS"));
        let p = problems(&format!("{prod}[redis]\nurl = \"redis://redis.internal:6379\"\n"), &[]);
        assert!(tls(&p), "{p:?}");
        for url in ["rediss://redis.internal:6380", "redis://127.0.0.1:6379"] {
            let p = problems(&format!("{prod}[redis]\nurl = \"{url}\"\n"), &[]);
            assert!(!tls(&p), "{url}: {p:?}");
        }
        let p = problems("[redis]\nurl = \"redis://127.0.0.1:6379\"\ntls_ca_file = \"/ca.pem\"\n", &[]);
        assert!(errors(&p).contains(&"redis.tls_ca_file"), "{p:?}");
    }

    #[test]
    fn production_can_be_clean() {
        let keys = std::env::temp_dir().join(format!("rampart-check-keys-{}", uuid::Uuid::new_v4()));
        crate::auth::keys::generate(&keys, crate::config::JwtAlgorithm::EdDSA).unwrap();
        let keys_dir = keys.display().to_string();
        let p = problems(
            "profile = \"production\"\n[server]\npublic_url = \"https://auth.example.com\"\ntrusted_proxies = [\"10.0.0.0/8\"]\n[auth]\nrequire_email_verification = false\njwt_algorithm = \"EdDSA\"\n",
            &[
                ("RAMPART_DATA_KEY", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="),
                ("RAMPART_AUTH__KEYS_DIR", &keys_dir),
            ],
        );
        let _ = std::fs::remove_dir_all(&keys);
        assert!(errors(&p).is_empty(), "{p:?}");
    }

    #[test]
    fn a_give_up_time_of_zero_is_refused() {
        let p = problems("[mail]\ngive_up_after = \"0s\"\n", &[]);
        assert!(errors(&p).contains(&"mail.give_up_after"), "{p:?}");
        assert!(!errors(&problems("[mail]\ngive_up_after = \"2h\"\n", &[])).contains(&"mail.give_up_after"));
    }

    #[test]
    fn a_mail_budget_of_zero_is_refused() {
        let p = problems("[mail]\nmax_per_minute = 0\n", &[]);
        assert!(errors(&p).contains(&"mail.max_per_minute"), "{p:?}");
        assert!(!errors(&problems("[mail]\nmax_per_minute = 5\n", &[])).contains(&"mail.max_per_minute"));
    }

    #[test]
    fn bad_policies_are_named() {
        let p = problems(
            "[resources.Bad]\nfields.x = { type = \"string\" }\n[resources.t]\nfields.x = { type = \"enum\" }\naccess.read = \"role:ghost\"\naccess.update = \"owner\"\naccess.create = \"public\"\n",
            &[],
        );
        let e = errors(&p);
        for key in ["resources.Bad", "resources.t.fields.x", "resources.t.access.read", "resources.t.access.update"] {
            assert!(e.contains(&key), "{key} not reported: {p:?}");
        }
        assert!(p.iter().any(|p| p.key == "resources.t.access.create" && p.level == Level::Warning));
    }

    #[test]
    fn the_previous_data_key_needs_a_current_one_that_differs() {
        const A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        const B: &str = "HxweHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=";
        let ring = checked("", &[("RAMPART_DATA_KEY", B), ("RAMPART_DATA_KEY_PREVIOUS", A)]);
        assert!(errors(&ring.problems).is_empty(), "{:?}", ring.problems);
        let key = ring.settings.and_then(|s| s.data_key).unwrap();
        assert!(key.previous_id().is_some_and(|id| id != key.id()));
        for env in [
            vec![("RAMPART_DATA_KEY_PREVIOUS", A)],
            vec![("RAMPART_DATA_KEY", A), ("RAMPART_DATA_KEY_PREVIOUS", A)],
            vec![("RAMPART_DATA_KEY", A), ("RAMPART_DATA_KEY_PREVIOUS", "c2hvcnQ=")],
        ] {
            let c = checked("", &env);
            assert_eq!(errors(&c.problems), vec!["data_key_previous"], "{env:?}");
            assert!(c.settings.is_none());
            assert!(!format!("{:?}", c.problems).contains(A), "a key in a problem");
        }
    }

    #[test]
    fn compile_errors_are_reported_by_check() {
        let p = problems(
            "[resources.t]\nfields.x = { type = \"string\", max_len = 5, pattern = \"[unclosed\" }\naccess.read = \"authenticated\"\n",
            &[],
        );
        assert!(errors(&p).contains(&"resources.t.fields.x.pattern"), "{p:?}");
        let p = problems(
            "[resources.t]\nfields.n = { type = \"integer\", min = 1, max = 5, default = 9 }\naccess.read = \"authenticated\"\n",
            &[],
        );
        assert!(errors(&p).contains(&"resources.t.fields.n.default"), "{p:?}");
    }

    #[test]
    fn passkey_settings() {
        let base = "[server]\npublic_url = \"https://auth.example.com\"\n";
        for (extra, key) in [
            ("[auth]\nreauth_window = \"0s\"\n", "auth.reauth_window"),
            ("[auth.passkeys]\nchallenge_ttl = \"0s\"\n", "auth.passkeys.challenge_ttl"),
            ("[auth.passkeys]\nrequired_for_roles = [\"root\"]\n", "auth.passkeys.required_for_roles"),
            ("[auth.passkeys]\nrp_id = \"other.com\"\n", "auth.passkeys.rp_id"),
            // A suffix of the host that is not a whole label is another domain.
            ("[auth.passkeys]\nrp_id = \"ample.com\"\n", "auth.passkeys.rp_id"),
            ("[auth.passkeys]\nrp_name = \"\"\n", "auth.passkeys.rp_name"),
        ] {
            let p = problems(&format!("{base}{extra}"), &[]);
            assert!(errors(&p).contains(&key), "{extra:?} not refused: {p:?}");
        }
        for rp_id in ["example.com", "auth.example.com"] {
            let text = format!("{base}[auth.passkeys]\nrp_id = \"{rp_id}\"\nrequired_for_roles = [\"admin\"]\n");
            let p = problems(&text, &[]);
            assert!(!errors(&p).iter().any(|k| k.starts_with("auth.passkeys")), "{rp_id}: {p:?}");
        }
        // An IP address cannot be an rp id: passkeys are off, and the check says so.
        let p = problems("[server]\npublic_url = \"http://10.0.0.5:8080\"\n", &[]);
        assert!(p.iter().any(|p| p.key == "server.public_url" && p.level == Level::Warning), "{p:?}");
    }

    #[test]
    fn account_lifecycle_settings() {
        let p = problems(
            "[mail]\nsmtp_url = \"http://x\"\nfrom = \"a@b.c\"\nreset_link = \"https://x/no-token\"\n[auth]\nmfa_challenge_ttl = \"0s\"\ntotp_issuer = \"a:b\"\n",
            &[],
        );
        let e = errors(&p);
        for key in ["mail.smtp_url", "mail.reset_link", "auth.mfa_challenge_ttl", "auth.totp_issuer"] {
            assert!(e.contains(&key), "{key} not refused: {p:?}");
        }
        let p = problems("[mail]\nsmtp_url = \"smtp://relay.example.com:25\"\nfrom = \"a@b.c\"\n", &[]);
        assert!(p.iter().any(|p| p.key == "mail.smtp_url" && p.level == Level::Warning), "{p:?}");
        let p = problems("[mail]\nsmtp_url = \"smtp://127.0.0.1:2525\"\nfrom = \"a@b.c\"\n", &[]);
        assert!(!p.iter().any(|p| p.key == "mail.smtp_url"), "{p:?}");
        let p = problems("", &[("RAMPART_DATA_KEY", "dG9vIHNob3J0")]);
        assert!(errors(&p).contains(&"data_key"), "{p:?}");
        for bad in ["", "a b", "x:y", &"p".repeat(65)] {
            let p = problems(&format!("[redis]\nkey_prefix = \"{bad}\"\n"), &[]);
            assert!(errors(&p).contains(&"redis.key_prefix"), "{bad:?} accepted: {p:?}");
        }
        let p = problems("[database]\nurl = \"postgres://app@db/x\"\n", &[]);
        assert!(p.iter().any(|p| p.key == "redis.url" && p.level == Level::Warning), "{p:?}");
    }

    fn at<'a>(p: &'a [Problem], key: &str) -> Vec<&'a Problem> {
        p.iter().filter(|p| p.key == key).collect()
    }

    #[test]
    fn policy_lints() {
        let res = |rules: &str| {
            format!("[resources.t]\nowner = \"user_id\"\nfields.x = {{ type = \"string\", max_len = 5 }}\n{rules}")
        };
        let p = problems(
            &res(
                "access.read = \"owner\"\naccess.update = \"owner | authenticated\"\naccess.delete = \"public\"\naccess.create = \"authenticated\"\naccess.list = \"owner\"\n",
            ),
            &[],
        );
        assert!(
            at(&p, "resources.t.access.update")
                .iter()
                .any(|p| p.message.contains("owner scoping") && p.level == Level::Warning),
            "{p:?}"
        );
        let delete = at(&p, "resources.t.access.delete");
        assert!(delete.iter().any(|p| p.message.contains("owner scoping")), "{p:?}");
        assert!(delete.iter().any(|p| p.fix.contains("public_writes = true")), "{p:?}");
        assert!(at(&p, "resources.t.access.list").is_empty(), "{p:?}");
        // list lets in a term that read does not cover; then the same pairs the other way round.
        for (list, read) in [("authenticated", "owner"), ("owner | role:manager", "owner"), ("public", "authenticated")]
        {
            let rules = format!(
                "access.list = \"{list}\"\naccess.read = \"{read}\"\naccess.create = \"authenticated\"\naccess.update = \"owner\"\naccess.delete = \"owner\"\n"
            );
            let p = problems(&format!("[roles]\ndeclared = [\"manager\"]\n{}", res(&rules)), &[]);
            assert!(
                at(&p, "resources.t.access.list").iter().any(|p| p.message.contains("broader than read")),
                "{list} / {read}: {p:?}"
            );
        }
        for (list, read) in [("owner", "authenticated"), ("role:admin", "owner | role:admin"), ("owner", "public")] {
            let rules = format!(
                "access.list = \"{list}\"\naccess.read = \"{read}\"\naccess.create = \"authenticated\"\naccess.update = \"owner\"\naccess.delete = \"owner\"\n"
            );
            let p = problems(&res(&rules), &[]);
            assert!(at(&p, "resources.t.access.list").is_empty(), "{list} / {read}: {p:?}");
        }
        // public writes are fine once said so (on a resource whose rows have no owner).
        let p = problems(
            "[resources.g]\nfields.x = { type = \"string\", max_len = 5 }\npublic_writes = true\naccess.create = \"public\"\naccess.read = \"public\"\naccess.list = \"public\"\naccess.update = \"role:admin\"\naccess.delete = \"role:admin\"\n",
            &[],
        );
        assert!(p.iter().all(|p| !p.key.starts_with("resources.")), "{p:?}");
    }

    #[test]
    fn the_example_policy_is_lint_free() {
        let p = problems(crate::config::EXAMPLE_TOML, &[("RAMPART_PROFILE", "production")]);
        assert!(p.iter().all(|p| !p.key.starts_with("resources.")), "{p:?}");
    }

    #[test]
    fn trusting_every_address_is_unsafe() {
        for net in ["0.0.0.0/0", "::/0", "::ffff:0:0/96", "10.0.0.0/0"] {
            let p = problems(&format!("[server]\ntrusted_proxies = [\"10.0.0.1\", \"{net}\"]\n"), &[]);
            assert_eq!(
                at(&p, "server.trusted_proxies[1]").first().map(|p| p.level),
                Some(Level::Warning),
                "{net}: {p:?}"
            );
            let p = problems(&format!("profile = \"production\"\n[server]\ntrusted_proxies = [\"{net}\"]\n"), &[]);
            assert!(errors(&p).contains(&"server.trusted_proxies[0]"), "{net}: {p:?}");
        }
        let p = problems("[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"::ffff:10.0.0.0/104\", \"fd00::/8\"]\n", &[]);
        assert!(p.iter().all(|p| !p.key.starts_with("server.trusted_proxies")), "{p:?}");
    }

    #[test]
    fn migrate_on_start_defaults_to_the_profile() {
        let on = |text: &str| checked(text, &[]).accept(|_| true).unwrap().settings.migrate_on_start();
        assert!(on(""));
        assert!(!on("[database]\nmigrate_on_start = false\n"));
        let production = "profile = \"production\"\n[server]\npublic_url = \"https://auth.example.com\"\ntrusted_proxies = [\"10.0.0.0/8\"]\n";
        assert!(!on(production));
        assert!(on(&format!("{production}[database]\nmigrate_on_start = true\n")));
        let owner = "[database]\nmigrate_url = \"postgres://owner@db/x\"\n";
        let p = problems(&format!("{production}{owner}migrate_on_start = true\n"), &[]);
        assert_eq!(at(&p, "database.migrate_on_start").first().map(|p| p.level), Some(Level::Warning), "{p:?}");
        let p = problems(&format!("{production}{owner}"), &[]);
        assert!(at(&p, "database.migrate_on_start").is_empty(), "{p:?}");
    }

    #[test]
    fn settings_carry_the_parsed_values() {
        let c = checked(
            "[server]\npublic_url = \"https://Auth.Example.com/app\"\ntrusted_proxies = [\"10.0.0.0/8\", \"192.0.2.7\", \"::ffff:172.16.0.0/108\"]\n[cors]\nallowed_origins = [\"https://app.example.com\"]\n[roles]\ndeclared = [\"auditor\"]\n",
            &[],
        );
        let s = c.accept(|_| false).unwrap().settings;
        assert_eq!(s.server.public_url, "https://Auth.Example.com/app");
        assert_eq!(s.server.public_origin.as_str(), "https://auth.example.com");
        assert!(s.server.public_origin.is_https());
        assert_eq!(s.jwt_audience(), "https://auth.example.com");
        let proxy = |ip: &str| s.server.trusted_proxies.contains(ip.parse().unwrap());
        // An IPv4 peer matches an IPv6 range through its mapped form.
        assert!(proxy("10.1.2.3") && proxy("192.0.2.7") && proxy("172.16.0.1"));
        assert!(!proxy("192.0.2.8") && !proxy("11.0.0.1"));
        let cors: Vec<&str> = s.cors.allowed_origins.iter().map(WebOrigin::as_str).collect();
        assert_eq!(cors, ["https://app.example.com"]);
        assert!(s.roles.is_known("user") && s.roles.is_known("admin") && s.roles.is_known("auditor"));
        assert!(!s.roles.is_known("root"));
        assert!(s.resources.is_empty());
        assert!(!s.require_email_verification());
        let s = checked(crate::config::EXAMPLE_TOML, &[]).accept(|_| false).unwrap().settings;
        assert!(s.resources.get("orders").is_some());
    }

    #[test]
    fn a_value_that_does_not_parse_yields_no_settings_whatever_is_waived() {
        for text in [
            "[server]\ntrusted_proxies = [\"10.0.0.0/33\"]\n",
            "[server]\npublic_url = \"ftp://x\"\n",
            "[cors]\nallowed_origins = [\"https://app.example.com/\"]\n",
            "[roles]\ndeclared = [\"Admin\"]\n",
            "[resources.t]\nfields.x = { type = \"string\", max_len = 5, pattern = \"[unclosed\" }\n",
        ] {
            let c = checked(text, &[]);
            let keys: Vec<String> =
                c.problems.iter().filter(|p| p.level == Level::Error).map(|p| p.key.clone()).collect();
            let refused = c.accept(|p| p.level == Level::Error).unwrap_err();
            let refused: Vec<String> = refused.into_iter().map(|p| p.key).collect();
            assert_eq!(refused, keys, "{text}");
        }
    }

    #[test]
    fn a_waived_problem_does_not_refuse() {
        let text = "profile = \"production\"\n[server]\npublic_url = \"https://auth.example.com\"\ntrusted_proxies = [\"10.0.0.0/8\"]\n[auth]\nrequire_email_verification = false\nkeys_dir = \"/nonexistent/rampart-keys\"\n";
        let env = [("RAMPART_DATA_KEY", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=")];
        let refused = checked(text, &env).accept(|_| false).unwrap_err();
        assert_eq!(refused.iter().map(|p| p.key.as_str()).collect::<Vec<_>>(), ["auth.keys_dir"]);
        let accepted = checked(text, &env).accept(|p| p.key == "auth.keys_dir").unwrap();
        assert!(accepted.warnings.iter().all(|p| p.level == Level::Warning), "{:?}", accepted.warnings);
        assert!(accepted.settings.data_key.is_some());
    }
}

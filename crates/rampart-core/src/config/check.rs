//! Whole-config checks, shared by `rampart check` and start-up. Each problem names its key and a
//! fix. An `Error` stops the server; in the production profile every unsafe setting is an error,
//! in the dev profile the same settings are at most warnings.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use super::access::{AccessRule, Term};
use super::resources::{FieldType, ResourceConfig};
use super::{Config, Loaded, Profile};
use crate::ident::is_identifier;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub level: Level,
    pub key: String,
    pub message: String,
    pub fix: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        write!(f, "{level}: `{}`: {} (fix: {})", self.key, self.message, self.fix)
    }
}

/// The OWASP minimum for Argon2id.
pub const OWASP_MEMORY_KIB: u32 = 19456;
pub const OWASP_ITERATIONS: u32 = 2;
/// http-api.md: access tokens live at most 15 minutes.
pub const MAX_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);

struct Report {
    production: bool,
    problems: Vec<Problem>,
}

impl Report {
    fn error(&mut self, key: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) {
        self.problems.push(Problem { level: Level::Error, key: key.into(), message: message.into(), fix: fix.into() });
    }
    fn warn(&mut self, key: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) {
        self.problems.push(Problem {
            level: Level::Warning,
            key: key.into(),
            message: message.into(),
            fix: fix.into(),
        });
    }
    /// Unsafe in production: an error there, a warning in dev.
    fn unsafe_setting(&mut self, key: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) {
        if self.production {
            self.error(key, message, fix);
        } else {
            self.warn(key, message, fix);
        }
    }
    /// Unsafe in production, normal in dev: an error there, silence in dev.
    fn production_only(&mut self, key: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) {
        if self.production {
            self.error(key, message, fix);
        }
    }
}

pub fn check(loaded: &Loaded) -> Vec<Problem> {
    let c = &loaded.config;
    let mut r = Report { production: c.profile == Profile::Production, problems: Vec::new() };
    for key in &loaded.inline_secrets {
        r.production_only(
            key.as_str(),
            "a secret is written in the config file",
            format!(
                "set it through the environment (RAMPART_{}) or a `_file` key",
                key.to_uppercase().replace('.', "__")
            ),
        );
    }
    check_server(c, &mut r);
    check_auth(c, &mut r);
    check_limits(c, &mut r);
    check_misc(c, &mut r);
    let roles = check_roles(c, &mut r);
    for (name, res) in &c.resources {
        check_resource(name, res, &roles, &mut r);
    }
    // What only compiling finds (a pattern that is not a regex, a default that breaks its own
    // field's constraints) is reported here too, so `check` agrees with `serve`.
    if !r.problems.iter().any(|p| p.level == Level::Error && p.key.starts_with("resources."))
        && let Err(m) = crate::resources::Registry::compile(c)
    {
        let (key, message) = m.split_once(": ").unwrap_or(("resources", m.as_str()));
        r.error(key, message, "fix the declaration");
    }
    r.problems.sort_by_key(|p| std::cmp::Reverse(p.level));
    r.problems
}

fn check_server(c: &Config, r: &mut Report) {
    match crate::config::check::origin_of(&c.server.public_url) {
        Ok(origin) => {
            if !origin.starts_with("https://") {
                r.production_only("server.public_url", "public_url is not https", "serve the public URL over https");
            }
        }
        Err(m) => r.error("server.public_url", m, "write the URL clients use, e.g. https://auth.example.com"),
    }
    for (i, p) in c.server.trusted_proxies.iter().enumerate() {
        let key = format!("server.trusted_proxies[{i}]");
        match parse_cidr(p) {
            None => r.error(key, format!("`{p}` is not an IP address or CIDR"), "write e.g. 10.0.0.0/8 or 192.0.2.7"),
            Some(net) if trusts_everyone(&net) => r.unsafe_setting(
                key,
                format!(
                    "`{p}` trusts every address: any client can write its own IP into `{}` and get fresh rate-limit budgets and forged audit addresses",
                    c.server.trusted_header.name()
                ),
                "list only the addresses of your reverse proxies, e.g. 10.0.0.5 or 10.0.0.0/24",
            ),
            Some(_) => {}
        }
    }
    if c.server.tls_cert_file.is_some() || c.server.tls_key_file.is_some() {
        let key = if c.server.tls_cert_file.is_some() { "server.tls_cert_file" } else { "server.tls_key_file" };
        r.error(
            key,
            "serving TLS directly is not supported by this version",
            "terminate TLS at a reverse proxy and list it in server.trusted_proxies",
        );
    }
    if c.server.trusted_proxies.is_empty() && c.server.tls_cert_file.is_none() {
        r.production_only(
            "server.trusted_proxies",
            "plain HTTP with no TLS and no trusted proxy in front",
            "put Rampart behind a TLS-terminating proxy and list its address in server.trusted_proxies",
        );
    }
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
    let issuer = a.totp_issuer.trim();
    if issuer.is_empty() || issuer.len() > 64 || issuer.chars().any(|ch| ch.is_control() || ch == ':') {
        r.error(
            "auth.totp_issuer",
            "must be 1 to 64 characters, without ':' or control characters",
            "the default is \"Rampart\"",
        );
    }
    if c.require_email_verification() && c.mail.smtp_url.is_none() {
        r.production_only(
            "auth.require_email_verification",
            "email verification is required but no mail is configured",
            "set mail.smtp_url (through RAMPART_MAIL__SMTP_URL or mail.smtp_url_file) and mail.from",
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
    ] {
        if v == 0 {
            r.error(key, "must be at least 1", "rate limits cannot be switched off; raise them instead");
        }
    }
}

fn check_misc(c: &Config, r: &mut Report) {
    for (i, o) in c.cors.allowed_origins.iter().enumerate() {
        let key = format!("cors.allowed_origins[{i}]");
        if o == "*" {
            r.error(
                key,
                "a wildcard origin is refused: Rampart's credentials are cookies and tokens",
                "list each exact origin",
            );
        } else if origin_of(o).ok().as_deref() != Some(o.as_str()) {
            r.error(
                key,
                format!("`{o}` is not an exact origin"),
                "write scheme://host[:port] with no path or trailing slash",
            );
        }
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
    match &c.data_key {
        Some(k) if crate::auth::data_key::DataKey::from_base64(k.expose()).is_err() => {
            r.error(
                "data_key",
                "is not 32 bytes of base64",
                "32 random bytes, base64 (e.g. `openssl rand -base64 32`)",
            );
        }
        Some(_) => {}
        None => r.production_only(
            "data_key",
            "no data key: one would have to be generated on the spot, and TOTP secrets need it",
            "set RAMPART_DATA_KEY (or data_key_file) to 32 random bytes, base64 (`openssl rand -base64 32`)",
        ),
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

fn check_roles(c: &Config, r: &mut Report) -> BTreeSet<String> {
    let mut roles: BTreeSet<String> = ["user", "admin"].into_iter().map(String::from).collect();
    for (i, role) in c.roles.declared.iter().enumerate() {
        let key = format!("roles.declared[{i}]");
        if !is_identifier(role) {
            r.error(key, format!("`{role}` is not a role name"), "use ^[a-z][a-z0-9_]{0,62}$");
        } else if !roles.insert(role.clone()) {
            r.error(key, format!("`{role}` is declared twice or is built in"), "remove the duplicate");
        }
    }
    roles
}

/// Columns the server owns on every resource table.
pub const SERVER_FIELDS: [&str; 3] = ["id", "created_at", "updated_at"];

fn check_resource(name: &str, res: &ResourceConfig, roles: &BTreeSet<String>, r: &mut Report) {
    let base = format!("resources.{name}");
    if !is_identifier(name) {
        r.error(&base, format!("`{name}` is not a resource name"), "use ^[a-z][a-z0-9_]{0,62}$");
        return;
    }
    if let Some(owner) = &res.owner
        && (!is_identifier(owner) || SERVER_FIELDS.contains(&owner.as_str()) || res.fields.contains_key(owner))
    {
        r.error(
            format!("{base}.owner"),
            format!("`{owner}` cannot be the owner column"),
            "name a column not otherwise declared, e.g. user_id",
        );
    }
    if res.fields.is_empty() {
        r.error(
            format!("{base}.fields"),
            "a resource needs at least one field",
            "declare fields.NAME = { type = ... }",
        );
    }
    let rule = |r: &mut Report, key: String, expr: &str| -> Option<AccessRule> {
        match AccessRule::parse(expr) {
            Ok(rule) => {
                for role in rule.roles() {
                    // A hard error in every profile, not only a lint: the rule would grant
                    // nobody, and `rampart user create --role` refuses the name anyway.
                    if !roles.contains(role) {
                        r.error(
                            &key,
                            format!(
                                "unknown role `{role}`: it is neither built in (user, admin) nor in roles.declared"
                            ),
                            format!("add \"{role}\" to roles.declared, or correct the name"),
                        );
                    }
                }
                if rule.has(&Term::Owner) && res.owner.is_none() {
                    r.error(&key, "`owner` used but the resource has no owner column", format!("set {base}.owner"));
                }
                Some(rule)
            }
            Err(m) => {
                r.error(&key, m, "e.g. \"owner | role:admin\"");
                None
            }
        }
    };
    let mut rules: BTreeMap<&str, AccessRule> = BTreeMap::new();
    for (action, expr) in res.access.actions() {
        let key = format!("{base}.access.{action}");
        let Some(expr) = expr else {
            r.warn(
                &key,
                "not declared: the action is refused to everyone but admins",
                format!("declare {key} to open it"),
            );
            continue;
        };
        if let Some(parsed) = rule(r, key, expr) {
            rules.insert(action, parsed);
        }
    }
    lint_policy(&base, res, &rules, r);
    for (field, f) in &res.fields {
        let key = format!("{base}.fields.{field}");
        if !is_identifier(field) || SERVER_FIELDS.contains(&field.as_str()) {
            r.error(
                &key,
                format!("`{field}` cannot be a field name"),
                "use ^[a-z][a-z0-9_]{0,62}$, not id/created_at/updated_at",
            );
        }
        for (which, expr) in [("write", &f.write), ("read", &f.read)] {
            if let Some(expr) = expr {
                rule(r, format!("{key}.{which}"), expr);
            }
        }
        if let (Some(min), Some(max)) = (f.min, f.max)
            && min > max
        {
            r.error(&key, "min is greater than max", "swap them");
        }
        if let (Some(min), Some(max)) = (f.min_len, f.max_len)
            && min > max
        {
            r.error(&key, "min_len is greater than max_len", "swap them");
        }
        let numeric = matches!(f.kind, FieldType::Integer | FieldType::Number);
        if (f.min.is_some() || f.max.is_some()) && !numeric {
            r.error(&key, "min/max apply to integer and number fields", "use min_len/max_len for strings");
        }
        if (f.min_len.is_some() || f.max_len.is_some() || f.pattern.is_some()) && f.kind != FieldType::String {
            r.error(&key, "min_len/max_len/pattern apply to string fields", "remove them");
        }
        match (f.kind, &f.values) {
            (FieldType::Enum, None) => r.error(&key, "an enum needs `values`", "values = [\"a\", \"b\"]"),
            (FieldType::Enum, Some(v)) if v.is_empty() => {
                r.error(&key, "an enum needs at least one value", "values = [\"a\", \"b\"]")
            }
            (FieldType::Enum, Some(_)) | (_, None) => {}
            (_, Some(_)) => r.error(&key, "`values` applies to enum fields", "use type = \"enum\""),
        }
        if let (Some(default), FieldType::Enum, Some(values)) = (&f.default, f.kind, &f.values)
            && !default.as_str().is_some_and(|d| values.iter().any(|v| v == d))
        {
            r.error(&key, "the default is not one of the values", "pick one of `values`");
        }
        if f.kind == FieldType::String && f.max_len.is_none() {
            r.warn(&key, "string without max_len: bounded only by the body limit", "set max_len");
        }
    }
}

/// Access rules that parse but do not say what their author most likely meant.
fn lint_policy(base: &str, res: &ResourceConfig, rules: &BTreeMap<&str, AccessRule>, r: &mut Report) {
    for (&action, rule) in rules {
        let key = format!("{base}.access.{action}");
        let writes = matches!(action, "create" | "update" | "delete");
        if writes && rule.has(&Term::Public) && !res.public_writes {
            r.unsafe_setting(
                &key,
                format!("`public` lets anonymous clients {action} records, and the resource does not say that is meant"),
                format!(
                    "use authenticated, owner or a role; if anonymous writes are intended, set {base}.public_writes = true"
                ),
            );
        }
        if !matches!(action, "update" | "delete") {
            continue;
        }
        let open = [Term::Public, Term::Authenticated].into_iter().find(|t| rule.has(t));
        match (&res.owner, open) {
            // A caller gets the widest scope any matching term grants (`policy::decide`), and
            // `authenticated` / `public` match everyone, with the whole table as scope: the
            // statement is no longer limited to the caller's rows, and nothing says so.
            (Some(owner), Some(term)) => r.unsafe_setting(
                &key,
                format!(
                    "`{}` turns owner scoping off: every {} may {action} every row, not only rows whose {owner} is theirs",
                    term_name(&term),
                    if term == Term::Public { "client, signed in or not," } else { "signed-in user" },
                ),
                "write \"owner | role:admin\"; if every signed-in user really may change every row, name a role instead (e.g. role:user)",
            ),
            (None, Some(Term::Authenticated)) => r.unsafe_setting(
                &key,
                "any signed-in user may change every row of a resource without an owner",
                "add an owner column or restrict to a role",
            ),
            _ => {}
        }
    }
    if let (Some(list), Some(read)) = (rules.get("list"), rules.get("read"))
        && let Some(wider) = list.0.iter().find(|t| !grants(read, t))
    {
        r.warn(
            format!("{base}.access.list"),
            format!(
                "list is broader than read: `{}` may list records that read refuses it one by one",
                term_name(wider)
            ),
            format!("make {base}.access.list at most as broad as {base}.access.read (e.g. the same expression)"),
        );
    }
    if rules.contains_key("list") && !rules.contains_key("read") {
        r.warn(
            format!("{base}.access.list"),
            "list is broader than read: read is not declared (admins only), list is",
            format!("declare {base}.access.read, or make list admins only as well"),
        );
    }
}

/// Whether `rule` lets in everyone `term` lets in: `public` covers everything, `authenticated`
/// every signed-in caller (owners and role holders included), and a term covers itself.
fn grants(rule: &AccessRule, term: &Term) -> bool {
    rule.has(term)
        || rule.has(&Term::Public)
        || (rule.has(&Term::Authenticated) && matches!(term, Term::Owner | Term::Role(_)))
}

fn term_name(term: &Term) -> String {
    match term {
        Term::Public => "public".into(),
        Term::Authenticated => "authenticated".into(),
        Term::Owner => "owner".into(),
        Term::Role(name) => format!("role:{name}"),
    }
}

/// `scheme://host[:port]` of a URL, lower-cased, refusing anything that is not http(s).
pub fn origin_of(url: &str) -> Result<String, String> {
    let uri: http::Uri = url.parse().map_err(|_| format!("`{url}` is not a URL"))?;
    let scheme = uri.scheme_str().ok_or_else(|| format!("`{url}` has no scheme"))?.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(format!("`{url}` is not http or https"));
    }
    let authority = uri.authority().ok_or_else(|| format!("`{url}` has no host"))?;
    if authority.as_str().contains('@') {
        return Err(format!("`{url}` carries credentials"));
    }
    Ok(format!("{scheme}://{}", authority.as_str().to_ascii_lowercase()))
}

/// A CIDR that holds every IPv4 address (`0.0.0.0/0`, or an IPv6 range holding all of
/// `::ffff:0:0/96`, which the client-IP walk also matches IPv4 peers against) or every IPv6
/// address (`::/0`).
fn trusts_everyone(net: &ipnet::IpNet) -> bool {
    use std::net::{IpAddr, Ipv4Addr};
    match net {
        ipnet::IpNet::V4(v4) => v4.prefix_len() == 0,
        ipnet::IpNet::V6(v6) => {
            let first = IpAddr::V6(Ipv4Addr::UNSPECIFIED.to_ipv6_mapped());
            let last = IpAddr::V6(Ipv4Addr::BROADCAST.to_ipv6_mapped());
            v6.prefix_len() == 0 || (net.contains(&first) && net.contains(&last))
        }
    }
}

/// A CIDR, or a single address taken as a /32 or /128.
pub fn parse_cidr(s: &str) -> Option<ipnet::IpNet> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>().ok().or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load;

    fn problems(toml_text: &str, env: &[(&str, &str)]) -> Vec<Problem> {
        let p = std::env::temp_dir().join(format!("rampart-check-{}.toml", uuid::Uuid::new_v4()));
        std::fs::write(&p, toml_text).unwrap();
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        let loaded = load(Some(&p), env).unwrap();
        let _ = std::fs::remove_file(&p);
        check(&loaded)
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
    fn origins() {
        assert_eq!(origin_of("https://Example.com/path").unwrap(), "https://example.com");
        assert_eq!(origin_of("http://localhost:8080").unwrap(), "http://localhost:8080");
        assert!(origin_of("ftp://x").is_err());
        assert!(origin_of("nothing").is_err());
    }
}

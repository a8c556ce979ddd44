//! Reading the configuration: the TOML file (or the built-in dev profile), then every
//! `RAMPART_SECTION__KEY` environment variable laid over it, then `*_file` secrets read in.
//! Errors name the key, and the environment variable when that is where the value came from.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Config, EXAMPLE_TOML, SecretUrl, SecretValue};

/// Where the configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    /// No file: the built-in dev profile (the example config).
    BuiltInDev,
}

#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub origin: Origin,
    /// Keys whose secret value was written in the file itself rather than coming from the
    /// environment or a `*_file`. The production profile refuses these.
    pub inline_secrets: Vec<String>,
}

/// A configuration that cannot be used. `Display` is the one line printed before exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The environment variable prefix. `RAMPART_AUTH__ACCESS_TOKEN_TTL` sets `auth.access_token_ttl`.
pub const ENV_PREFIX: &str = "RAMPART_";

/// Loads the configuration. `path` is `--config`; without it `./rampart.toml` is used when it
/// exists, else the built-in dev profile. `env` is the process environment (passed in for tests).
pub fn load(path: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Loaded, ConfigError> {
    let (text, origin) = match path {
        Some(p) => (read(p, "--config")?, Origin::File(p.to_path_buf())),
        None if Path::new("rampart.toml").is_file() => {
            let p = PathBuf::from("rampart.toml");
            (read(&p, "rampart.toml")?, Origin::File(p))
        }
        None => (EXAMPLE_TOML.to_owned(), Origin::BuiltInDev),
    };
    let mut table: toml::Table = toml::from_str(&text).map_err(|e| {
        let what = match &origin {
            Origin::File(p) => p.display().to_string(),
            Origin::BuiltInDev => "built-in config".into(),
        };
        ConfigError(format!("{what}: {}", one_line(&e.to_string())))
    })?;
    let inline_secrets = inline_secrets(&table);

    let mut from_env = Vec::new();
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        if path.iter().any(String::is_empty) {
            return Err(ConfigError(format!("{name}: empty key segment")));
        }
        set(&mut table, &path, env_value(&raw)).map_err(|m| ConfigError(format!("{name}: {m}")))?;
        from_env.push((path.join("."), name));
    }

    let mut config: Config = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let key = e.path().to_string();
        let source = from_env
            .iter()
            .find(|(k, _)| key == *k || key.starts_with(&format!("{k}.")))
            .map(|(_, var)| format!(" (from {var})"))
            .unwrap_or_default();
        ConfigError(format!("config key `{key}`{source}: {}", one_line(&e.inner().to_string())))
    })?;
    read_secret_files(&mut config)?;
    Ok(Loaded { config, origin, inline_secrets })
}

fn read(path: &Path, what: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError(format!("{what}: cannot read {}: {e}", path.display())))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An environment value is read as a TOML value when it is one (`10`, `true`, `["a", "b"]`),
/// else as a plain string (`sqlite://x.db`, `production`).
fn env_value(raw: &str) -> toml::Value {
    #[derive(Deserialize)]
    struct Wrapper {
        v: toml::Value,
    }
    toml::from_str::<Wrapper>(&format!("v = {raw}"))
        .map(|w| w.v)
        .unwrap_or_else(|_| toml::Value::String(raw.to_owned()))
}

fn set(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    match path {
        [] => Err("empty key".into()),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [head, rest @ ..] => {
            let entry = table.entry(head.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => set(t, rest, value),
                _ => Err(format!("`{head}` is not a section")),
            }
        }
    }
}

/// Secret-bearing keys present in the file text itself.
fn inline_secrets(table: &toml::Table) -> Vec<String> {
    let mut found = Vec::new();
    for key in ["data_key", "data_key_previous"] {
        if table.contains_key(key) {
            found.push(key.to_owned());
        }
    }
    for (section, key) in [("database", "url"), ("database", "migrate_url"), ("redis", "url"), ("mail", "smtp_url")] {
        let value = table.get(section).and_then(|s| s.get(key)).and_then(|v| v.as_str());
        if value.is_some_and(|v| SecretUrl::new(v).has_password()) {
            found.push(format!("{section}.{key}"));
        }
    }
    found
}

/// `*_file` keys: the secret is the file's content, trimmed.
fn read_secret_files(c: &mut Config) -> Result<(), ConfigError> {
    let read_secret = |key: &str, p: &Path| -> Result<String, ConfigError> {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_owned())
            .map_err(|e| ConfigError(format!("config key `{key}`: cannot read {}: {e}", p.display())))
    };
    if let Some(p) = &c.data_key_file {
        c.data_key = Some(SecretValue::from_string(read_secret("data_key_file", p)?));
    }
    if let Some(p) = &c.data_key_previous_file {
        c.data_key_previous = Some(SecretValue::from_string(read_secret("data_key_previous_file", p)?));
    }
    if let Some(p) = &c.database.url_file {
        c.database.url = SecretUrl::new(&read_secret("database.url_file", p)?);
    }
    if let Some(p) = &c.database.migrate_url_file {
        c.database.migrate_url = Some(SecretUrl::new(&read_secret("database.migrate_url_file", p)?));
    }
    if let Some(p) = &c.redis.url_file {
        c.redis.url = Some(SecretUrl::new(&read_secret("redis.url_file", p)?));
    }
    if let Some(p) = &c.mail.smtp_url_file {
        c.mail.smtp_url = Some(SecretUrl::new(&read_secret("mail.smtp_url_file", p)?));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::config::Profile;

    fn file(text: &str) -> tempfile_path::TempToml {
        tempfile_path::TempToml::new(text)
    }

    /// A tiny temp-file helper so the core crate needs no dev-dependency.
    mod tempfile_path {
        pub struct TempToml(pub std::path::PathBuf);
        impl TempToml {
            pub fn new(text: &str) -> Self {
                let p = std::env::temp_dir().join(format!("rampart-cfg-{}.toml", uuid::Uuid::new_v4()));
                let mut f = std::fs::File::create(&p).unwrap();
                super::Write::write_all(&mut f, text.as_bytes()).unwrap();
                Self(p)
            }
        }
        impl Drop for TempToml {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn built_in_dev_profile_has_orders() {
        let l = load(None, env(&[])).unwrap();
        assert_eq!(l.config.profile, Profile::Dev);
        assert!(l.config.resources.contains_key("orders"));
    }

    #[test]
    fn env_overrides_and_types() {
        let f = file("[server]\nlisten = \"127.0.0.1:0\"\n");
        let l = load(
            Some(&f.0),
            env(&[
                ("RAMPART_PROFILE", "production"),
                ("RAMPART_RATE_LIMIT__LOGIN_PER_IP_PER_MINUTE", "3"),
                ("RAMPART_AUTH__PASSWORD_HASH__MEMORY_KIB", "65536"),
                ("RAMPART_AUTH__ACCESS_TOKEN_TTL", "5m"),
                ("RAMPART_DATABASE__URL", "sqlite://x.db"),
                ("OTHER", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(l.config.profile, Profile::Production);
        assert_eq!(l.config.rate_limit.login_per_ip_per_minute, 3);
        assert_eq!(l.config.auth.password_hash.memory_kib, 65536);
        assert_eq!(l.config.auth.password_hash.iterations, 2);
        assert_eq!(l.config.auth.access_token_ttl.as_secs(), 300);
        assert_eq!(l.config.database.url.expose(), "sqlite://x.db");
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key() {
        let f = file("[server]\nlisten = \"127.0.0.1:0\"\nlisen = 1\n");
        let e = load(Some(&f.0), env(&[])).unwrap_err().to_string();
        assert!(e.contains("server") && e.contains("lisen"), "{e}");
        let f = file("");
        let e = load(Some(&f.0), env(&[("RAMPART_AUTH__NOPE", "1")])).unwrap_err().to_string();
        assert!(e.contains("RAMPART_AUTH__NOPE") && e.contains("nope"), "{e}");
        let e = load(Some(&f.0), env(&[("RAMPART_AUTH__ACCESS_TOKEN_TTL", "soon")])).unwrap_err().to_string();
        assert!(e.contains("auth.access_token_ttl") && e.contains("RAMPART_AUTH__ACCESS_TOKEN_TTL"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn inline_secrets_are_noticed_and_never_printed() {
        let f = file(
            "data_key = \"c2VjcmV0\"\ndata_key_previous = \"b2xkc2VjcmV0\"\n[database]\nurl = \"postgres://app:hunter2@db/x\"\n",
        );
        let l = load(Some(&f.0), env(&[])).unwrap();
        assert_eq!(
            l.inline_secrets,
            vec!["data_key".to_owned(), "data_key_previous".to_owned(), "database.url".to_owned()]
        );
        let dump = format!("{:?}", l.config);
        assert!(!dump.contains("hunter2") && !dump.contains("c2VjcmV0"), "{dump}");
    }

    #[test]
    fn secret_files_are_read() {
        let secret = file("postgres://app:pw@db/x\n");
        let f = file(&format!("[database]\nurl_file = {:?}\n", secret.0.display().to_string()));
        let l = load(Some(&f.0), env(&[])).unwrap();
        assert_eq!(l.config.database.url.expose(), "postgres://app:pw@db/x");
        assert!(l.inline_secrets.is_empty());
    }
}

//! `rampart keys generate` / `rampart keys rotate`, and loading the key ring at start-up.

use std::path::Path;
use std::time::Duration;

use rampart_core::auth::access_tokens::LEEWAY_SECS;
use rampart_core::auth::keys::{self, KeyRing};
use rampart_core::clock::now_ms;
use rampart_core::config::{Profile, Settings};

use crate::Failure;

/// The longest an access token can be valid, leeway included: how long a retired key verifies.
pub fn max_token_life(c: &Settings) -> Duration {
    c.auth.access_token_ttl + Duration::from_secs(LEEWAY_SECS)
}

pub fn load_ring(c: &Settings) -> Result<KeyRing, Failure> {
    KeyRing::load(&c.auth.keys_dir, c.auth.jwt_algorithm, c.auth.keys_reload_interval, max_token_life(c))
        .map_err(|e| Failure::config(format!("config key `auth.keys_dir`: {e}")))
}

/// The key ring for `serve`. The dev profile creates its first key; production never does
/// (`rampart check` refuses that before we get here).
pub fn ring_for_serve(c: &Settings) -> Result<KeyRing, Failure> {
    let ring = load_ring(c)?;
    if !ring.is_empty() {
        return Ok(ring);
    }
    if c.profile == Profile::Production {
        return Err(Failure::config("config key `auth.keys_dir`: no signing key; run `rampart keys generate`"));
    }
    let kid = keys::generate(&c.auth.keys_dir, c.auth.jwt_algorithm).map_err(|e| Failure::runtime(e.to_string()))?;
    tracing::warn!(kid = %kid, dir = %c.auth.keys_dir.display(), "dev profile: generated a signing key");
    load_ring(c)
}

pub fn generate(path: Option<&Path>) -> Result<(), Failure> {
    let c = super::load_checked_allowing_missing_keys(path)?.settings;
    let kid = keys::generate(&c.auth.keys_dir, c.auth.jwt_algorithm).map_err(|e| Failure::runtime(e.to_string()))?;
    println!("wrote signing key {kid} to {}", c.auth.keys_dir.display());
    Ok(())
}

/// A new key; key files whose every token has expired are removed.
pub fn rotate(path: Option<&Path>) -> Result<(), Failure> {
    let c = super::load_checked_allowing_missing_keys(path)?.settings;
    let kid = keys::generate(&c.auth.keys_dir, c.auth.jwt_algorithm).map_err(|e| Failure::runtime(e.to_string()))?;
    let ring = load_ring(&c)?;
    for file in ring.expired_files(&c.auth.keys_dir, now_ms()) {
        match std::fs::remove_file(&file) {
            Ok(()) => println!("removed expired key {}", file.display()),
            Err(e) => eprintln!("rampart: cannot remove {}: {e}", file.display()),
        }
    }
    println!(
        "wrote signing key {kid}; it signs after {}s, and the previous key verifies until its last token expires",
        c.auth.keys_reload_interval.as_secs()
    );
    Ok(())
}

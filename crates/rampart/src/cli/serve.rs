//! `rampart serve`.

use std::path::Path;
use std::time::Duration;

use rampart_core::auth::hasher::Hasher;
use rampart_core::auth::keys::KeyRing;
use rampart_core::auth::revocation::Revocations;
use rampart_core::auth::tokens::{TokenService, algorithm};
use rampart_core::clock::{duration_ms, now_ms};
use rampart_core::config::{Origin, Profile};
use tokio::net::TcpListener;

use crate::Failure;

pub async fn run(path: Option<&Path>) -> Result<(), Failure> {
    let (loaded, warnings) = super::load_checked(path)?;
    crate::telemetry::init(&loaded.config.log).map_err(Failure::config)?;
    let c = &loaded.config;
    if loaded.origin == Origin::BuiltInDev || c.profile == Profile::Dev {
        tracing::warn!(
            database = %c.database.url.redacted(),
            "DEV PROFILE: not for production. Relaxed checks, local SQLite; set profile = \"production\" to enforce every safety check"
        );
    }
    for w in &warnings {
        tracing::warn!(key = %w.key, fix = %w.fix, "config: {}", w.message);
    }

    let resources = super::registry(c)?;
    let store = super::open_store(c, &resources).await?;
    let workers = c.auth.hash_workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
    let hasher = Hasher::start(c.auth.password_hash.params(), workers, c.auth.hash_queue)
        .map_err(|e| Failure::runtime(format!("password hasher: {e}")))?;
    if !hasher.priority_lowered() {
        tracing::warn!(
            "hashing threads run at normal priority (the OS refused to lower it): a login flood competes with every request"
        );
    }
    let listen = c.server.listen;
    let header_timeout = c.limits.header_read_timeout;
    let listener =
        TcpListener::bind(listen).await.map_err(|e| Failure::runtime(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener.local_addr().map_err(|e| Failure::runtime(e.to_string()))?;

    let ring = super::keys::ring_for_serve(c)?;
    let issuer = rampart_core::config::check::origin_of(&c.server.public_url).map_err(Failure::config)?;
    let audience = c.auth.jwt_audience.clone().unwrap_or_else(|| issuer.clone());
    let tokens = TokenService::new(ring, algorithm(c.auth.jwt_algorithm), issuer, audience, c.auth.access_token_ttl);
    let revocations = rebuild_revocations(&store, c).await?;
    let keys_watch =
        (c.auth.keys_dir.clone(), c.auth.jwt_algorithm, c.auth.keys_reload_interval, super::keys::max_token_life(c));

    let services = rampart_http::Services { resources, store: store.clone(), hasher, tokens, revocations };
    let state = rampart_http::build_state(loaded.config, services);
    let app = rampart_http::app(state.clone());
    spawn_housekeeping(store.clone());
    spawn_key_reload(state, keys_watch);
    tracing::info!(addr = %addr, hash_workers = workers, "listening");
    // On a worker thread: a future polled by `block_on` runs on the main thread, outside the
    // worker pool, and the accept loop would compete with the workers instead of being
    // scheduled among them.
    tokio::spawn(rampart_http::serve(listener, app, header_timeout, shutdown_signal()))
        .await
        .map_err(|e| Failure::runtime(format!("server task: {e}")))?
        .map_err(|e| Failure::runtime(format!("server: {e}")))?;
    store.close().await;
    Ok(())
}

/// Logins revoked recently enough that some of their access tokens may still be alive.
async fn rebuild_revocations(
    store: &rampart_store::Store,
    c: &rampart_core::config::Config,
) -> Result<Revocations, Failure> {
    let life = duration_ms(super::keys::max_token_life(c));
    let revoked = store.revoked_since(now_ms() - life).await.map_err(|e| Failure::runtime(format!("database: {e}")))?;
    let set = Revocations::memory();
    for (sid, at) in revoked {
        set.revoke(&sid, at + life).await;
    }
    Ok(set)
}

/// Re-reads the keys directory every `auth.keys_reload_interval`, so `rampart keys rotate` takes
/// effect without a restart (and on every instance).
fn spawn_key_reload(
    state: rampart_http::AppState,
    (dir, alg, every, life): (std::path::PathBuf, rampart_core::config::JwtAlgorithm, Duration, Duration),
) {
    tokio::spawn(async move {
        let mut seen = KeyRing::fingerprint(&dir);
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let now = KeyRing::fingerprint(&dir);
            if now == seen {
                continue;
            }
            match KeyRing::load(&dir, alg, every, life) {
                Ok(ring) if !ring.is_empty() => {
                    state.tokens.replace_ring(ring);
                    tracing::info!(keys = now.len(), "signing keys reloaded");
                    seen = now;
                }
                Ok(_) => tracing::error!("keys directory is empty; keeping the loaded keys"),
                Err(e) => tracing::error!(error = %e, "keys reload failed; keeping the loaded keys"),
            }
        }
    });
}

/// Hourly: drop sessions that can no longer be used.
fn spawn_housekeeping(store: rampart_store::Store) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tick.tick().await;
            match store.purge_sessions(now_ms()).await {
                Ok(n) if n > 0 => tracing::info!(sessions = n, "purged dead sessions"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "session purge failed"),
            }
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

//! `rampart serve`.

use std::path::Path;
use std::time::Duration;

use rampart_core::auth::hasher::Hasher;
use rampart_core::clock::now_ms;
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

    let store = super::open_store(c).await?;
    let workers = c.auth.hash_workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
    let hasher = Hasher::start(c.auth.password_hash.params(), workers, c.auth.hash_queue)
        .map_err(|e| Failure::runtime(format!("password hasher: {e}")))?;
    let listen = c.server.listen;
    let header_timeout = c.limits.header_read_timeout;
    let listener =
        TcpListener::bind(listen).await.map_err(|e| Failure::runtime(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener.local_addr().map_err(|e| Failure::runtime(e.to_string()))?;

    let state = rampart_http::build_state(loaded.config, store.clone(), hasher);
    let app = rampart_http::app(state);
    spawn_housekeeping(store.clone());
    tracing::info!(addr = %addr, hash_workers = workers, "listening");
    rampart_http::serve(listener, app, header_timeout, shutdown_signal())
        .await
        .map_err(|e| Failure::runtime(format!("server: {e}")))?;
    store.close().await;
    Ok(())
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

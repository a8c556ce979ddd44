//! `rampart serve`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rampart_core::auth::access_tokens::{TokenService, algorithm};
use rampart_core::auth::data_key::DataKey;
use rampart_core::auth::hasher::Hasher;
use rampart_core::auth::keys::KeyRing;
use rampart_core::clock::{duration_ms, now_ms};
use rampart_core::config::{Accepted, Origin, Profile, Settings};
use rampart_http::tls::{Certificates, TlsError};
use rampart_shared::SharedState;
use rampart_shared::limit::{Limiter, Quotas};
use rampart_shared::revocation::Revocations;
use tokio::net::TcpListener;

use crate::Failure;

pub async fn run(path: Option<&Path>) -> Result<(), Failure> {
    let Accepted { settings, warnings, origin } = super::load_checked(path)?;
    // Held to the end: dropping it writes out the queued log lines (shutdown and errors alike).
    let logging = crate::telemetry::init(&settings.log).map_err(Failure::config)?;
    let c = &settings;
    if origin == Origin::BuiltInDev || c.profile == Profile::Dev {
        tracing::warn!(
            database = %c.database.url.redacted(),
            "DEV PROFILE: not for production. Relaxed checks; set profile = \"production\" to enforce every safety check"
        );
    }
    for w in &warnings {
        tracing::warn!(key = %w.key, fix = %w.fix, "config: {}", w.message);
    }

    // Certificate problems are configuration errors, said before anything listens.
    let tls = match &c.server.tls {
        Some(files) => {
            let refused = |e: TlsError| Failure::config(format!("config key `{}`: {e}", e.key()));
            let certs = Certificates::load(&files.cert, &files.key).map_err(refused)?;
            let acceptor = rampart_http::tls::acceptor(Arc::clone(&certs)).map_err(refused)?;
            Some((certs, acceptor))
        }
        None => None,
    };
    // Held until the server exits: `rampart restore` refuses to replace the database meanwhile.
    let _database_lock = super::backup::hold_database(c)?;
    let store = super::open_store(c).await?;
    if c.profile == Profile::Production && matches!(store.runtime_role_owns_schema().await, Ok(Some(true))) {
        return Err(Failure::config(
            "config key `database.url`: the runtime role owns the schema; run as a role that owns nothing and set database.migrate_url to the owner",
        ));
    }
    let workers = c.auth.hash_workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
    let hasher = Hasher::start(c.auth.password_hash.params(), workers, c.auth.hash_queue)
        .map_err(|e| Failure::runtime(format!("password hasher: {e}")))?;
    if !hasher.priority_lowered() {
        tracing::warn!(
            "hashing threads run at normal priority (the OS refused to lower it): a login flood competes with every request"
        );
    }
    spawn_hash_wrapping(store.clone(), hasher.clone(), c.auth.password_hash.params());
    let listen = c.server.listen;
    let (c_metrics_listen, profile) = (c.server.metrics_listen, c.profile);
    let header_timeout = c.limits.header_read_timeout;
    let listener =
        TcpListener::bind(listen).await.map_err(|e| Failure::runtime(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener.local_addr().map_err(|e| Failure::runtime(e.to_string()))?;

    let ring = super::keys::ring_for_serve(c)?;
    let issuer = c.server.public_origin.to_string();
    let audience = c.jwt_audience().to_owned();
    let tokens = TokenService::new(ring, algorithm(c.auth.jwt_algorithm), issuer, audience, c.auth.access_token_ttl);
    let (limiter, revocations) = shared_state(c).await?;
    let rebuilt_at = now_ms();
    rebuild_revocations(&store, c, &revocations).await?;
    let keys_watch =
        (c.auth.keys_dir.clone(), c.auth.jwt_algorithm, c.auth.keys_reload_interval, super::keys::max_token_life(c));

    let data_key = data_key(c)?;
    let mailer = mailer(c, &store, Arc::clone(&data_key))?;
    let services =
        rampart_http::Services { store: store.clone(), hasher, tokens, revocations, data_key, mailer, limiter };
    let state = rampart_http::build_state(settings, services).map_err(Failure::config)?;
    let app = rampart_http::app(state.clone());
    spawn_metrics_listener(c_metrics_listen, header_timeout, profile, logging.dropped_lines()).await?;
    spawn_redirect_listener(&state.settings, header_timeout).await?;
    spawn_housekeeping(store.clone());
    crate::revocation_feed::spawn(state.clone(), rebuilt_at);
    spawn_key_reload(state.clone(), keys_watch);
    // `event` is the field tools wait on (the message text is for people and may change).
    let acceptor = tls.map(|(certs, acceptor)| {
        rampart_http::tls::spawn_reload(certs);
        acceptor
    });
    tracing::info!(event = "listening", addr = %addr, tls = acceptor.is_some(), hash_workers = workers, "listening");
    // On a worker thread: a future polled by `block_on` runs on the main thread, outside the
    // worker pool, and the accept loop would compete with the workers instead of being
    // scheduled among them.
    tokio::spawn(rampart_http::serve(listener, app, header_timeout, acceptor, shutdown_signal()))
        .await
        .map_err(|e| Failure::runtime(format!("server task: {e}")))?
        .map_err(|e| Failure::runtime(format!("server: {e}")))?;
    // Repeated denials counted since their first row was written go to the audit log now.
    state.denials.flush(Duration::from_secs(5)).await;
    store.close().await;
    drop(logging);
    Ok(())
}

/// Prometheus metrics on their own listener (`server.metrics_listen`), never on the public one.
/// The recorder is installed whatever the listener does, so counting costs the same either way.
/// A dev server whose metrics port is taken logs it and goes on without metrics; production
/// treats it as a start-up failure (the operator asked for metrics there).
async fn spawn_metrics_listener(
    listen: Option<std::net::SocketAddr>,
    header_timeout: Duration,
    profile: Profile,
    log_lines_dropped: impl Fn() -> u64 + Send + Sync + 'static,
) -> Result<(), Failure> {
    let handle = rampart_http::metrics::install().map_err(Failure::runtime)?;
    let Some(addr) = listen else { return Ok(()) };
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) if profile == Profile::Production => {
            return Err(Failure::runtime(format!("cannot listen on {addr} (server.metrics_listen): {e}")));
        }
        Err(e) => {
            tracing::warn!(addr = %addr, error = %e, "metrics listener could not bind: no /metrics");
            return Ok(());
        }
    };
    let bound = listener.local_addr().map_err(|e| Failure::runtime(e.to_string()))?;
    tracing::info!(event = "metrics_listening", addr = %bound, "metrics listening");
    let app = rampart_http::metrics::router(handle, log_lines_dropped);
    tokio::spawn(rampart_http::serve(listener, app, header_timeout, None, std::future::pending()));
    Ok(())
}

/// `server.http_redirect_listen`: plain HTTP that only redirects to the https public URL. Failing
/// to bind it is a start-up failure: the operator asked for it (port 80 is often what browsers
/// try first).
async fn spawn_redirect_listener(c: &Settings, header_timeout: Duration) -> Result<(), Failure> {
    let Some(addr) = c.server.http_redirect_listen else { return Ok(()) };
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| Failure::runtime(format!("cannot listen on {addr} (server.http_redirect_listen): {e}")))?;
    let bound = listener.local_addr().map_err(|e| Failure::runtime(e.to_string()))?;
    tracing::info!(event = "redirect_listening", addr = %bound, "redirecting plain HTTP to https");
    let app = rampart_http::redirect::app(&c.server.public_origin);
    tokio::spawn(rampart_http::serve(listener, app, header_timeout, None, std::future::pending()));
    Ok(())
}

/// The data-encryption key: configured (`RAMPART_DATA_KEY` or `data_key_file`), or, in the dev
/// profile only, read from or generated into `rampart-data/data.key` (mode 0600), like the dev
/// signing key. Production refuses to start without one (`rampart check` says so first).
pub(crate) fn data_key(c: &Settings) -> Result<Arc<DataKey>, Failure> {
    let bad = |e: rampart_core::auth::data_key::DataKeyError| Failure::config(format!("config key `data_key`: {e}"));
    if let Some(k) = &c.data_key {
        return Ok(Arc::clone(k));
    }
    if c.profile == Profile::Production {
        return Err(Failure::config(
            "config key `data_key`: not set; set RAMPART_DATA_KEY (`openssl rand -base64 32`)",
        ));
    }
    let path = c.dev_data_key_path();
    let io = |e: std::io::Error| Failure::runtime(format!("{}: {e}", path.display()));
    if !path.exists() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text = DataKey::generate_base64().map_err(bad)?;
        write_private(&path, text.as_bytes()).map_err(io)?;
        tracing::warn!(path = %path.display(), "dev profile: generated a data key");
    }
    DataKey::from_base64(&std::fs::read_to_string(&path).map_err(io)?).map(Arc::new).map_err(bad)
}

/// Creates a file readable by its owner only (0600), failing if it exists.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

/// SMTP when `mail.smtp_url` is set; in the dev profile without it, every message is logged as a
/// `dev_mail` event; otherwise mail is off (and queued messages are dropped with a warning). The
/// outbox worker of this instance starts here.
fn mailer(c: &Settings, store: &rampart_store::Store, key: Arc<DataKey>) -> Result<rampart_mail::Mailer, Failure> {
    let policy = rampart_mail::Policy { per_minute: c.mail.max_per_minute, give_up_after: c.mail.give_up_after };
    let settings = match (&c.mail.smtp_url, c.profile) {
        (Some(url), _) => {
            rampart_mail::Settings::Smtp { url: url.expose(), from: c.mail.from.as_deref().unwrap_or_default() }
        }
        (None, Profile::Dev) => rampart_mail::Settings::DevLog,
        (None, Profile::Production) => rampart_mail::Settings::Off,
    };
    // The error names the problem, never the URL (it may hold the SMTP password).
    rampart_mail::Mailer::start(settings, store.clone(), policy, key)
        .map_err(|e| Failure::config(format!("config key `mail`: {e}")))
}

/// Rate limits and the revocation set: in this process, or in Redis when `redis.url` is set, so
/// that every instance shares them. An unreachable Redis at start-up is an error (a typo in the
/// URL must not silently give per-instance limits); once running, an outage falls back to local
/// state (see `rampart_shared`).
async fn shared_state(c: &Settings) -> Result<(Limiter, Revocations), Failure> {
    let quotas = Quotas::from_config(&c.rate_limit);
    let Some(url) = &c.redis.url else {
        let SharedState { limiter, revocations } = SharedState::memory(quotas);
        return Ok((limiter, revocations));
    };
    let SharedState { limiter, revocations } =
        SharedState::redis(url, &c.redis.key_prefix, c.redis.tls_ca_file.as_deref(), quotas).await.map_err(
            |e| match e {
                rampart_shared::ConnectError::CaFile { .. } => Failure::config(e.to_string()),
                _ => Failure::runtime(e.to_string()),
            },
        )?;
    tracing::info!(redis = %url.redacted(), "rate limits and revocations are shared through redis");
    Ok((limiter, revocations))
}

/// Logins revoked recently enough that some of their access tokens may still be alive, put (back)
/// into the set: the database is the record; a Redis that restarted empty gets them again.
async fn rebuild_revocations(store: &rampart_store::Store, c: &Settings, set: &Revocations) -> Result<(), Failure> {
    let life = duration_ms(super::keys::max_token_life(c));
    let revoked = store.revoked_since(now_ms() - life).await.map_err(|e| Failure::runtime(format!("database: {e}")))?;
    for (sid, at) in revoked {
        set.revoke(&sid, at + life).await;
    }
    Ok(())
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

/// Wraps every stored password hash that is cheaper than the current parameters, so that no
/// dormant account verifies faster than an unknown email (see
/// `rampart_core::auth::wrapped_hash`). In the background, one hash at a time (one hashing
/// worker at most, so logins keep the others); each write is guarded by the old value, so a
/// password changed meanwhile, or another instance doing the same, is never overwritten.
fn spawn_hash_wrapping(store: rampart_store::Store, hasher: Hasher, params: rampart_core::auth::hasher::HashParams) {
    use rampart_core::auth::hasher::{HashError, needs_wrap};
    tokio::spawn(async move {
        let (mut after, mut wrapped) = (String::new(), 0u64);
        loop {
            let batch = match store.password_hashes_after(&after, 500).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "password hash wrapping stopped; it resumes at the next start");
                    return;
                }
            };
            let Some((last, _)) = batch.last() else { break };
            after = last.clone();
            for (id, stored) in batch.into_iter().filter(|(_, h)| needs_wrap(h, params)) {
                let new = loop {
                    match hasher.wrap(stored.clone()).await {
                        Err(HashError::Busy) => tokio::time::sleep(Duration::from_millis(100)).await,
                        other => break other,
                    }
                };
                match new {
                    Ok(new) => match store.rehash_password(&id, &stored, &new, now_ms()).await {
                        Ok(()) => wrapped += 1,
                        Err(e) => tracing::warn!(user_id = %id, error = %e, "could not store a wrapped password hash"),
                    },
                    Err(e) => tracing::warn!(user_id = %id, error = %e, "could not wrap a password hash"),
                }
            }
        }
        tracing::info!(wrapped, "password hashes checked against the current parameters");
    });
}

/// Finished outbox rows (sent, given up, dropped; their bodies already erased) are kept this long,
/// for an operator looking into a complaint, then deleted.
const FINISHED_MAIL_KEPT_MS: i64 = 7 * 24 * 3600 * 1000;

/// Hourly: drop sessions, pending second-factor logins, mailed tokens, unknown-email failure
/// counts that can no longer be used, and old finished outbox rows.
fn spawn_housekeeping(store: rampart_store::Store) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tick.tick().await;
            let now = now_ms();
            let purged = [
                ("sessions", store.purge_sessions(now).await),
                ("mfa_challenges", store.purge_mfa_challenges(now).await),
                ("passkey_challenges", store.purge_passkey_challenges(now).await),
                ("account_tokens", store.purge_account_tokens(now).await),
                ("unknown_login_failures", store.purge_unknown_login_failures(now).await),
                ("mail_outbox", store.purge_finished_mails(now - FINISHED_MAIL_KEPT_MS).await),
            ];
            for (table, result) in purged {
                match result {
                    Ok(n) if n > 0 => tracing::info!(table, rows = n, "purged dead rows"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(table, error = %e, "purge failed"),
                }
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

//! Shared application state, built once at start-up.

use std::sync::Arc;

use rampart_core::auth::access_tokens::TokenService;
use rampart_core::auth::data_key::DataKey;
use rampart_core::auth::hasher::Hasher;
use rampart_core::config::Settings;
use rampart_shared::revocation::Revocations;
use rampart_store::Store;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    /// The checked configuration, in types: origins, proxies, roles, the compiled resources.
    pub settings: Settings,
    pub store: Store,
    pub hasher: Hasher,
    pub tokens: TokenService,
    pub revocations: Revocations,
    /// Seals TOTP secrets at rest: the configured key, or in the dev profile the generated one.
    pub data_key: Arc<DataKey>,
    /// Seals list cursors, with a subkey of the data key (so every instance opens every other's).
    pub cursors: rampart_core::cursor::CursorSeal,
    /// `authz_denied` events, coalesced and written in the background.
    pub denials: crate::denial_audit::DenialAudit,
    /// Outgoing mail, queued off the request path.
    pub mailer: rampart_mail::Mailer,
    /// Rate limits (per IP, per account, per user, global), from `[rate_limit]`: in memory, or in
    /// Redis when `redis.url` is set.
    pub limiter: rampart_shared::limit::Limiter,
    /// `/openapi.json`, rendered once.
    pub openapi: bytes::Bytes,
    /// The WebAuthn relying party (our origin and rp id) for the passkey ceremonies.
    pub passkeys: crate::flows::passkeys::RelyingParty,
    /// The last `/readyz` verdict, served for a second.
    pub readiness: crate::readiness::ReadinessCache,
}

impl Inner {
    /// Ends a login of `user_id`: marks it revoked in the database, and puts its id in the
    /// revocation set so that its access tokens are refused at once, not at their `exp`. Both
    /// halves, always together. False when there was no such live login.
    pub async fn end_login(&self, sid: &str, user_id: &str) -> Result<bool, rampart_store::StoreError> {
        let now = rampart_core::clock::now_ms();
        let ended = self.store.revoke_session(sid, user_id, now).await?;
        // Only a login this user really ended goes into the set: the set is keyed by `sid` alone,
        // so adding an id the scoped UPDATE did not match would let one user kill another user's
        // tokens by naming their `sid` (e.g. in `DELETE /auth/sessions/{id}`). A login that was
        // already revoked is in the set since then (or rebuilt into it at start-up).
        if ended {
            self.revocations.revoke(sid, self.revocation_horizon(now)).await;
        }
        Ok(ended)
    }

    /// Puts token logins that a store write just revoked into the revocation set, so that their
    /// access tokens die now rather than at their `exp`. (Cookie sessions are read from the
    /// database on every request and need nothing more.)
    pub async fn revoke_token_logins(&self, sids: &[String], now: rampart_core::clock::Millis) {
        for sid in sids {
            self.revocations.revoke(sid, self.revocation_horizon(now)).await;
        }
    }

    /// Until when a revocation of a login must be remembered: the life of its last access token.
    pub fn revocation_horizon(&self, from: rampart_core::clock::Millis) -> rampart_core::clock::Millis {
        from + rampart_core::clock::duration_ms(self.tokens.ttl())
            + 1000 * rampart_core::auth::access_tokens::LEEWAY_SECS as i64
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// What the state is assembled from, besides the settings.
pub struct Services {
    pub store: Store,
    pub hasher: Hasher,
    pub tokens: TokenService,
    pub revocations: Revocations,
    pub data_key: Arc<DataKey>,
    pub mailer: rampart_mail::Mailer,
    /// In memory, or in Redis when `redis.url` is set.
    pub limiter: rampart_shared::limit::Limiter,
}

/// Assembles the state from the checked settings.
pub fn build_state(settings: Settings, services: Services) -> Result<AppState, String> {
    let Services { store, hasher, tokens, revocations, data_key, mailer, limiter } = services;
    let openapi = bytes::Bytes::from(crate::openapi::document(&settings).to_string());
    let cursors = rampart_core::cursor::CursorSeal::new(data_key.subkey(rampart_core::cursor::KEY_LABEL));
    let denials = crate::denial_audit::DenialAudit::start(store.clone(), settings.limits.denial_audit_window);
    let passkeys = crate::flows::passkeys::RelyingParty::new(&settings)?;
    Ok(AppState(Arc::new(Inner {
        settings,
        store,
        hasher,
        tokens,
        revocations,
        data_key,
        cursors,
        denials,
        mailer,
        limiter,
        openapi,
        passkeys,
        readiness: crate::readiness::ReadinessCache::default(),
    })))
}

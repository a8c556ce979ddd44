//! The lockout, as the flows see it: one attempt at a secret, reserved before the secret is
//! checked (see `rampart_store::attempts` for why), and ended by what the check found.

use rampart_core::clock::{Millis, duration_ms, now_ms};
use rampart_store::{AttemptKey, AuditEvent, AuditOutcome, LockRule, Reservation, SignInMethod, UserRow};

use super::{AuthError, SignedIn};
use crate::AppState;
use crate::extract::RequestContext;
use crate::routes::audit_trail::{Audit, record};

/// One attempt at a secret of an account (or of an email that has none), reserved before the
/// secret is checked: see `rampart_store::attempts` for why. Exactly one of [`Attempt::failed`],
/// [`Attempt::release`] and [`Attempt::proven`] ends it; dropped without one, it stays
/// counted as a failure, which is the safe side.
#[must_use]
pub struct Attempt {
    /// The account's id and address; `None` for an email that has no account.
    account: Option<(String, String)>,
    /// The normalized email the attempt names.
    target: String,
    /// The lock this attempt set by reaching the threshold: a right secret lifts it again.
    lock: Option<Millis>,
}

impl Attempt {
    /// Reserves one attempt for `user` (or the unknown `email`), or answers 423 when locked,
    /// without checking anything: a locked account's secret is not even looked at.
    pub async fn reserve(
        state: &AppState,
        ctx: &RequestContext,
        user: Option<&UserRow>,
        email: &str,
    ) -> Result<Self, AuthError> {
        let rl = &state.settings.rate_limit;
        let now = now_ms();
        let rule =
            LockRule { threshold: rl.lockout_after_failures, now, lock_until: now + duration_ms(rl.lockout_duration) };
        let account = user.map(|u| (u.id.clone(), u.email.clone()));
        let mut attempt = Self { account, target: email.to_owned(), lock: None };
        match state.store.reserve_attempt(attempt.key(), rule).await? {
            Reservation::Granted { lock } => {
                attempt.lock = lock;
                Ok(attempt)
            }
            Reservation::Gone => Err(AuthError::InvalidCredentials),
            Reservation::Locked(until) => {
                let event = Audit {
                    action: AuditEvent::LoginFailure,
                    actor_id: user.map(|u| u.id.as_str()),
                    target: Some(email),
                    outcome: AuditOutcome::Denied,
                };
                record(state, ctx, event).await;
                Err(locked(state, until, now))
            }
        }
    }

    fn key(&self) -> AttemptKey<'_> {
        match &self.account {
            Some((id, _)) => AttemptKey::User(id),
            None => AttemptKey::Unknown(&self.target),
        }
    }

    /// The secret was wrong: the attempt stays counted. When it was the one that set the lock:
    /// audits `lockout` and tells the owner by mail.
    pub async fn failed(self, state: &AppState, ctx: &RequestContext) {
        if self.lock.is_none() {
            return;
        }
        // The owner is not logged out: a lock stops new logins, not existing ones, so an
        // attacker cannot end someone's sessions just by failing logins in their name.
        let actor = self.account.as_ref().map(|(id, _)| id.as_str());
        tracing::warn!(user_id = actor.unwrap_or("-"), "login locked after failed attempts");
        let event = Audit {
            action: AuditEvent::Lockout,
            actor_id: actor,
            target: Some(&self.target),
            outcome: AuditOutcome::Denied,
        };
        record(state, ctx, event).await;
        if let Some((_, address)) = &self.account {
            // Queued after the fact: the lock was committed by the reservation, before the
            // secret was checked, and is only a lockout once the secret proved wrong.
            let duration = state.settings.rate_limit.lockout_duration;
            let notice = rampart_mail::templates::account_locked(address, duration);
            super::mailing::queue_notice(state, actor.unwrap_or("-"), notice).await;
        }
    }

    /// The secret was right but no login completes here (a factor or the verification is still
    /// missing, or a signed-in user re-authenticated), or it could not be checked: the
    /// reservation is given back, without resetting the count.
    pub async fn release(self, state: &AppState) {
        if let Err(e) = state.store.release_attempt(self.key(), self.lock).await {
            tracing::error!(error = %e, "could not give back a login attempt");
        }
    }

    /// Every factor is proven, by `method`: the login may open. Its failure count is reset when
    /// it opens (`flows::sessions`), in the same transaction as the new login and its audit
    /// event, by a statement that re-checks the lock, so a lock set by a concurrent attempt (or an
    /// admin) meanwhile still wins.
    pub fn proven(self, user: UserRow, method: SignInMethod) -> SignedIn {
        SignedIn::new(user, method, self.lock)
    }
}

/// 423 with the lock's remaining time in whole seconds, rounded up, and never more than
/// `lockout_duration`: an admin's indefinite lock would otherwise answer a figure (centuries)
/// that no automatic lock, and so no unknown email, can produce.
pub(crate) fn locked(state: &AppState, until: Millis, now: Millis) -> AuthError {
    let cap = u64::try_from(duration_ms(state.settings.rate_limit.lockout_duration)).unwrap_or(u64::MAX);
    let ms = u64::try_from(until.saturating_sub(now)).unwrap_or(0).min(cap);
    AuthError::Locked { retry_after_secs: ms.div_ceil(1000).max(1) }
}

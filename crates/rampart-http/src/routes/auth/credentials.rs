//! The credential check shared by `POST /auth/login` and the token password grant: one code path,
//! one hashing pool, one uniform failure, one set of limits.
//!
//! In order, each step before any work the next one costs:
//!
//! 1. the body's email and password are well-formed (no work);
//! 2. the login budgets, per client IP, per account and deployment-wide ([`login_gate`]): 429
//!    before any database read or hash;
//! 3. the hashing pool has room (else 503 at once, before the database read);
//! 4. the attempt is reserved ([`Attempt::reserve`]): one guarded statement that refuses it (423,
//!    without hashing, so a correct password learns nothing while locked) or counts it as a
//!    failure before the hash is computed, for accounts and unknown emails alike;
//! 5. the hash; a right password gives the reservation back or completes the login;
//! 6. ([`first_factor`]) email verification when required, then the second factor when the
//!    account has one (401 `mfa-required` with an `mfa_token`); only a complete login resets the
//!    failure count, so that knowing the password does not reset the lockout of code guesses.

use rampart_core::auth::hasher::Verdict;
use rampart_core::clock::{Millis, duration_ms, now_ms};
use rampart_core::email::Email;
use rampart_core::limit::Bucket;
use rampart_core::password::check_length;
use rampart_store::{AttemptKey, AuditEvent, AuditOutcome, LockRule, Reservation, UserRow};
use secrecy::SecretString;

use super::super::audit::{Audit, record};
use crate::error::FieldError;
use crate::extract::RequestContext;
use crate::middleware::LoginIpSpent;
use crate::{ApiError, AppState};

/// The one answer for an unknown email and a wrong password: same status, same bytes.
pub const INVALID_CREDENTIALS: ApiError = ApiError::Unauthorized("invalid email or password");

/// Spends one login attempt from the client's IP, the account's and the deployment's budgets,
/// in that order: a client over its own budget is refused before it can spend anyone else's.
/// Every login-like route (login, token password grant, MFA verify, forgot-password,
/// registration) calls this first; they share the one per-IP bucket. `account` is the normalized
/// email, known or not, so a refusal says nothing about whether the account exists; `None` for
/// registration, which spends only the per-IP and global budgets.
/// `ip_spent`: the rate-limit layer already spent the per-IP budget for this request (it does
/// for `POST /auth/login`, before reading the body).
pub async fn login_gate(
    state: &AppState,
    ctx: &RequestContext,
    account: Option<&str>,
    ip_spent: Option<LoginIpSpent>,
) -> Result<(), ApiError> {
    if ip_spent.is_none() {
        state.limiter.check(Bucket::LoginIp(ctx.ip)).await.map_err(ApiError::RateLimited)?;
    }
    if let Some(account) = account {
        state.limiter.check(Bucket::LoginAccount(account)).await.map_err(ApiError::RateLimited)?;
    }
    state.limiter.check(Bucket::LoginGlobal).await.map_err(ApiError::RateLimited)?;
    Ok(())
}

/// Which flow a login started as, and so what a completed second factor answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// `POST /auth/login`: a cookie session.
    Cookie,
    /// `POST /auth/token` with the password grant: access and refresh tokens.
    Token,
}

impl Flow {
    pub fn as_str(self) -> &'static str {
        match self {
            Flow::Cookie => "cookie",
            Flow::Token => "token",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "cookie" => Some(Flow::Cookie),
            "token" => Some(Flow::Token),
            _ => None,
        }
    }
}

/// The password step of a login, and what must follow it: the user when the login is complete;
/// 403 `email-not-verified` (with a verification mail, at most one per account every ten
/// minutes) when verification is required and missing; 401 `mfa-required` with a new challenge
/// when the account has a second factor.
pub async fn first_factor(
    state: &AppState,
    ctx: &RequestContext,
    email: &str,
    password: SecretString,
    ip_spent: Option<LoginIpSpent>,
    flow: Flow,
) -> Result<UserRow, ApiError> {
    let (user, attempt) = authenticate(state, ctx, email, password, ip_spent).await?;
    if state.config.require_email_verification() && !user.email_verified {
        // The password was right: the attempt is no failure, but no login either.
        attempt.release(state).await;
        // Only someone who knows the password learns this, and the link goes to the owner's
        // mailbox, throttled per account.
        super::mailing::send_verification(state, &user);
        return Err(ApiError::EmailNotVerified);
    }
    if user.mfa_enabled {
        attempt.release(state).await;
        let (token, hash) = rampart_core::token::generate();
        let now = now_ms();
        let expires = now + duration_ms(state.config.auth.mfa_challenge_ttl);
        state.store.insert_mfa_challenge(hash.as_str(), &user.id, flow.as_str(), now, expires).await?;
        return Err(ApiError::MfaRequired(token));
    }
    attempt.complete(state, &user).await?;
    Ok(user)
}

/// One attempt at a secret of an account (or of an email that has none), reserved before the
/// secret is checked: see `rampart_store::attempts` for why. Exactly one of [`Attempt::failed`],
/// [`Attempt::release`] and [`Attempt::complete`] ends it; dropped without one, it stays
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
    ) -> Result<Self, ApiError> {
        let rl = &state.config.rate_limit;
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
            Reservation::Gone => Err(INVALID_CREDENTIALS),
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
            let duration = state.config.rate_limit.lockout_duration;
            state.mailer.send(rampart_mail::templates::account_locked(address, duration));
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

    /// Every factor is proven: resets the failure count, in the same statement that re-checks the
    /// lock, so a lock set by a concurrent attempt (or an admin) meanwhile still wins.
    pub async fn complete(self, state: &AppState, user: &UserRow) -> Result<(), ApiError> {
        let now = now_ms();
        match state.store.record_login_success(&user.id, now, self.lock).await? {
            None => Err(INVALID_CREDENTIALS), // deleted meanwhile
            Some(Some(until)) if until > now => Err(locked(state, until, now)),
            Some(_) => Ok(()),
        }
    }
}

/// Checks an email and password. Failures are audited and answered uniformly.
async fn authenticate(
    state: &AppState,
    ctx: &RequestContext,
    email: &str,
    password: SecretString,
    ip_spent: Option<LoginIpSpent>,
) -> Result<(UserRow, Attempt), ApiError> {
    let email = Email::parse(email).map_err(|e| ApiError::Validation(vec![FieldError::new("email", e.to_string())]))?;
    check_length(&password).map_err(|e| ApiError::Validation(vec![FieldError::new("password", e.to_string())]))?;
    login_gate(state, ctx, Some(email.normalized()), ip_spent).await?;

    // Every hashing slot is taken: answer 503 now, before the database read that would only
    // lead up to a refused hash. Under a login flood this is most attempts.
    if state.hasher.saturated() {
        return Err(rampart_core::auth::hasher::HashError::Busy.into());
    }
    let user = state.store.user_by_email(email.normalized()).await?;
    let attempt = Attempt::reserve(state, ctx, user.as_ref(), email.normalized()).await?;
    // An unknown email is checked against a dummy hash: the same Argon2 work as a wrong password,
    // so response time does not reveal whether an account exists.
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let verdict = match state.hasher.verify(password.clone(), stored).await {
        Ok(v) => v,
        Err(e) => {
            attempt.release(state).await;
            return Err(e.into());
        }
    };
    let rehash = match (&user, verdict) {
        (Some(_), Verdict::Match { rehash }) => rehash,
        (found, _) => {
            let event = Audit {
                action: AuditEvent::LoginFailure,
                actor_id: found.as_ref().map(|u| u.id.as_str()),
                target: Some(email.normalized()),
                outcome: AuditOutcome::Failure,
            };
            record(state, ctx, event).await;
            attempt.failed(state, ctx).await;
            return Err(INVALID_CREDENTIALS);
        }
    };
    let Some(user) = user else { return Err(INVALID_CREDENTIALS) };
    if rehash {
        // Parameters were raised since this hash was made: store a fresh one. Off the response
        // path; it only succeeds if the hash was not changed meanwhile.
        let (state, id, old) = (state.clone(), user.id.clone(), user.password_hash.clone());
        tokio::spawn(async move {
            let result = match state.hasher.hash(password).await {
                Ok(new) => state.store.rehash_password(&id, &old, &new, now_ms()).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "rehash on login failed");
            }
        });
    }
    Ok((user, attempt))
}

/// 423 with the lock's remaining time in whole seconds, rounded up, and never more than
/// `lockout_duration`: an admin's indefinite lock would otherwise answer a figure (centuries)
/// that no automatic lock, and so no unknown email, can produce.
pub(super) fn locked(state: &AppState, until: Millis, now: Millis) -> ApiError {
    let cap = u64::try_from(duration_ms(state.config.rate_limit.lockout_duration)).unwrap_or(u64::MAX);
    let ms = u64::try_from(until.saturating_sub(now)).unwrap_or(0).min(cap);
    ApiError::Locked(ms.div_ceil(1000).max(1))
}

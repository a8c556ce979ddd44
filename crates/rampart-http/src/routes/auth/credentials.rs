//! The credential check shared by `POST /auth/login` and the token password grant: one code path,
//! one hashing pool, one uniform failure, one set of limits.
//!
//! In order, each step before any work the next one costs:
//!
//! 1. the body's email and password are well-formed (no work);
//! 2. the login budgets, per client IP, per account and deployment-wide ([`login_gate`]): 429
//!    before any database read or hash;
//! 3. the hashing pool has room (else 503 at once, before the database read);
//! 4. the account (or the unknown email) is not locked: 423 after one indexed read, without
//!    hashing (so a correct password learns nothing while locked);
//! 5. the hash; a failure counts towards the lockout;
//! 6. ([`first_factor`]) email verification when required, then the second factor when the
//!    account has one (401 `mfa-required` with an `mfa_token`); only a complete login resets the
//!    failure count, so that knowing the password does not reset the lockout of code guesses.

use rampart_core::auth::hasher::Verdict;
use rampart_core::clock::{Millis, duration_ms, now_ms};
use rampart_core::email::Email;
use rampart_core::limit::Bucket;
use rampart_core::password::check_length;
use rampart_store::{AuditEvent, UserRow};
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
/// Every login-like route (login, token password grant, later MFA verify and forgot-password)
/// calls this first; they share the one per-IP bucket. `account` is the normalized email, known
/// or not, so a refusal says nothing about whether the account exists.
/// `ip_spent`: the rate-limit layer already spent the per-IP budget for this request (it does
/// for `POST /auth/login`, before reading the body).
pub async fn login_gate(
    state: &AppState,
    ctx: &RequestContext,
    account: &str,
    ip_spent: Option<LoginIpSpent>,
) -> Result<(), ApiError> {
    if ip_spent.is_none() {
        state.limiter.check(Bucket::LoginIp(ctx.ip)).await.map_err(ApiError::RateLimited)?;
    }
    for bucket in [Bucket::LoginAccount(account), Bucket::LoginGlobal] {
        state.limiter.check(bucket).await.map_err(ApiError::RateLimited)?;
    }
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
/// 403 `email-not-verified` (with a fresh verification mail) when verification is required and
/// missing; 401 `mfa-required` with a new challenge when the account has a second factor.
pub async fn first_factor(
    state: &AppState,
    ctx: &RequestContext,
    email: &str,
    password: SecretString,
    ip_spent: Option<LoginIpSpent>,
    flow: Flow,
) -> Result<UserRow, ApiError> {
    let user = authenticate(state, ctx, email, password, ip_spent).await?;
    if state.config.require_email_verification() && !user.email_verified {
        // Only someone who knows the password learns this, and gets the link resent to the
        // owner's mailbox (rate limited like every login).
        super::mailing::send_verification(state, &user);
        return Err(ApiError::EmailNotVerified);
    }
    if user.mfa_enabled {
        let (token, hash) = rampart_core::token::generate();
        let now = now_ms();
        let expires = now + duration_ms(state.config.auth.mfa_challenge_ttl);
        state.store.insert_mfa_challenge(hash.as_str(), &user.id, flow.as_str(), now, expires).await?;
        return Err(ApiError::MfaRequired(token));
    }
    login_complete(state, &user).await?;
    Ok(user)
}

/// Every factor is proven: resets the failure count, in the same statement that re-checks the
/// lock, so a lock set by a concurrent failure (or an admin) while this attempt was hashing
/// still wins.
pub async fn login_complete(state: &AppState, user: &UserRow) -> Result<(), ApiError> {
    let now = now_ms();
    match state.store.record_login_success(&user.id, now).await? {
        None => Err(INVALID_CREDENTIALS), // deleted meanwhile
        Some(Some(until)) if until > now => Err(locked(until, now)),
        Some(_) => Ok(()),
    }
}

/// Checks an email and password. Failures are audited and answered uniformly.
async fn authenticate(
    state: &AppState,
    ctx: &RequestContext,
    email: &str,
    password: SecretString,
    ip_spent: Option<LoginIpSpent>,
) -> Result<UserRow, ApiError> {
    let email = Email::parse(email).map_err(|e| ApiError::Validation(vec![FieldError::new("email", e.to_string())]))?;
    check_length(&password).map_err(|e| ApiError::Validation(vec![FieldError::new("password", e.to_string())]))?;
    login_gate(state, ctx, email.normalized(), ip_spent).await?;

    // Every hashing slot is taken: answer 503 now, before the database read that would only
    // lead up to a refused hash. Under a login flood this is most attempts.
    if state.hasher.saturated() {
        return Err(rampart_core::auth::hasher::HashError::Busy.into());
    }
    let user = state.store.user_by_email(email.normalized()).await?;
    let now = now_ms();
    // Unknown emails are locked by the same rule (in the limiter's memory), so that a 423 does
    // not tell an attacker which accounts exist.
    let lock = match &user {
        Some(u) => u.locked_until.filter(|until| *until > now),
        None => state.limiter.unknown_account_locked(email.normalized(), now).await,
    };
    if let Some(until) = lock {
        // Refused without hashing: the password is not even looked at while the lock lasts.
        let event = Audit {
            action: AuditEvent::LoginFailure,
            actor_id: user.as_ref().map(|u| u.id.as_str()),
            target: Some(email.normalized()),
            outcome: "denied",
        };
        record(state, ctx, event).await;
        return Err(locked(until, now));
    }
    // An unknown email is checked against a dummy hash: the same Argon2 work as a wrong password,
    // so response time does not reveal whether an account exists.
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let verdict = state.hasher.verify(password.clone(), stored).await?;
    let (user, rehash) = match (user, verdict) {
        (Some(user), Verdict::Match { rehash }) => (user, rehash),
        (user, _) => return Err(failed(state, ctx, user.as_ref(), email.normalized()).await),
    };
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
    Ok(user)
}

/// A wrong password or an unknown email: audited, counted towards the lockout (in the database
/// for an account, in the limiter for an unknown email), and answered with the uniform 401, even
/// by the failure that sets the lock.
async fn failed(state: &AppState, ctx: &RequestContext, user: Option<&UserRow>, email: &str) -> ApiError {
    let actor = user.map(|u| u.id.as_str());
    let event = Audit { action: AuditEvent::LoginFailure, actor_id: actor, target: Some(email), outcome: "failure" };
    record(state, ctx, event).await;
    match count_failure(state, ctx, user, email).await {
        Ok(()) => INVALID_CREDENTIALS,
        Err(e) => e,
    }
}

/// Counts one failed attempt (a wrong password, or a wrong second-factor code) towards the
/// lockout, and when it sets the lock: audits `lockout` and tells the owner by mail.
pub(super) async fn count_failure(
    state: &AppState,
    ctx: &RequestContext,
    user: Option<&UserRow>,
    email: &str,
) -> Result<(), ApiError> {
    let rl = &state.config.rate_limit;
    let lock_until = now_ms().saturating_add(duration_ms(rl.lockout_duration));
    let locked = match user {
        Some(user) => state
            .store
            .record_login_failure(&user.id, rl.lockout_after_failures, lock_until)
            .await?
            .is_some_and(|f| f.locked_until.is_some()),
        None => state.limiter.unknown_account_failed(email, rl.lockout_after_failures, lock_until).await.is_some(),
    };
    if locked {
        // The owner is not logged out: a lock stops new logins, not existing ones, so an
        // attacker cannot end someone's sessions just by failing logins in their name.
        let actor = user.map(|u| u.id.as_str());
        tracing::warn!(user_id = actor.unwrap_or("-"), "login locked after failed attempts");
        let event = Audit { action: AuditEvent::Lockout, actor_id: actor, target: Some(email), outcome: "denied" };
        record(state, ctx, event).await;
        if let Some(u) = user {
            state.mailer.send(rampart_mail::templates::account_locked(&u.email, rl.lockout_duration));
        }
    }
    Ok(())
}

/// 423 with the lock's remaining time, in whole seconds rounded up.
pub(super) fn locked(until: Millis, now: Millis) -> ApiError {
    let ms = u64::try_from(until.saturating_sub(now)).unwrap_or(0);
    ApiError::Locked(ms.div_ceil(1000).max(1))
}

//! The password step of a login (cookie login and token password grant alike): one code path,
//! one hashing pool, one uniform failure, one set of limits.
//!
//! In order, each step before any work the next one costs:
//!
//! 1. the email and password are well-formed (no work);
//! 2. the login budgets, per client IP, per account and deployment-wide
//!    ([`spend_login_budgets`]): refused before any database read or hash;
//! 3. the hashing pool has room (else `Busy` at once, before the database read);
//! 4. the attempt is reserved ([`Attempt::reserve`]): one guarded statement that refuses it
//!    (`Locked`, without hashing, so a correct password learns nothing while locked) or counts it
//!    as a failure before the hash is computed, for accounts and unknown emails alike;
//! 5. the hash; a right password gives the reservation back or completes the login;
//! 6. ([`password_step`]) email verification when required, then the second factor when the
//!    account has one; only a complete login resets the failure count, so that knowing the
//!    password does not reset the lockout of code guesses. The reset is written when the login
//!    opens (`flows::sessions`), in one transaction with the new login and its audit event: a
//!    successful login costs one commit after the hash, not three.

use rampart_core::auth::hasher::{HashError, Verdict};
use rampart_core::clock::{duration_ms, now_ms};
use rampart_core::email::Email;
use rampart_core::password::check_length;
use rampart_store::{AuditEvent, AuditOutcome, SignInMethod, UserRow};
use secrecy::SecretString;

use super::attempt::Attempt;
use super::budget::spend_login_budgets;
use super::{AuthError, SignedIn, mailing};
use crate::AppState;
use crate::extract::RequestContext;
use crate::middleware::LoginIpSpent;
use crate::routes::audit_trail::{Audit, record};

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

/// The password step of a login, and what must follow it: the user when the login is complete
/// (signed in by the password alone);
/// `EmailNotVerified` (with a verification mail, at most one per account every ten minutes) when
/// verification is required and missing; `MfaRequired` with a new challenge when the account has
/// a second factor.
pub async fn password_step(
    state: &AppState,
    ctx: &RequestContext,
    email: &str,
    password: SecretString,
    ip_spent: Option<LoginIpSpent>,
    flow: Flow,
) -> Result<SignedIn, AuthError> {
    let (user, attempt) = authenticate(state, ctx, email, password, ip_spent).await?;
    if state.settings.require_email_verification() && !user.email_verified {
        // The password was right: the attempt is no failure, but no login either.
        attempt.release(state).await;
        // Only someone who knows the password learns this, and the link goes to the owner's
        // mailbox, throttled per account.
        mailing::send_verification(state, &user);
        return Err(AuthError::EmailNotVerified);
    }
    // A passkey is a second factor too: an account with one is asked for it (or its TOTP code).
    if user.mfa_enabled || state.store.count_passkeys(&user.id).await? > 0 {
        attempt.release(state).await;
        let (token, hash) = rampart_core::opaque_token::generate();
        let now = now_ms();
        let expires = now + duration_ms(state.settings.auth.mfa_challenge_ttl);
        state.store.insert_mfa_challenge(hash.as_str(), &user.id, flow.as_str(), now, expires).await?;
        return Err(AuthError::MfaRequired(token));
    }
    Ok(attempt.proven(user, SignInMethod::Password))
}

/// Checks an email and password. Failures are audited and answered uniformly.
async fn authenticate(
    state: &AppState,
    ctx: &RequestContext,
    email: &str,
    password: SecretString,
    ip_spent: Option<LoginIpSpent>,
) -> Result<(UserRow, Attempt), AuthError> {
    let email = Email::parse(email).map_err(|e| AuthError::field("email", e.to_string()))?;
    check_length(&password).map_err(|e| AuthError::field("password", e.to_string()))?;
    spend_login_budgets(state, ctx, Some(email.normalized()), ip_spent).await?;

    // Every hashing slot is taken: answer 503 now, before the database read that would only
    // lead up to a refused hash. Under a login flood this is most attempts.
    if state.hasher.saturated() {
        return Err(HashError::Busy.into());
    }
    let user = state.store.user_by_email(email.normalized()).await?;
    let attempt = Attempt::reserve(state, ctx, user.as_ref(), email.normalized()).await?;
    // An unknown email is checked against a dummy hash: the same Argon2 work as a wrong password,
    // so response time does not reveal whether an account exists.
    let stored = user.as_ref().map(|u| u.password_hash.as_str().to_owned());
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
            return Err(AuthError::InvalidCredentials);
        }
    };
    let Some(user) = user else { return Err(AuthError::InvalidCredentials) };
    if rehash {
        // Parameters were raised since this hash was made: store a fresh one. Off the response
        // path; it only succeeds if the hash was not changed meanwhile.
        let (state, id, old) = (state.clone(), user.id.clone(), user.password_hash.as_str().to_owned());
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

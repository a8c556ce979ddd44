//! Registration.
//!
//! It costs a hash, a row, an audit row and a mail, so it spends the login budgets (per IP in the
//! rate-limit layer, then the deployment-wide one here) before any of that: it cannot be used to
//! fill the hashing pool (every login would then answer 503), the tables, or anyone's inbox. A
//! taken email costs the same as a new one (the hash, one insert attempt, one audit row, one
//! background mail), so that with verification on neither the answer nor its timing tells
//! whether the address has an account.

use rampart_core::auth::hasher::{HashError, Hasher};
use rampart_core::clock::now_ms;
use rampart_core::email::Email;
use rampart_store::{AuditEvent, AuditOutcome, NewUser, Store, StoreError, UserRow};
use secrecy::SecretString;

use super::budget::spend_login_budgets;
use super::{AuthError, mailing};
use crate::AppState;
use crate::error::FieldError;
use crate::extract::RequestContext;
use crate::middleware::LoginIpSpent;
use crate::routes::audit_trail::{Audit, record};

/// What a registration answers.
// Returned once per registration and matched at once, never stored or moved around: boxing the
// row would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Registered {
    /// A new account (verification not required).
    Created(UserRow),
    /// Verification required: a new account or a taken address, alike.
    VerificationSent,
}

/// Registers `email` with `password` as a plain user.
pub async fn register(
    state: &AppState,
    ctx: &RequestContext,
    email: &str,
    password: SecretString,
    ip_spent: Option<LoginIpSpent>,
) -> Result<Registered, AuthError> {
    let email = Email::parse(email);
    let context: Vec<&str> = email.as_ref().map(|e| vec![e.normalized()]).unwrap_or_default();
    let strong = state.settings.auth.password_policy().check(&password, &context);
    let email = match (email, strong) {
        (Ok(e), Ok(())) => e,
        (e, p) => {
            let mut errors = Vec::new();
            if let Err(e) = e {
                errors.push(FieldError::new("email", e.to_string()));
            }
            if let Err(p) = p {
                errors.push(FieldError::new("password", p.to_string()));
            }
            return Err(AuthError::Invalid(errors));
        }
    };
    spend_login_budgets(state, ctx, None, ip_spent).await?;
    if state.hasher.saturated() {
        return Err(HashError::Busy.into());
    }
    let verification = state.settings.require_email_verification();
    match create_account(&state.store, &state.hasher, &email, password, &["user"]).await {
        Ok(user) => {
            let event = Audit {
                action: AuditEvent::Register,
                actor_id: Some(&user.id),
                target: Some(&user.id),
                outcome: AuditOutcome::Success,
            };
            record(state, ctx, event).await;
            mailing::send_verification(state, &user);
            Ok(if verification { Registered::VerificationSent } else { Registered::Created(user) })
        }
        Err(AuthError::EmailTaken) => {
            taken(state, ctx, email.normalized()).await?;
            // With verification on, a taken email gets the very same answer, so registration
            // cannot be used to find out who has an account.
            if verification { Ok(Registered::VerificationSent) } else { Err(AuthError::EmailTaken) }
        }
        Err(e) => Err(e),
    }
}

/// Hashes the password and stores the account: the part of registration that `rampart user
/// create` shares. The hash comes before the insert finds out whether the email is taken, so
/// both outcomes cost the same. `EmailTaken` when it is.
pub async fn create_account(
    store: &Store,
    hasher: &Hasher,
    email: &Email,
    password: SecretString,
    roles: &[&str],
) -> Result<UserRow, AuthError> {
    let hash = hasher.hash(password).await?;
    let id = rampart_core::opaque_token::new_id();
    let new = NewUser {
        id: &id,
        email: email.as_str(),
        email_normalized: email.normalized(),
        password_hash: &hash,
        roles,
        now: now_ms(),
    };
    match store.insert_user(&new).await {
        Ok(user) => Ok(user),
        Err(StoreError::Conflict) => Err(AuthError::EmailTaken),
        Err(e) => Err(e.into()),
    }
}

/// Someone registered an address that has an account: audited, and the owner is told, with a
/// password-reset link (throttled per account). If the account is an attacker's claim on the
/// address (registered first, never verified), the reset gives it to the mailbox's owner and
/// voids the verification link mailed under the attacker's password.
async fn taken(state: &AppState, ctx: &RequestContext, email: &str) -> Result<(), AuthError> {
    let existing = state.store.user_by_email(email).await?;
    let event = Audit {
        action: AuditEvent::Register,
        actor_id: None,
        target: existing.as_ref().map_or(Some(email), |u| Some(u.id.as_str())),
        outcome: AuditOutcome::Failure,
    };
    record(state, ctx, event).await;
    if let Some(user) = &existing {
        mailing::send_signup_attempt(state, user);
    }
    Ok(())
}

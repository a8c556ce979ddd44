//! Adding and removing the TOTP second factor of a signed-in user: setup (a pending secret),
//! enable (the current password and a code from the app; answers the recovery codes, shown
//! once), disable (the password and a code). `POST /auth/mfa/totp/*` and the account page both
//! call these.
//!
//! Adding or removing the second factor needs the current password as well as the session
//! (`reauth::reauthenticate`), so a stolen session or access token cannot enrol the thief's
//! authenticator and lock the owner out; the owner is mailed of each change.

use rampart_core::auth::totp::Totp;
use rampart_core::clock::now_ms;
use rampart_core::password::check_length;
use rampart_mail::templates::{self, RemovedBy};
use rampart_store::{AuditEvent, AuditOutcome, UserRow};
use secrecy::SecretString;

use super::AuthError;
use super::reauth::reauthenticate;
use super::second_factor::{NewRecoveryCodes, code_field, open_totp, read_proof, record_failure, step_i64, unix_secs};
use crate::AppState;
use crate::error::FieldError;
use crate::extract::RequestContext;
use crate::routes::audit_trail::{Audit, record};

/// A pending secret, for the authenticator app.
pub struct Pending {
    pub secret_base32: String,
    pub otpauth_uri: String,
    /// The QR code of `otpauth_uri`, an SVG document we render ourselves.
    pub qr_svg: String,
}

/// A new pending secret, waiting to be confirmed by [`enable`]. Again before that: replaced.
pub async fn setup(state: &AppState, user: &UserRow) -> Result<Pending, AuthError> {
    if user.mfa_enabled {
        return Err(AuthError::MfaAlreadyEnabled);
    }
    let secret = Totp::generate_secret();
    let totp = Totp::new(secret.clone(), &state.settings.auth.totp_issuer, &user.email).map_err(internal)?;
    let sealed = state.data_key.seal(&secret, &user.id).map_err(internal)?;
    if !state.store.put_pending_totp(&user.id, &sealed, now_ms()).await? {
        return Err(AuthError::MfaAlreadyEnabled);
    }
    describe(&totp)
}

/// The pending secret set up earlier, if there is one (for a page that shows it again).
pub async fn pending(state: &AppState, user: &UserRow) -> Result<Option<Pending>, AuthError> {
    match state.store.totp_secret(&user.id).await? {
        Some(row) if row.enabled_at.is_none() => describe(&open_totp(state, user, &row.secret_enc)?).map(Some),
        _ => Ok(None),
    }
}

fn describe(totp: &Totp) -> Result<Pending, AuthError> {
    Ok(Pending {
        secret_base32: totp.secret_base32(),
        otpauth_uri: totp.otpauth_uri(),
        qr_svg: totp.qr_svg().map_err(internal)?,
    })
}

/// Confirms the pending secret: the current password proves the caller is the owner, not just
/// whoever holds the session (who could otherwise enrol their own authenticator and lock the
/// owner out for good); a code from the app proves it holds the secret. Returns the recovery
/// codes, stored only hashed, and mails the owner.
pub async fn enable(
    state: &AppState,
    ctx: &RequestContext,
    user: &UserRow,
    code: &str,
    password: SecretString,
) -> Result<Vec<SecretString>, AuthError> {
    let code = code_and_password(code, &password)?;
    let pending = match state.store.totp_secret(&user.id).await? {
        Some(r) if r.enabled_at.is_some() => return Err(AuthError::MfaAlreadyEnabled),
        Some(r) => r,
        None => return Err(AuthError::NoMfaSetup),
    };
    // The password first: without it the answer is 403, whatever the code. (The code itself
    // guesses nothing: the caller holds the secret it is confirming.)
    let (password_ok, attempt) = reauthenticate(state, ctx, user, password).await?;
    if !password_ok {
        record_failure(state, ctx, user).await;
        attempt.failed(state, ctx).await;
        return Err(AuthError::WrongPassword);
    }
    attempt.release(state).await;
    let wrong = || AuthError::field("code", "is not the current code of the authenticator");
    let step = open_totp(state, user, &pending.secret_enc)?.matching_step(&code, unix_secs()).ok_or_else(wrong)?;
    let recovery = NewRecoveryCodes::generate();
    // The owner's notice is queued in the transaction that enables the factor (the mail outbox).
    let notice = state
        .mailer
        .seal(templates::second_factor_added(&user.email))
        .map_err(|e| AuthError::Internal(e.to_string()))?;
    if !state.store.enable_totp(&user.id, step_i64(step), &recovery.hashes, now_ms(), &notice).await? {
        return Err(wrong());
    }
    let event = Audit {
        action: AuditEvent::MfaEnabled,
        actor_id: Some(&user.id),
        target: Some(&user.id),
        outcome: AuditOutcome::Success,
    };
    record(state, ctx, event).await;
    state.mailer.wake();
    Ok(recovery.codes)
}

/// Removes the second factor: needs the password and a code (TOTP or recovery), so a stolen
/// session alone cannot remove it.
pub async fn disable(
    state: &AppState,
    ctx: &RequestContext,
    user: &UserRow,
    code: &str,
    password: SecretString,
) -> Result<(), AuthError> {
    let code = code_and_password(code, &password)?;
    if !user.mfa_enabled {
        return Err(AuthError::MfaNotEnabled);
    }
    let (password_ok, attempt) = reauthenticate(state, ctx, user, password).await?;
    let proof = match read_proof(state, user, &code).await {
        // As at `/auth/mfa/verify`: a code that cannot be checked is not held against a user
        // whose password was right.
        Err(e @ AuthError::Unavailable(_)) if password_ok => {
            attempt.release(state).await;
            return Err(e);
        }
        other => other?,
    };
    let disabled = match (password_ok, &proof) {
        (true, Some(p)) => {
            let notice = templates::second_factor_removed(&user.email, RemovedBy::Owner);
            let notice = state.mailer.seal(notice).map_err(|e| AuthError::Internal(e.to_string()))?;
            state.store.disable_totp(&user.id, p.as_store(), now_ms(), &notice).await?
        }
        _ => false,
    };
    if !disabled {
        record_failure(state, ctx, user).await;
        attempt.failed(state, ctx).await;
        return Err(AuthError::WrongPasswordOrCode);
    }
    attempt.release(state).await;
    let event = Audit {
        action: AuditEvent::MfaDisabled,
        actor_id: Some(&user.id),
        target: Some(&user.id),
        outcome: AuditOutcome::Success,
    };
    record(state, ctx, event).await;
    state.mailer.wake();
    Ok(())
}

/// The two fields of `enable` and `disable`, every problem named at once; the code as typed.
fn code_and_password(code: &str, password: &SecretString) -> Result<String, AuthError> {
    let mut errors = Vec::new();
    let code = code_field(code).map_err(|e| errors.push(e)).ok();
    if let Err(e) = check_length(password) {
        errors.push(FieldError::new("password", e.to_string()));
    }
    code.filter(|_| errors.is_empty()).ok_or(AuthError::Invalid(errors))
}

fn internal(e: impl std::fmt::Display) -> AuthError {
    AuthError::Internal(format!("mfa: {e}"))
}

//! Completing a login that answered "second factor required": the challenge, the code, the
//! lockout; and the second-factor proofs that enabling and disabling check too.
//!
//! Code attempts are limited like password attempts: the per-IP login budget (in the rate-limit
//! layer), the per-account one here, and every wrong code counts towards the account lockout; an
//! `mfa_token` dies after [`MFA_MAX_ATTEMPTS`](rampart_store::MFA_MAX_ATTEMPTS) wrong codes.
//! Each code works once: a TOTP step only if later than the last accepted one, a recovery code
//! only while unused.

use rampart_core::auth::data_key::DataKeyError;
use rampart_core::auth::totp::{self, Totp};
use rampart_core::clock::now_ms;
use rampart_core::opaque_token::TokenHash;
use rampart_store::{AuditEvent, AuditOutcome, MfaProof, SignInMethod, UserRow};
use secrecy::SecretString;

use webauthn_rs::prelude::PublicKeyCredential;

use super::attempt::Attempt;
use super::budget::spend_login_budgets;
use super::password_login::Flow;
use super::{AuthError, SignedIn, passkeys};
use crate::AppState;
use crate::error::FieldError;
use crate::extract::{PresentedToken, RequestContext};
use crate::middleware::LoginIpSpent;
use crate::routes::audit_trail::{Audit, record};

/// What answers the second-factor challenge: a code (TOTP or recovery), or a passkey assertion
/// for a ceremony started with `POST /auth/mfa/passkey/start`.
pub enum Answer<'a> {
    Code(&'a str),
    Passkey { challenge_id: &'a PresentedToken, credential: &'a PublicKeyCredential },
}

/// Checks the answer against the login waiting behind `mfa_token`; on success the login is
/// complete (failure count reset), signed in by the password and the factor that answered, and
/// the caller opens what `Flow` asked for.
pub async fn complete(
    state: &AppState,
    ctx: &RequestContext,
    mfa_token: &PresentedToken,
    answer: Answer<'_>,
    ip_spent: Option<LoginIpSpent>,
) -> Result<(SignedIn, Flow), AuthError> {
    let hash = mfa_token.hash().ok_or(AuthError::InvalidChallenge)?;
    let challenge = state.store.mfa_challenge(hash.as_str(), now_ms()).await?.ok_or(AuthError::InvalidChallenge)?;
    let flow = Flow::parse(&challenge.flow).ok_or(AuthError::InvalidChallenge)?;
    let user = state.store.user_by_id(&challenge.user_id).await?.ok_or(AuthError::InvalidChallenge)?;
    spend_login_budgets(state, ctx, Some(&user.email_normalized), ip_spent).await?;
    // Reserved before the code is looked at, like a password attempt: a burst of codes sent
    // together gets what the lockout rule allows, and the rest 423 unchecked.
    let attempt = Attempt::reserve(state, ctx, Some(&user), &user.email_normalized).await?;
    let by_passkey = matches!(answer, Answer::Passkey { .. });
    let proof = match answer {
        Answer::Code(code) => read_proof(state, &user, code).await,
        Answer::Passkey { challenge_id, credential } => {
            passkeys::verify_second_factor(state, &user, hash.as_str(), challenge_id, credential)
                .await
                .map(|u| u.map(Proof::Passkey))
        }
    };
    let proof = match proof {
        // The code could not be checked (the data key that sealed the secret is missing): not
        // the user's failure, so the attempt is given back rather than counted towards a lock.
        // Likewise a passkey challenge that is unknown, spent or of another login: nothing was
        // checked, so nothing is counted (the challenge is spent all the same).
        Err(e @ (AuthError::Unavailable(_) | AuthError::PasskeyChallenge)) => {
            attempt.release(state).await;
            return Err(e);
        }
        other => other?,
    };
    // `auth.passkeys.required_for_roles`: once such a user has a passkey, a TOTP code no longer
    // completes their login (a code can be phished; a passkey cannot). Recovery codes still do,
    // so that losing every passkey does not lock the owner out.
    if matches!(proof, Some(Proof::Totp(_))) && passkey_enforced(state, &user).await? {
        attempt.release(state).await;
        return Err(AuthError::PasskeyRequired);
    }
    let completed = match &proof {
        Some(p) => state.store.complete_mfa(hash.as_str(), &user.id, p.as_store(), now_ms()).await?,
        None => false,
    };
    let Some(proof) = proof.filter(|_| completed) else {
        state.store.fail_mfa_challenge(hash.as_str()).await?;
        record_failure(state, ctx, &user).await;
        attempt.failed(state, ctx).await;
        return Err(if by_passkey { AuthError::PasskeyRefused } else { AuthError::InvalidCode });
    };
    Ok((attempt.proven(user, proof.method()), flow))
}

/// Longer than any code we issue (a recovery code with spaces); longer input is refused unread.
const CODE_MAX: usize = 64;

/// The code as typed, without the spaces apps and people put in it; refused when too long.
pub fn code_field(raw: &str) -> Result<String, FieldError> {
    if raw.len() > CODE_MAX {
        return Err(FieldError::new("code", format!("must be at most {CODE_MAX} characters")));
    }
    let code: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    if code.is_empty() {
        return Err(FieldError::new("code", "is required"));
    }
    Ok(code)
}

/// Whether the user's role requires a passkey and they have one: then a password, with or
/// without a TOTP code, no longer signs them in.
pub(crate) async fn passkey_enforced(state: &AppState, user: &UserRow) -> Result<bool, AuthError> {
    Ok(passkeys::required_for(state, user) && state.store.count_passkeys(&user.id).await? > 0)
}

pub(crate) async fn record_failure(state: &AppState, ctx: &RequestContext, user: &UserRow) {
    let event = Audit {
        action: AuditEvent::MfaFailure,
        actor_id: Some(&user.id),
        target: Some(&user.id),
        outcome: AuditOutcome::Failure,
    };
    record(state, ctx, event).await;
}

/// A second-factor proof, owned: a TOTP step or a recovery code's hash.
pub(crate) enum Proof {
    Totp(i64),
    Recovery(TokenHash),
    Passkey(passkeys::SecondFactorUse),
}

impl Proof {
    /// The login this proof completes: the password, then this factor.
    fn method(&self) -> SignInMethod {
        match self {
            Proof::Totp(_) => SignInMethod::PasswordTotp,
            Proof::Recovery(_) => SignInMethod::PasswordRecoveryCode,
            Proof::Passkey(_) => SignInMethod::PasswordPasskey,
        }
    }

    pub(crate) fn as_store(&self) -> MfaProof<'_> {
        match self {
            Proof::Totp(step) => MfaProof::Totp(*step),
            Proof::Recovery(hash) => MfaProof::Recovery(hash.as_str()),
            Proof::Passkey(used) => MfaProof::Passkey(used.as_store()),
        }
    }
}

/// What `code` proves: six digits are a TOTP code of the enabled secret (checked here, spent by
/// the store), anything else may be a recovery code (looked up by the store). `None`: it cannot
/// be right.
pub(crate) async fn read_proof(state: &AppState, user: &UserRow, code: &str) -> Result<Option<Proof>, AuthError> {
    if code.len() == totp::DIGITS && code.bytes().all(|b| b.is_ascii_digit()) {
        let Some(row) = state.store.totp_secret(&user.id).await?.filter(|r| r.enabled_at.is_some()) else {
            return Ok(None);
        };
        let step = open_totp(state, user, &row.secret_enc)?.matching_step(code, unix_secs());
        return Ok(step.map(|s| Proof::Totp(step_i64(s))));
    }
    Ok(totp::recovery_code_hash(code).map(Proof::Recovery))
}

/// A fresh set of recovery codes: the codes, shown once to their owner, and the hashes that are
/// all the store keeps. Enabling TOTP and adding a first passkey both issue them through this.
pub(crate) struct NewRecoveryCodes {
    pub(crate) codes: Vec<SecretString>,
    pub(crate) hashes: Vec<String>,
}

impl NewRecoveryCodes {
    pub(crate) fn generate() -> Self {
        let codes = totp::generate_recovery_codes();
        let hashes = codes.iter().map(|c| totp::stored_recovery_hash(c).as_str().to_owned()).collect();
        Self { codes, hashes }
    }
}

pub(crate) fn open_totp(state: &AppState, user: &UserRow, sealed: &str) -> Result<Totp, AuthError> {
    let secret = state.data_key.open(sealed, &user.id).map_err(|e| match e {
        // The previous key was dropped before `rampart data-key rotate` ran: fail closed (no
        // TOTP login), with a 503 rather than "invalid code" so the user is not sent guessing and
        // locked out for it, and a log line naming the key id (never the key) to put back.
        DataKeyError::UnknownKey(_) => AuthError::Unavailable(format!(
            "mfa: {e}: set it as RAMPART_DATA_KEY_PREVIOUS and run `rampart data-key rotate`"
        )),
        e => AuthError::Internal(format!("mfa: {e}")),
    })?;
    Totp::new(secret, &state.settings.auth.totp_issuer, &user.email)
        .map_err(|e| AuthError::Internal(format!("mfa: {e}")))
}

pub(crate) fn unix_secs() -> u64 {
    u64::try_from(now_ms() / 1000).unwrap_or(0)
}

pub(crate) fn step_i64(step: u64) -> i64 {
    i64::try_from(step).unwrap_or(i64::MAX)
}

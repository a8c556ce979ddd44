//! `/auth/mfa`: TOTP setup, enable and disable, and `verify`, which completes a login that
//! answered `mfa-required`.
//!
//! Adding or removing the second factor needs the current password as well as the session
//! (`reauth::reauthenticate`), so a stolen session or access token cannot enrol the thief's
//! authenticator and lock the owner out; the owner is mailed of each change.
//!
//! Code attempts are limited like password attempts: `verify` spends the per-IP login budget in
//! the rate-limit layer and the per-account one here, `enable` and `disable` (with a password) both;
//! every wrong code counts towards the account lockout, and an `mfa_token` dies after
//! [`MFA_MAX_ATTEMPTS`](rampart_store::MFA_MAX_ATTEMPTS) wrong codes. Each code works once: a
//! TOTP step only if later than the last accepted one, a recovery code only while unused.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use http::{HeaderMap, StatusCode};
use rampart_core::auth::totp::{self, Totp};
use rampart_core::clock::now_ms;
use rampart_core::password::check_length;
use rampart_mail::templates::{self, RemovedBy};
use rampart_store::{AuditEvent, AuditOutcome};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use webauthn_rs::prelude::PublicKeyCredential;

use super::super::audit_trail::{Audit, record};
use crate::error::FieldError;
use crate::extract::{ApiJson, Authenticated, PresentedToken, RequestContext};
use crate::flows::AuthError;
use crate::flows::password_login::Flow;
use crate::flows::reauth::reauthenticate;
use crate::flows::second_factor::{
    self, Answer, code_field, open_totp, read_proof, record_failure, step_i64, unix_secs,
};
use crate::middleware::LoginIpSpent;
use crate::{ApiError, AppState};

const ALREADY_ENABLED: ApiError =
    ApiError::Conflict("two-factor authentication is already enabled: disable it before setting it up again");
const BAD_REAUTH: ApiError = ApiError::Forbidden("the password or code is not correct");
const BAD_PASSWORD: ApiError = ApiError::Forbidden("the password is not correct");

/// `POST /auth/mfa/totp/setup`: a new secret, waiting to be confirmed by `enable`. Calling it
/// again before that replaces the secret.
#[tracing::instrument(skip_all)]
pub async fn setup(State(state): State<AppState>, auth: Authenticated) -> Result<Json<Value>, ApiError> {
    if auth.user.mfa_enabled {
        return Err(ALREADY_ENABLED);
    }
    let secret = Totp::generate_secret();
    let totp = Totp::new(secret.clone(), &state.settings.auth.totp_issuer, &auth.user.email).map_err(internal)?;
    let sealed = state.data_key.seal(&secret, &auth.user.id).map_err(internal)?;
    if !state.store.put_pending_totp(&auth.user.id, &sealed, now_ms()).await? {
        return Err(ALREADY_ENABLED);
    }
    Ok(Json(json!({
        "secret": totp.secret_base32(),
        "otpauth_uri": totp.otpauth_uri(),
        "qr_svg": totp.qr_svg().map_err(internal)?,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnableRequest {
    code: String,
    password: SecretString,
}

/// `POST /auth/mfa/totp/enable`: the current password proves the caller is the owner, not just
/// whoever holds the session (who could otherwise enrol their own authenticator and lock the owner
/// out for good); a code from the app proves it holds the secret. Answers the recovery codes,
/// shown this once and stored only hashed, and mails the owner.
#[tracing::instrument(skip_all)]
pub async fn enable(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
    ApiJson(body): ApiJson<EnableRequest>,
) -> Result<Json<Value>, ApiError> {
    let code = code_and_password(&body.code, &body.password)?;
    let user = &auth.user;
    let row = state.store.totp_secret(&user.id).await?;
    let pending = match row {
        Some(r) if r.enabled_at.is_some() => return Err(ALREADY_ENABLED),
        Some(r) => r,
        None => return Err(ApiError::Conflict("no TOTP setup in progress: call POST /auth/mfa/totp/setup first")),
    };
    // The password first: without it the answer is 403, whatever the code. (The code itself
    // guesses nothing: the caller holds the secret it is confirming.)
    let (password_ok, attempt) = reauthenticate(&state, &ctx, user, body.password).await?;
    if !password_ok {
        record_failure(&state, &ctx, user).await;
        attempt.failed(&state, &ctx).await;
        return Err(BAD_PASSWORD);
    }
    attempt.release(&state).await;
    let wrong = || ApiError::Validation(vec![FieldError::new("code", "is not the current code of the authenticator")]);
    let step = open_totp(&state, user, &pending.secret_enc)?.matching_step(&code, unix_secs()).ok_or_else(wrong)?;
    let codes = totp::generate_recovery_codes();
    let hashes: Vec<String> = codes.iter().map(|c| totp::stored_recovery_hash(c).as_str().to_owned()).collect();
    let notice = state
        .mailer
        .seal(templates::second_factor_added(&user.email))
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if !state.store.enable_totp(&user.id, step_i64(step), &hashes, now_ms(), &notice).await? {
        return Err(wrong());
    }
    let event = Audit {
        action: AuditEvent::MfaEnabled,
        actor_id: Some(&user.id),
        target: Some(&user.id),
        outcome: AuditOutcome::Success,
    };
    record(&state, &ctx, event).await;
    state.mailer.wake();
    let codes: Vec<&str> = codes.iter().map(|c| c.expose_secret()).collect();
    Ok(Json(json!({ "recovery_codes": codes })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisableRequest {
    password: SecretString,
    code: String,
}

/// `POST /auth/mfa/totp/disable`: needs the password and a code (TOTP or recovery), so a stolen
/// session alone cannot remove the second factor.
#[tracing::instrument(skip_all)]
pub async fn disable(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
    ApiJson(body): ApiJson<DisableRequest>,
) -> Result<StatusCode, ApiError> {
    let code = code_and_password(&body.code, &body.password)?;
    let user = &auth.user;
    if !user.mfa_enabled {
        return Err(ApiError::Conflict("two-factor authentication is not enabled"));
    }
    let (password_ok, attempt) = reauthenticate(&state, &ctx, user, body.password).await?;
    let proof = match read_proof(&state, user, &code).await {
        // As at `/auth/mfa/verify`: a code that cannot be checked is not held against a user
        // whose password was right.
        Err(e @ AuthError::Unavailable(_)) if password_ok => {
            attempt.release(&state).await;
            return Err(e.into());
        }
        other => other?,
    };
    let disabled = match (password_ok, &proof) {
        (true, Some(p)) => {
            let notice = templates::second_factor_removed(&user.email, RemovedBy::Owner);
            let notice = state.mailer.seal(notice).map_err(|e| ApiError::Internal(e.to_string()))?;
            state.store.disable_totp(&user.id, p.as_store(), now_ms(), &notice).await?
        }
        _ => false,
    };
    if !disabled {
        record_failure(&state, &ctx, user).await;
        attempt.failed(&state, &ctx).await;
        return Err(BAD_REAUTH);
    }
    attempt.release(&state).await;
    let event = Audit {
        action: AuditEvent::MfaDisabled,
        actor_id: Some(&user.id),
        target: Some(&user.id),
        outcome: AuditOutcome::Success,
    };
    record(&state, &ctx, event).await;
    state.mailer.wake();
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    mfa_token: PresentedToken,
    code: Option<String>,
    passkey: Option<PasskeyAnswer>,
}

/// A passkey assertion for a ceremony started with `POST /auth/mfa/passkey/start`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasskeyAnswer {
    challenge_id: PresentedToken,
    credential: Box<PublicKeyCredential>,
}

/// `POST /auth/mfa/verify`: completes the login or token grant that answered `mfa-required`,
/// with the answer that flow would have given.
#[tracing::instrument(skip_all)]
pub async fn verify(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    ip_spent: Option<Extension<LoginIpSpent>>,
    ApiJson(body): ApiJson<VerifyRequest>,
) -> Result<Response, ApiError> {
    let ip_spent = ip_spent.map(|Extension(s)| s);
    let code;
    let answer = match (&body.code, &body.passkey) {
        (Some(raw), None) => {
            code = code_field(raw).map_err(one)?;
            Answer::Code(&code)
        }
        (None, Some(p)) => Answer::Passkey { challenge_id: &p.challenge_id, credential: &p.credential },
        _ => return Err(one(FieldError::new("code", "send either a code or a passkey"))),
    };
    let (user, flow) = second_factor::complete(&state, &ctx, &body.mfa_token, answer, ip_spent).await?;
    match flow {
        Flow::Cookie => super::login::start_session(&state, &ctx, &headers, &user).await,
        Flow::Token => Ok(Json(super::token::password_grant(&state, &ctx, &user).await?).into_response()),
    }
}

/// The two fields of `enable` and `disable`, every problem named at once; the code as typed.
fn code_and_password(code: &str, password: &SecretString) -> Result<String, ApiError> {
    let mut errors = Vec::new();
    let code = code_field(code).map_err(|e| errors.push(e)).ok();
    if let Err(e) = check_length(password) {
        errors.push(FieldError::new("password", e.to_string()));
    }
    code.filter(|_| errors.is_empty()).ok_or(ApiError::Validation(errors))
}

fn one(e: FieldError) -> ApiError {
    ApiError::Validation(vec![e])
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(format!("mfa: {e}"))
}

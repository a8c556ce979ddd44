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
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use webauthn_rs::prelude::PublicKeyCredential;

use crate::error::FieldError;
use crate::extract::{ApiJson, Authenticated, PresentedToken, RequestContext};
use crate::flows::password_login::Flow;
use crate::flows::second_factor::{self, Answer, code_field};
use crate::flows::totp;
use crate::middleware::LoginIpSpent;
use crate::{ApiError, AppState};

/// `POST /auth/mfa/totp/setup`: a new secret, waiting to be confirmed by `enable`. Calling it
/// again before that replaces the secret.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn setup(State(state): State<AppState>, auth: Authenticated) -> Result<Json<Value>, ApiError> {
    let pending = totp::setup(&state, &auth.user).await?;
    Ok(Json(json!({
        "secret": pending.secret_base32,
        "otpauth_uri": pending.otpauth_uri,
        "qr_svg": pending.qr_svg,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnableRequest {
    code: String,
    password: SecretString,
}

/// `POST /auth/mfa/totp/enable`: see [`totp::enable`]. Answers the recovery codes, shown this
/// once.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn enable(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
    ApiJson(body): ApiJson<EnableRequest>,
) -> Result<Json<Value>, ApiError> {
    let codes = totp::enable(&state, &ctx, &auth.user, &body.code, body.password).await?;
    let codes: Vec<&str> = codes.iter().map(|c| c.expose_secret()).collect();
    Ok(Json(json!({ "recovery_codes": codes })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisableRequest {
    password: SecretString,
    code: String,
}

/// `POST /auth/mfa/totp/disable`: see [`totp::disable`].
#[tracing::instrument(level = "debug", skip_all)]
pub async fn disable(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
    ApiJson(body): ApiJson<DisableRequest>,
) -> Result<StatusCode, ApiError> {
    totp::disable(&state, &ctx, &auth.user, &body.code, body.password).await?;
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
#[tracing::instrument(level = "debug", skip_all)]
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
    let (login, flow) = second_factor::complete(&state, &ctx, &body.mfa_token, answer, ip_spent).await?;
    match flow {
        Flow::Cookie => super::login::start_session(&state, &ctx, &headers, &login).await,
        Flow::Token => Ok(Json(super::token::password_grant(&state, &ctx, &login).await?).into_response()),
    }
}

fn one(e: FieldError) -> ApiError {
    ApiError::Validation(vec![e])
}

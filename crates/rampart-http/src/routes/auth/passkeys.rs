//! `/auth/passkeys`: adding a passkey (signed in), signing in with one (anonymous, discoverable),
//! and the caller's list with rename and delete; `POST /auth/mfa/passkey/start` for a passkey as
//! the second factor. The ceremonies themselves are in [`crate::flows::passkeys`].
//!
//! Adding or removing a passkey needs a sign-in within `auth.reauth_window`, removing one cannot
//! remove the last passkey of a user whose role requires one, and mails the owner: the rules are
//! in [`crate::flows::own_passkeys`], which the account page's forms call too.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use rampart_core::clock::rfc3339;
use rampart_store::PasskeyRow;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use crate::error::FieldError;
use crate::extract::{ApiJson, Authenticated, IdPath, PresentedToken, RequestContext};
use crate::flows::own_passkeys;
use crate::flows::passkeys::{self, Started};
use crate::{ApiError, AppState};

/// A passkey as its owner sees it: never the credential or its public key.
#[derive(Serialize)]
pub struct PasskeyView {
    id: String,
    name: String,
    created_at: String,
    last_used_at: Option<String>,
    backed_up: bool,
}

impl From<PasskeyRow> for PasskeyView {
    fn from(p: PasskeyRow) -> Self {
        Self {
            id: p.id,
            name: p.name,
            created_at: rfc3339(p.created_at),
            last_used_at: p.last_used_at.map(rfc3339),
            backed_up: p.backed_up,
        }
    }
}

fn started(s: Started) -> Json<Value> {
    Json(json!({ "challenge_id": s.challenge_id.expose_secret(), "options": s.options }))
}

fn name_field(raw: &str) -> Result<String, ApiError> {
    own_passkeys::name_field(raw).map_err(|e| ApiError::Validation(vec![e]))
}

fn optional_name(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    raw.map(name_field).transpose()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterStartRequest {
    name: Option<String>,
}

/// `POST /auth/passkeys/register/start`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn register_start(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
    ApiJson(body): ApiJson<RegisterStartRequest>,
) -> Result<Json<Value>, ApiError> {
    let name = optional_name(body.name.as_deref())?;
    // A stolen session that is hours old must not add the thief's passkey (which would outlive
    // a password reset): adding one needs a recent sign-in, like removing one.
    own_passkeys::require_recent_sign_in(&state, &auth.user, &auth.session_id).await?;
    Ok(started(passkeys::start_registration(&state, &ctx, &auth.user, name.as_deref()).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterFinishRequest {
    challenge_id: PresentedToken,
    credential: Box<RegisterPublicKeyCredential>,
    name: Option<String>,
}

/// The answer to adding a passkey: the passkey, and the recovery codes issued with it, shown this
/// once (always present: `null` when the user already held unused codes and got none).
#[derive(Serialize)]
pub struct AddedPasskeyView {
    #[serde(flatten)]
    passkey: PasskeyView,
    recovery_codes: Option<Vec<String>>,
}

/// `POST /auth/passkeys/register/finish`: 201 with the new passkey (and any recovery codes).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn register_finish(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
    ApiJson(body): ApiJson<RegisterFinishRequest>,
) -> Result<Response, ApiError> {
    let name = optional_name(body.name.as_deref())?;
    let added =
        passkeys::finish_registration(&state, &ctx, &auth.user, &body.challenge_id, &body.credential, name.as_deref())
            .await?;
    let recovery_codes = added.recovery_codes.map(|codes| codes.iter().map(|c| c.expose_secret().to_owned()).collect());
    let view = AddedPasskeyView { passkey: added.passkey.into(), recovery_codes };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginStartRequest {}

/// `POST /auth/passkeys/login/start`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn login_start(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(_): ApiJson<LoginStartRequest>,
) -> Result<Json<Value>, ApiError> {
    Ok(started(passkeys::start_login(&state, &ctx).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginFinishRequest {
    challenge_id: PresentedToken,
    credential: Box<PublicKeyCredential>,
    grant: Option<String>,
}

/// `POST /auth/passkeys/login/finish`: answers like `POST /auth/login` (a session), or like the
/// password grant of `POST /auth/token` with `grant: "token"`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn login_finish(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginFinishRequest>,
) -> Result<Response, ApiError> {
    let token = match body.grant.as_deref() {
        None | Some("session") => false,
        Some("token") => true,
        Some(_) => {
            return Err(ApiError::Validation(vec![FieldError::new("grant", "must be \"session\" or \"token\"")]));
        }
    };
    let login = passkeys::finish_login(&state, &ctx, &body.challenge_id, &body.credential).await?;
    if token {
        return Ok(Json(super::token::password_grant(&state, &ctx, &login).await?).into_response());
    }
    super::login::start_session(&state, &ctx, &headers, &login).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MfaStartRequest {
    mfa_token: PresentedToken,
}

/// `POST /auth/mfa/passkey/start`: a passkey ceremony for the login waiting behind `mfa_token`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn mfa_start(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<MfaStartRequest>,
) -> Result<Json<Value>, ApiError> {
    Ok(started(passkeys::start_second_factor(&state, &ctx, &body.mfa_token).await?))
}

/// `GET /auth/passkeys`: the caller's own.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn list(State(state): State<AppState>, auth: Authenticated) -> Result<Json<Vec<PasskeyView>>, ApiError> {
    let rows = state.store.passkeys_of_user(&auth.user.id).await?;
    Ok(Json(rows.into_iter().map(PasskeyView::from).collect()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameRequest {
    name: String,
}

/// `PATCH /auth/passkeys/{id}`: 404 for another user's (the statement is scoped by the caller).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn rename(
    State(state): State<AppState>,
    auth: Authenticated,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<RenameRequest>,
) -> Result<Json<PasskeyView>, ApiError> {
    let name = name_field(&body.name)?;
    Ok(Json(own_passkeys::rename(&state, &auth.user, &id, &name).await?.into()))
}

/// `DELETE /auth/passkeys/{id}`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn remove(
    State(state): State<AppState>,
    ctx: RequestContext,
    auth: Authenticated,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    own_passkeys::remove(&state, &ctx, &auth.user, &auth.session_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

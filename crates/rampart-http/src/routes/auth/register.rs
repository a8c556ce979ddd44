//! `POST /auth/register`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use rampart_core::clock::{now_ms, rfc3339};
use rampart_core::email::Email;
use rampart_store::{AuditEvent, NewUser, StoreError};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

use super::super::audit::{Audit, record};
use crate::error::FieldError;
use crate::extract::{ApiJson, RequestContext};
use crate::{ApiError, AppState};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    email: String,
    password: SecretString,
}

#[tracing::instrument(skip_all)]
pub async fn register(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<Response, ApiError> {
    let email = Email::parse(&body.email);
    let context: Vec<&str> = email.as_ref().map(|e| vec![e.normalized()]).unwrap_or_default();
    let password = state.policy.check(&body.password, &context);
    let (email, ()) = match (email, password) {
        (Ok(e), Ok(())) => (e, ()),
        (e, p) => {
            let mut errors = Vec::new();
            if let Err(e) = e {
                errors.push(FieldError::new("email", e.to_string()));
            }
            if let Err(p) = p {
                errors.push(FieldError::new("password", p.to_string()));
            }
            return Err(ApiError::Validation(errors));
        }
    };
    // Hash before looking at whether the email exists, so both outcomes cost the same.
    let hash = state.hasher.hash(body.password).await?;
    let id = rampart_core::token::new_id();
    let inserted = state
        .store
        .insert_user(&NewUser {
            id: &id,
            email: email.as_str(),
            email_normalized: email.normalized(),
            password_hash: &hash,
            roles: &["user"],
            now: now_ms(),
        })
        .await;
    let verification = state.config.require_email_verification();
    match inserted {
        Ok(user) => {
            record(
                &state,
                &ctx,
                Audit {
                    action: AuditEvent::Register,
                    actor_id: Some(&user.id),
                    target: Some(&user.id),
                    outcome: "success",
                },
            )
            .await;
            super::mailing::send_verification(&state, &user);
            if verification {
                return Ok(verification_sent());
            }
            let body = json!({
                "id": user.id,
                "email": user.email,
                "email_verified": user.email_verified,
                "created_at": rfc3339(user.created_at),
            });
            Ok((StatusCode::CREATED, Json(body)).into_response())
        }
        // With verification on, a taken email gets the very same answer, so registration cannot
        // be used to find out who has an account.
        Err(StoreError::Conflict) if verification => Ok(verification_sent()),
        Err(StoreError::Conflict) => Err(ApiError::Conflict("an account with this email already exists")),
        Err(e) => Err(e.into()),
    }
}

fn verification_sent() -> Response {
    (StatusCode::ACCEPTED, Json(json!({ "status": "verification_sent" }))).into_response()
}

//! `POST /auth/register`.
//!
//! Registration costs a hash, a row, an audit row and a mail, so it spends the login budgets
//! (per IP in the rate-limit layer, then the deployment-wide one here) before any of that: it
//! cannot be used to fill the hashing pool (every login would then answer 503), the tables, or
//! anyone's inbox. A taken email costs the same as a new one (the hash, one insert attempt, one
//! audit row, one background mail), so that with verification on neither the answer nor its
//! timing tells whether the address has an account.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use http::StatusCode;
use rampart_core::auth::hasher::HashError;
use rampart_core::clock::{now_ms, rfc3339};
use rampart_core::email::Email;
use rampart_store::{AuditEvent, AuditOutcome, NewUser, StoreError};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

use super::super::audit::{Audit, record};
use super::credentials::login_gate;
use crate::error::FieldError;
use crate::extract::{ApiJson, RequestContext};
use crate::middleware::LoginIpSpent;
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
    ip_spent: Option<Extension<LoginIpSpent>>,
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
    login_gate(&state, &ctx, None, ip_spent.map(|Extension(s)| s)).await?;
    if state.hasher.saturated() {
        return Err(HashError::Busy.into());
    }
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
                    outcome: AuditOutcome::Success,
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
        Err(StoreError::Conflict) => {
            taken(&state, &ctx, email.normalized()).await?;
            // With verification on, a taken email gets the very same answer, so registration
            // cannot be used to find out who has an account.
            if verification {
                return Ok(verification_sent());
            }
            Err(ApiError::Conflict("an account with this email already exists"))
        }
        Err(e) => Err(e.into()),
    }
}

/// Someone registered an address that has an account: audited, and the owner is told, with a
/// password-reset link (throttled per account). If the account is an attacker's claim on the
/// address (registered first, never verified), the reset gives it to the mailbox's owner and
/// voids the verification link mailed under the attacker's password.
async fn taken(state: &AppState, ctx: &RequestContext, email: &str) -> Result<(), ApiError> {
    let existing = state.store.user_by_email(email).await?;
    let event = Audit {
        action: AuditEvent::Register,
        actor_id: None,
        target: existing.as_ref().map_or(Some(email), |u| Some(u.id.as_str())),
        outcome: AuditOutcome::Failure,
    };
    record(state, ctx, event).await;
    if let Some(user) = &existing {
        super::mailing::send_signup_attempt(state, user);
    }
    Ok(())
}

fn verification_sent() -> Response {
    (StatusCode::ACCEPTED, Json(json!({ "status": "verification_sent" }))).into_response()
}

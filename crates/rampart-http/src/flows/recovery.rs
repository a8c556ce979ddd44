//! Getting back into an account by mail: asking for a reset, resetting with the mailed token,
//! and verifying the address with its mailed token.

use rampart_core::clock::now_ms;
use rampart_core::email::Email;
use rampart_store::{AuditEvent, AuditOutcome, Purpose};
use secrecy::SecretString;

use super::budget::spend_login_budgets;
use super::{AuthError, mailing};
use crate::AppState;
use crate::error::FieldError;
use crate::extract::{PresentedToken, RequestContext};
use crate::middleware::LoginIpSpent;
use crate::routes::audit_trail::{Audit, record};

/// A reset asked for `email`. Returns once the budgets are spent: everything that depends on
/// whether the account exists (the lookup, the token, the mail, the audit event) happens after,
/// in a background task, so neither the answer nor its timing tells.
pub async fn request_reset(
    state: &AppState,
    ctx: &RequestContext,
    email: &str,
    ip_spent: Option<LoginIpSpent>,
) -> Result<(), AuthError> {
    let email = Email::parse(email).map_err(|e| AuthError::field("email", e.to_string()))?;
    spend_login_budgets(state, ctx, Some(email.normalized()), ip_spent).await?;
    let (state, ctx) = (state.clone(), ctx.clone());
    tokio::spawn(async move {
        let found = match state.store.user_by_email(email.normalized()).await {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(error = %e, "forgot-password lookup failed; no mail sent");
                return;
            }
        };
        if let Some(user) = &found {
            mailing::send_reset(&state, user);
        }
        let event = Audit {
            action: AuditEvent::PasswordResetRequested,
            actor_id: found.as_ref().map(|u| u.id.as_str()),
            target: Some(email.normalized()),
            outcome: if found.is_some() { AuditOutcome::Success } else { AuditOutcome::Failure },
        };
        record(&state, &ctx, event).await;
    });
    Ok(())
}

/// A mailed token sets a new password, once; every login of the user ends and an automatic
/// lockout is lifted.
pub async fn reset_password(
    state: &AppState,
    ctx: &RequestContext,
    presented: &PresentedToken,
    new_password: SecretString,
) -> Result<(), AuthError> {
    let hash = presented.hash().ok_or(AuthError::InvalidMailedToken)?;
    // Looked up (not spent) first, so that a bad token costs no password hash.
    let user = state
        .store
        .account_token_user(hash.as_str(), Purpose::PasswordReset, now_ms())
        .await?
        .ok_or(AuthError::InvalidMailedToken)?;
    if let Err(e) = state.settings.auth.password_policy().check(&new_password, &[user.email_normalized.as_str()]) {
        return Err(AuthError::Invalid(vec![FieldError::new("new_password", e.to_string())]));
    }
    let new_hash = state.hasher.hash(new_password).await?;
    let now = now_ms();
    let revoked = state
        .store
        .reset_password(hash.as_str(), &user.id, &new_hash, now)
        .await?
        .ok_or(AuthError::InvalidMailedToken)?;
    state.revoke_token_logins(&revoked, now).await;
    let event = Audit {
        action: AuditEvent::PasswordResetCompleted,
        actor_id: Some(&user.id),
        target: Some(&user.id),
        outcome: AuditOutcome::Success,
    };
    record(state, ctx, event).await;
    Ok(())
}

/// A mailed token marks the address verified, once.
pub async fn verify_email(state: &AppState, ctx: &RequestContext, presented: &PresentedToken) -> Result<(), AuthError> {
    let hash = presented.hash().ok_or(AuthError::InvalidMailedToken)?;
    let user_id = state.store.verify_email(hash.as_str(), now_ms()).await?.ok_or(AuthError::InvalidMailedToken)?;
    let event = Audit {
        action: AuditEvent::EmailVerified,
        actor_id: Some(&user_id),
        target: Some(&user_id),
        outcome: AuditOutcome::Success,
    };
    record(state, ctx, event).await;
    Ok(())
}

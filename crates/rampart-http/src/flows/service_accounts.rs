//! Service accounts, below HTTP: creating one (`POST /admin/service-accounts` and the admin
//! console's form), and revoking one of its keys from the console.
//!
//! A service account is a user of kind `service`: no email and no password anyone knows (its
//! stored hash is of 256 random bits that were never kept), so no way of signing in can reach it.
//! It acts only through API keys an admin makes for it.

use rampart_core::clock::now_ms;
use rampart_store::{AuditEvent, AuditOutcome, NewServiceAccount, UserRow};

use crate::extract::RequestContext;
use crate::flows::admin_users::parse_roles;
use crate::routes::admin::page::invalid;
use crate::routes::audit_trail::{Audit, record};
use crate::{ApiError, AppState};

const NAME_MAX: usize = 100;

/// Creates a service account named `name` holding `roles`, made by `admin_id`.
pub async fn create(
    state: &AppState,
    ctx: &RequestContext,
    admin_id: &str,
    name: &str,
    roles: &[String],
) -> Result<UserRow, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > NAME_MAX || name.chars().any(char::is_control) {
        return Err(invalid("name", &format!("must be 1 to {NAME_MAX} characters, without control characters")));
    }
    let roles = parse_roles(roles, &state.settings.roles).map_err(ApiError::from)?;
    let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
    // A real hash of a secret nobody keeps: any path that ever compared a password with it would
    // find a wrong password, not an error or an empty hash that something could match.
    let (unknowable, _) = rampart_core::opaque_token::generate();
    let password_hash = state.hasher.hash(unknowable).await?;
    let id = rampart_core::opaque_token::new_id();
    let account = NewServiceAccount { id: &id, name, password_hash: &password_hash, roles: &roles, now: now_ms() };
    let user = state.store.insert_service_account(&account).await?;
    let event = Audit {
        action: AuditEvent::ServiceAccountCreated,
        actor_id: Some(admin_id),
        target: Some(&id),
        outcome: AuditOutcome::Success,
    };
    record(state, ctx, event).await;
    Ok(user)
}

/// The service account `id`; a person (or nobody) is 404: people make their own keys, and an
/// admin cannot make or revoke one in their name.
pub async fn account(state: &AppState, id: &str) -> Result<UserRow, ApiError> {
    state.store.user_by_id(id).await?.filter(UserRow::is_service).ok_or(ApiError::NotFound)
}

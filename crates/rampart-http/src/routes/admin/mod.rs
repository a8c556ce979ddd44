//! `/admin`: user management (including resetting a user's second factor), service accounts and
//! their API keys, and the audit log,
//! for role `admin` only.
//!
//! One `route_layer` puts the role check in front of every route here: 401 without credentials,
//! 403 with credentials but without the role (and an `authz_denied` audit event). It is added
//! after the routes so that it covers all of them; a route added below it would not be covered,
//! which is why it is the last call. The handlers also take `RequireRole<Admin>` (free: the layer
//! left its result in the request), so none of them can run without the check even if the layer
//! were dropped.

mod audit_log;
mod end_sessions;
mod mfa_reset;
pub(crate) mod page;
mod service_accounts;
pub(crate) mod users;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{delete, get, post};

use crate::AppState;
use crate::extract::{Admin, require};

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/users", get(users::list))
        .route("/users/{id}", get(users::get).patch(users::patch).delete(users::delete))
        .route("/users/{id}/mfa/reset", post(mfa_reset::reset))
        .route("/users/{id}/sessions", delete(end_sessions::end_all))
        .route("/audit", get(audit_log::list))
        .route("/service-accounts", post(service_accounts::create))
        .route("/users/{id}/api-keys", post(service_accounts::create_key))
        .route("/api-keys", get(service_accounts::list_keys))
        .route_layer(from_fn_with_state(state, require::<Admin>))
}

//! `/admin`: user management (including resetting a user's second factor), service accounts and
//! their API keys, and the audit log,
//! for role `admin` only.
//!
//! One `route_layer` puts the role check in front of every route here: 401 without credentials,
//! 403 with credentials but without the role (and an `authz_denied` audit event). It is the
//! `gate` that `routes` is given (`routes::router` passes the real one) and applies to the
//! finished routes, so that it covers all of them: a route added after it would not be covered. The handlers also take `RequireRole<Admin>` (free: the layer
//! left its result in the request), so none of them can run without the check even if the layer
//! were dropped.

mod audit_log;
mod end_sessions;
mod mfa_reset;
pub(crate) mod page;
mod service_accounts;
pub(crate) mod users;

use axum::routing::{delete, get, post};

use super::route_policy::{Caching, RoutePolicy, Routes};

/// Users, keys and the audit log: nothing may keep a copy, a cookie request must carry the CSRF
/// header, no API key (a leaked one could manage users). Also what an unmatched path under
/// `/admin` gets.
pub const ADMIN: RoutePolicy = RoutePolicy::JSON.caching(Caching::NoStore);

/// `gate`: the role check, given these routes and applied last (see the module doc).
pub fn routes(gate: impl FnOnce(Routes) -> Routes) -> Routes {
    gate(
        Routes::new()
            .route("/users", ADMIN, get(users::list))
            .route("/users/{id}", ADMIN, get(users::get).patch(users::patch).delete(users::delete))
            .route("/users/{id}/mfa/reset", ADMIN, post(mfa_reset::reset))
            .route("/users/{id}/sessions", ADMIN, delete(end_sessions::end_all))
            .route("/audit", ADMIN, get(audit_log::list))
            .route("/service-accounts", ADMIN, post(service_accounts::create))
            .route("/users/{id}/api-keys", ADMIN, post(service_accounts::create_key))
            .route("/api-keys", ADMIN, get(service_accounts::list_keys)),
    )
}

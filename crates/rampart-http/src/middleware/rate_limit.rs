//! The per-IP API budget (`rate_limit.api_per_ip_per_minute`), refused with 429 before any
//! handler, extractor or database work.
//!
//! Not every budget can be spent here: the login budgets are keyed partly on the account, which
//! is in the body, and the token endpoint's password grant is told apart from its refresh grant
//! only by the body. Those are spent by `routes::auth::credentials::login_gate`, the first thing
//! the shared credential check does. The per-user budget needs a verified identity, so it is
//! spent by the `Authenticated` extractor.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rampart_core::limit::Bucket;

use crate::extract::RequestContext;
use crate::{ApiError, AppState};

/// Probes that orchestrators call constantly and that do no work worth limiting; limiting them
/// would get a healthy instance killed during an attack.
const EXEMPT: &[&str] = &["/healthz", "/readyz"];

/// Routes under the strict login budget instead of this one (spent in their handler, see the
/// module comment). A route belongs here only if its handler calls `login_gate`: a route missing
/// from this list still gets the API budget, so forgetting it fails safe. (`/auth/token` is not
/// here: its refresh grant is an ordinary API request; its password grant spends both.)
const LOGIN_ROUTES: &[&str] = &["/auth/login"];

pub async fn rate_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if EXEMPT.contains(&path) || LOGIN_ROUTES.contains(&path) {
        return next.run(req).await;
    }
    // Set by the outermost layer; without it every request would share one bucket, which fails
    // closed rather than open.
    let ip = req.extensions().get::<RequestContext>().map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.ip);
    if let Err(refusal) = state.limiter.check(Bucket::ApiIp(ip)).await {
        return ApiError::RateLimited(refusal).into_response();
    }
    next.run(req).await
}

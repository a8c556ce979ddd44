//! The per-IP budgets, refused with 429 before any handler, extractor or database work: the API
//! budget (`rate_limit.api_per_ip_per_minute`) on every route but the probes and login.
//!
//! Also the per-IP login budget of `POST /auth/login`, `/auth/mfa/verify`,
//! `/auth/password/forgot` and `/auth/register` (see [`LOGIN_ROUTES`]). The other login
//! budgets are keyed partly on the account, which is in the body, and the token endpoint's
//! password grant is told apart from its refresh grant only by the body: those are spent by
//! `flows::budget::spend_login_budgets`, the first thing the password step does.
//! The per-user budget needs a verified identity, so it is spent by the `Authenticated`
//! extractor.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rampart_shared::limit::Bucket;

use crate::extract::RequestContext;
use crate::{ApiError, AppState};

/// Probes that orchestrators call constantly and that do no work worth limiting; limiting them
/// would get a healthy instance killed during an attack.
const EXEMPT: &[&str] = &["/healthz", "/readyz"];

/// Routes under the strict login budgets instead of this one. Their per-IP login budget is spent
/// here, before the body is even read, so that a client over it costs as little as possible; the
/// handler then spends the account and global budgets (see `flows::budget::spend_login_budgets`) and, told
/// by [`LoginIpSpent`], not the per-IP one again. A route missing from this list still gets the
/// API budget here and the full login gate in its handler, so forgetting it fails safe.
/// (`/auth/token` is not here: only its password grant is a login, and only the body says so.)
const LOGIN_ROUTES: &[&str] = &["/auth/login", "/auth/mfa/verify", "/auth/password/forgot", "/auth/register"];

/// Put in the request when this layer has spent the per-IP login budget. Only this module can
/// make one, so a handler cannot be told to skip the check by anything else.
#[derive(Debug, Clone, Copy)]
pub struct LoginIpSpent(());

pub async fn rate_limit(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if EXEMPT.contains(&path) {
        return next.run(req).await;
    }
    // Set by the outermost layer; without it every request would share one bucket, which fails
    // closed rather than open.
    let ip = req.extensions().get::<RequestContext>().map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.ip);
    if LOGIN_ROUTES.contains(&path) {
        if let Err(refusal) = state.limiter.check(Bucket::LoginIp(ip)).await {
            return ApiError::RateLimited(refusal).into_response();
        }
        req.extensions_mut().insert(LoginIpSpent(()));
        return next.run(req).await;
    }
    if let Err(refusal) = state.limiter.check(Bucket::ApiIp(ip)).await {
        return ApiError::RateLimited(refusal).into_response();
    }
    next.run(req).await
}

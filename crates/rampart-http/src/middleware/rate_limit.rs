//! The per-IP budgets, refused with 429 before any handler, extractor or database work, as the
//! route's policy says (`route_policy::Budget`): the API budget
//! (`rate_limit.api_per_ip_per_minute`) on every route but the probes and the login routes.
//!
//! The login routes (`Budget::Login`: `POST /auth/login`, `/auth/mfa/verify`,
//! `/auth/password/forgot`, `/auth/register`) spend the per-IP login budget here instead. The
//! other login budgets are keyed partly on the account, which is in the body, and the token
//! endpoint's password grant is told apart from its refresh grant only by the body: those are
//! spent by `flows::budget::spend_login_budgets`, the first thing the password step does (and
//! the passkey ceremonies and the sign-in pages spend the whole login budget there too).
//! The per-user budget needs a verified identity, so it is spent by the `Authenticated`
//! extractor.

use axum::extract::Request;
use rampart_shared::limit::Bucket;

use crate::extract::RequestContext;
use crate::routes::route_policy::Budget;
use crate::{ApiError, AppState};

/// Put in the request when this layer has spent the per-IP login budget. Only this module can
/// make one, so a handler cannot be told to skip the check by anything else. A login route
/// declared with the API budget instead still gets the full login gate in its flow (which spends
/// the per-IP budget itself without this), so a wrong declaration fails safe.
#[derive(Debug, Clone, Copy)]
pub struct LoginIpSpent(());

/// Spends the request's per-IP budget, as `budget` says.
pub async fn spend(state: &AppState, budget: Budget, req: &mut Request) -> Result<(), ApiError> {
    if budget == Budget::Exempt {
        return Ok(());
    }
    if budget == Budget::Login && req.extensions().get::<LoginIpSpent>().is_some() {
        // Already spent for this request, in front of the router (`middleware::front`).
        return Ok(());
    }
    // Set by the outermost layer; without it every request would share one bucket, which fails
    // closed rather than open.
    let ip = req.extensions().get::<RequestContext>().map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.ip);
    if budget == Budget::Login {
        let spent = spend_login_ip(state, ip).await?;
        req.extensions_mut().insert(spent);
        return Ok(());
    }
    if let Err(refusal) = state.limiter.check(Bucket::ApiIp(ip)).await {
        return Err(ApiError::RateLimited(refusal));
    }
    Ok(())
}

/// Spends one cell of `ip`'s login budget, before the body is even read, so that a client over
/// it costs as little as possible.
pub async fn spend_login_ip(state: &AppState, ip: std::net::IpAddr) -> Result<LoginIpSpent, ApiError> {
    state.limiter.check(Bucket::LoginIp(ip)).await.map_err(ApiError::RateLimited)?;
    Ok(LoginIpSpent(()))
}

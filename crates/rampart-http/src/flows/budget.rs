//! The login budgets: what every login-like attempt spends before any work is done for it.

use rampart_shared::limit::Bucket;

use super::AuthError;
use crate::AppState;
use crate::extract::RequestContext;
use crate::middleware::LoginIpSpent;

/// Spends one login attempt from the client's IP, the account's and the deployment's budgets,
/// in that order: a client over its own budget is refused before it can spend anyone else's.
/// Every login-like route (login, token password grant, MFA verify, forgot-password,
/// registration) calls this first; they share the one per-IP bucket. `account` is the normalized
/// email, known or not, so a refusal says nothing about whether the account exists; `None` for
/// registration, which spends only the per-IP and global budgets.
/// `ip_spent`: the rate-limit layer already spent the per-IP budget for this request (it does
/// for `POST /auth/login`, before reading the body).
pub async fn spend_login_budgets(
    state: &AppState,
    ctx: &RequestContext,
    account: Option<&str>,
    ip_spent: Option<LoginIpSpent>,
) -> Result<(), AuthError> {
    if ip_spent.is_none() {
        state.limiter.check(Bucket::LoginIp(ctx.ip)).await.map_err(AuthError::RateLimited)?;
    }
    if let Some(account) = account {
        state.limiter.check(Bucket::LoginAccount(account)).await.map_err(AuthError::RateLimited)?;
    }
    state.limiter.check(Bucket::LoginGlobal).await.map_err(AuthError::RateLimited)?;
    Ok(())
}

//! What a complete login grants: a cookie session, or a token login (an access token and a
//! rotating refresh token); and the refresh rotation of a token login.
//!
//! Refresh tokens are opaque, single use and rotated on every use. Presenting one that was already
//! used revokes its whole login (every refresh and access token of it) and is audited as
//! `refresh_token_reuse`, unless it is the same client racing itself: two tabs or two threads
//! refreshing at once (the Supabase auth #2136 complaint). That case is recognised narrowly: the
//! token was rotated less than `auth.refresh_reuse_grace` ago (10 s) by a request from the same IP
//! and User-Agent. It then gets a sibling token instead of a logout. A thief replaying a stolen
//! token from elsewhere, or later, triggers the revocation.

use rampart_core::clock::{Millis, duration_ms, now_ms};
use rampart_core::opaque_token;
use rampart_store::{
    AuditEvent, AuditOutcome, FirstRefresh, LoginOpened, NewAuditEvent, NewLogin, NewSession, RefreshRow, SessionKind,
    UserRow,
};
use secrecy::SecretString;

use super::attempt::locked;
use super::{AuthError, SignedIn};
use crate::AppState;
use crate::extract::{PresentedToken, RequestContext};
use crate::routes::audit_trail::{Audit, count, record};

/// A new cookie session: its opaque value (for the cookie, never stored) and its CSRF token.
pub struct CookieSession {
    pub value: SecretString,
    pub csrf_token: String,
}

/// A complete cookie login (password, and second factor if any): a new session. `carried` is a
/// session value the browser still sent: it is revoked rather than left alive beside the new one
/// (a login always starts a new session with a new value: no fixation).
pub async fn open_cookie_session(
    state: &AppState,
    ctx: &RequestContext,
    carried: Option<&str>,
    login: &SignedIn,
) -> Result<CookieSession, AuthError> {
    if let Some(old) = carried.map(PresentedToken::parse).and_then(|t| t.hash())
        && let Some(s) = state.store.session_by_hash(old.as_str()).await?
    {
        state.end_login(&s.session_id, &s.user.id).await?;
    }
    let (value, hash) = opaque_token::generate();
    let now = now_ms();
    let ends = now + duration_ms(state.settings.auth.session_absolute_timeout);
    start_login(state, ctx, login, SessionKind::Cookie, Some(hash.as_str()), None, now, ends).await?;
    let csrf_token = opaque_token::csrf_token(&value);
    Ok(CookieSession { value, csrf_token })
}

/// Signing out: ends the login the caller came with (cookie session or token login) and audits
/// `logout`. The JSON `POST /auth/logout` and the pages' sign-out button both end here.
pub async fn sign_out(
    state: &AppState,
    ctx: &RequestContext,
    user_id: &str,
    session_id: &str,
) -> Result<(), AuthError> {
    state.end_login(session_id, user_id).await?;
    let event = Audit {
        action: AuditEvent::Logout,
        actor_id: Some(user_id),
        target: Some(session_id),
        outcome: AuditOutcome::Success,
    };
    record(state, ctx, event).await;
    Ok(())
}

/// Opens a proven login (a cookie session, or a token login with no cookie value and its first
/// refresh token): the failure count reset, the login, the refresh token and the `login_success`
/// audit event in one transaction. Returns the login's id.
#[allow(clippy::too_many_arguments)] // the parts of one row, each named at the two call sites
async fn start_login(
    state: &AppState,
    ctx: &RequestContext,
    login: &SignedIn,
    kind: SessionKind,
    token_hash: Option<&str>,
    refresh: Option<FirstRefresh<'_>>,
    now: Millis,
    expires_at: Millis,
) -> Result<String, AuthError> {
    let user = login.user();
    let id = opaque_token::new_id();
    let ip = ctx.ip.to_string();
    let session = NewSession {
        id: &id,
        kind,
        token_hash,
        user_id: &user.id,
        now,
        expires_at,
        ip: Some(&ip),
        user_agent: ctx.user_agent.as_deref(),
    };
    let audit = NewAuditEvent {
        action: AuditEvent::LoginSuccess,
        actor_id: Some(&user.id),
        target: Some(&id),
        ip: Some(&ip),
        request_id: Some(&ctx.request_id),
        user_agent: ctx.user_agent.as_deref(),
        outcome: AuditOutcome::Success,
        now,
    };
    let new = NewLogin { session: &session, own_lock: login.own_lock(), refresh, method: login.method() };
    match state.store.open_login(&new, &audit).await? {
        LoginOpened::Opened => {
            count(audit.action, audit.outcome);
            Ok(id)
        }
        LoginOpened::Locked(until) => Err(locked(state, until, now)),
        LoginOpened::Gone => Err(AuthError::InvalidCredentials), // deleted meanwhile
    }
}

/// What a token login or a refresh hands out.
pub struct TokenGrant {
    pub access_token: String,
    /// Seconds.
    pub expires_in: u64,
    pub refresh_token: SecretString,
}

/// A new token login (password, and second factor if any): its id is the `sid` of every access
/// token it issues.
pub async fn open_token_login(
    state: &AppState,
    ctx: &RequestContext,
    login: &SignedIn,
) -> Result<TokenGrant, AuthError> {
    let now = now_ms();
    let login_ends = now + duration_ms(state.settings.auth.refresh_token_ttl);
    let ip = ctx.ip.to_string();
    let (refresh, refresh_hash) = opaque_token::generate();
    let first = FirstRefresh {
        token_hash: refresh_hash.as_str(),
        expires_at: refresh_expiry(state, now, login_ends),
        client: (&ip, ctx.user_agent.as_deref()),
    };
    let sid = start_login(state, ctx, login, SessionKind::Token, None, Some(first), now, login_ends).await?;
    grant(state, login.user(), &sid, refresh)
}

/// Rotates a refresh token: a new one (and a new access token) for a usable one; the whole login
/// revoked for a reused one, except for the same client racing itself (module docs).
pub async fn rotate_refresh(
    state: &AppState,
    ctx: &RequestContext,
    presented: &PresentedToken,
) -> Result<TokenGrant, AuthError> {
    let hash = presented.hash().ok_or(AuthError::InvalidRefreshToken)?;
    let row = state.store.refresh_by_hash(hash.as_str()).await?.ok_or(AuthError::InvalidRefreshToken)?;
    let now = now_ms();
    if row.session_revoked_at.is_some() || now >= row.session_expires_at || now >= row.token_expires_at {
        return Err(AuthError::InvalidRefreshToken);
    }
    let ip = ctx.ip.to_string();
    let (refresh, new_hash) = opaque_token::generate();
    let expires = refresh_expiry(state, now, row.session_expires_at);
    let client = (ip.as_str(), ctx.user_agent.as_deref());
    let rotated =
        state.store.rotate_refresh(hash.as_str(), new_hash.as_str(), &row.session_id, now, expires, client).await?;
    if !rotated {
        // Someone used this token before us. Read who, and when.
        let used = state.store.refresh_by_hash(hash.as_str()).await?.ok_or(AuthError::InvalidRefreshToken)?;
        let grace = duration_ms(state.settings.auth.refresh_reuse_grace);
        if !same_client_racing(&used, client, now, grace) {
            return Err(reuse_detected(state, ctx, &used).await);
        }
        // The same client racing itself: a sibling token in the same login.
        state.store.insert_refresh(new_hash.as_str(), &row.session_id, now, expires, client).await?;
    }
    grant(state, &row.user, &row.session_id, refresh)
}

/// The same client racing itself, not a replay: the token was rotated at most `grace` ago, by a
/// request from this IP and User-Agent, and its login is alive. See the module comment.
fn same_client_racing(used: &RefreshRow, (ip, user_agent): (&str, Option<&str>), now: Millis, grace: Millis) -> bool {
    used.session_revoked_at.is_none()
        && used.used_at.is_some_and(|at| now - at <= grace)
        && used.used_ip.as_deref() == Some(ip)
        && used.used_user_agent.as_deref() == user_agent
}

async fn reuse_detected(state: &AppState, ctx: &RequestContext, used: &RefreshRow) -> AuthError {
    if let Err(e) = state.end_login(&used.session_id, &used.user.id).await {
        return e.into();
    }
    tracing::warn!(sid = %used.session_id, "refresh token reuse: login revoked");
    let event = Audit {
        action: AuditEvent::RefreshTokenReuse,
        actor_id: Some(&used.user.id),
        target: Some(&used.session_id),
        outcome: AuditOutcome::Denied,
    };
    record(state, ctx, event).await;
    AuthError::InvalidRefreshToken
}

/// A refresh token dies after the idle timeout, and never outlives its login.
fn refresh_expiry(state: &AppState, now: Millis, login_ends: Millis) -> Millis {
    (now + duration_ms(state.settings.auth.refresh_token_idle_timeout)).min(login_ends)
}

/// Signs the access token beside the already stored refresh token.
fn grant(state: &AppState, user: &UserRow, sid: &str, refresh: SecretString) -> Result<TokenGrant, AuthError> {
    let (access_token, expires_in) =
        state.tokens.issue(&user.id, sid, user.roles()).map_err(|e| AuthError::Internal(format!("signing: {e}")))?;
    Ok(TokenGrant { access_token, expires_in, refresh_token: refresh })
}

#[cfg(test)]
mod tests {
    use rampart_store::UserRow;

    use super::*;

    fn used(at: Option<Millis>, ip: &str, ua: Option<&str>, revoked: Option<Millis>) -> RefreshRow {
        let user = UserRow {
            id: "u".into(),
            email: "u@example.com".into(),
            email_normalized: "u@example.com".into(),
            password_hash: String::new().into(),
            display_name: None,
            roles: "user".into(),
            email_verified: true,
            mfa_enabled: false,
            failed_logins: 0,
            locked_until: None,
            created_at: 0,
            updated_at: 0,
            kind: "person".into(),
        };
        RefreshRow {
            token_hash: "h".into(),
            session_id: "s".into(),
            token_expires_at: i64::MAX,
            used_at: at,
            used_ip: Some(ip.into()),
            used_user_agent: ua.map(str::to_owned),
            session_expires_at: i64::MAX,
            session_revoked_at: revoked,
            user,
        }
    }

    /// Only the same client, within the grace, on a live login, gets a sibling token; anything
    /// else that presents a used token is a replay (the login is revoked).
    #[test]
    fn the_refresh_grace_is_for_the_same_client_within_the_window_only() {
        let (now, grace) = (1_000_000, 10_000);
        let me = ("192.0.2.1", Some("app/1"));
        assert!(same_client_racing(&used(Some(now - 10_000), "192.0.2.1", Some("app/1"), None), me, now, grace));
        assert!(same_client_racing(&used(Some(now), "192.0.2.1", Some("app/1"), None), me, now, grace));
        // Later than the grace, from elsewhere, with another agent, on a revoked login, or never
        // used (cannot be a race).
        assert!(!same_client_racing(&used(Some(now - 10_001), "192.0.2.1", Some("app/1"), None), me, now, grace));
        assert!(!same_client_racing(&used(Some(now), "198.51.100.9", Some("app/1"), None), me, now, grace));
        assert!(!same_client_racing(&used(Some(now), "192.0.2.1", Some("curl/8"), None), me, now, grace));
        assert!(!same_client_racing(&used(Some(now), "192.0.2.1", None, None), me, now, grace));
        assert!(!same_client_racing(&used(Some(now), "192.0.2.1", Some("app/1"), Some(now)), me, now, grace));
        assert!(!same_client_racing(&used(None, "192.0.2.1", Some("app/1"), None), me, now, grace));
    }
}

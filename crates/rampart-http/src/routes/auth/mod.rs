//! `/auth`: registration, login, logout, CSRF token, the caller's own profile, second factor,
//! password change and recovery, email verification, the caller's sessions, passkeys and API keys.

mod api_keys;
pub(crate) use api_keys::audit_created;
mod email;
mod login;
mod me;
mod mfa;
mod passkeys;
mod password;
mod register;
mod sessions;
mod token;

use axum::routing::{delete, get, patch, post};

use super::route_policy::{ApiKeys, Budget, Caching, Csrf, RoutePolicy, Routes};

/// Credentials and the caller's own data: nothing may keep a copy; a cookie request must carry
/// the CSRF header; no API key (every route here manages credentials but `GET /me`). Also what
/// an unmatched path under `/auth` gets.
pub const ACCOUNT: RoutePolicy = RoutePolicy::JSON.caching(Caching::NoStore);
/// Routes that do not act through the session cookie: they create one, or authenticate by a
/// token in the body. No CSRF header (the Origin checks still stop login CSRF, a page logging the
/// victim into the attacker's account).
const NO_SESSION: RoutePolicy = ACCOUNT.csrf(Csrf::NoSession);
/// A login attempt whatever its body says: the per-IP login budget is spent before the body is
/// read, instead of the API budget (see [`Budget::Login`]).
const SIGN_IN: RoutePolicy = NO_SESSION.budget(Budget::Login);
/// Reading who one is: the one `/auth` route an API key may reach, and only to read.
const WHO_AM_I: RoutePolicy = ACCOUNT.api_keys(ApiKeys::ReadOnly);

pub fn routes() -> Routes {
    Routes::new()
        .route("/register", SIGN_IN, post(register::register))
        .route("/login", SIGN_IN, post(login::login))
        .route("/logout", ACCOUNT, post(login::logout))
        // Only the password grant is a login, and only the body says so: its flow spends the
        // login budgets.
        .route("/token", NO_SESSION, post(token::token))
        .route("/revoke", NO_SESSION, post(token::revoke))
        .route("/csrf", ACCOUNT, get(login::csrf))
        .route("/me", WHO_AM_I, get(me::get_me).patch(me::patch_me))
        .route("/api-keys", ACCOUNT, get(api_keys::list).post(api_keys::create))
        .route("/api-keys/{id}", ACCOUNT, delete(api_keys::revoke))
        .route("/api-keys/{id}/rotate", ACCOUNT, post(api_keys::rotate))
        .route("/sessions", ACCOUNT, get(sessions::list))
        .route("/sessions/{id}", ACCOUNT, delete(sessions::revoke))
        .route("/password/change", ACCOUNT, post(password::change))
        .route("/password/forgot", SIGN_IN, post(password::forgot))
        .route("/password/reset", NO_SESSION, post(password::reset))
        .route("/email/verify", NO_SESSION, post(email::verify))
        .route("/mfa/verify", SIGN_IN, post(mfa::verify))
        .route("/mfa/totp/setup", ACCOUNT, post(mfa::setup))
        .route("/mfa/totp/enable", ACCOUNT, post(mfa::enable))
        .route("/mfa/totp/disable", ACCOUNT, post(mfa::disable))
        // The passkey sign-in ceremonies spend the login budgets in their flow (`flows::passkeys`).
        .route("/mfa/passkey/start", NO_SESSION, post(passkeys::mfa_start))
        .route("/passkeys", ACCOUNT, get(passkeys::list))
        .route("/passkeys/{id}", ACCOUNT, patch(passkeys::rename).delete(passkeys::remove))
        .route("/passkeys/register/start", ACCOUNT, post(passkeys::register_start))
        .route("/passkeys/register/finish", ACCOUNT, post(passkeys::register_finish))
        .route("/passkeys/login/start", NO_SESSION, post(passkeys::login_start))
        .route("/passkeys/login/finish", NO_SESSION, post(passkeys::login_finish))
}

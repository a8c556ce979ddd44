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

use axum::Router;
use axum::routing::{delete, get, patch, post};

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/register", post(register::register))
        .route("/login", post(login::login))
        .route("/logout", post(login::logout))
        .route("/token", post(token::token))
        .route("/revoke", post(token::revoke))
        .route("/csrf", get(login::csrf))
        .route("/me", get(me::get_me).patch(me::patch_me))
        .route("/api-keys", get(api_keys::list).post(api_keys::create))
        .route("/api-keys/{id}", delete(api_keys::revoke))
        .route("/api-keys/{id}/rotate", post(api_keys::rotate))
        .route("/sessions", get(sessions::list))
        .route("/sessions/{id}", delete(sessions::revoke))
        .route("/password/change", post(password::change))
        .route("/password/forgot", post(password::forgot))
        .route("/password/reset", post(password::reset))
        .route("/email/verify", post(email::verify))
        .route("/mfa/verify", post(mfa::verify))
        .route("/mfa/totp/setup", post(mfa::setup))
        .route("/mfa/totp/enable", post(mfa::enable))
        .route("/mfa/totp/disable", post(mfa::disable))
        .route("/mfa/passkey/start", post(passkeys::mfa_start))
        .route("/passkeys", get(passkeys::list))
        .route("/passkeys/{id}", patch(passkeys::rename).delete(passkeys::remove))
        .route("/passkeys/register/start", post(passkeys::register_start))
        .route("/passkeys/register/finish", post(passkeys::register_finish))
        .route("/passkeys/login/start", post(passkeys::login_start))
        .route("/passkeys/login/finish", post(passkeys::login_finish))
}

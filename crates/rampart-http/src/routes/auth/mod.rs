//! `/auth`: registration, login, logout, CSRF token, the caller's own profile.

mod credentials;
mod login;
mod me;
mod register;
mod token;

use axum::Router;
use axum::routing::{get, post};

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
}

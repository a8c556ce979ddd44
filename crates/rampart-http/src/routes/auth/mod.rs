//! `/auth`: registration, login, logout, CSRF token, the caller's own profile.

mod login;
mod me;
mod register;

use axum::Router;
use axum::routing::{get, post};

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/register", post(register::register))
        .route("/login", post(login::login))
        .route("/logout", post(login::logout))
        .route("/csrf", get(login::csrf))
        .route("/me", get(me::get_me).patch(me::patch_me))
}

//! `/ui`: server-rendered pages for people, on the same listener, origin, session cookie and
//! CSRF token as the JSON API (contract: docs/api.md, "/ui").
//!
//! How the pieces fit:
//! - [`layout`]: the frame of every page ([`layout::Page`]) and the HTML response;
//! - [`forms`]: the only ways a handler reads a form ([`forms::SignedInForm`],
//!   [`forms::PreSessionForm`]), the inputs and the error summary, and [`forms::Failure`],
//!   which shows a flow's refusal with the status and words the API would have used;
//! - [`session`]: [`session::SignedIn`], the page visitor (anonymous → 303 to `/ui/login`);
//! - [`presession`]: the token of forms shown before sign-in (login CSRF);
//! - [`assets`]: the one stylesheet and the one script, content-hashed;
//! - [`problem_page`]: every error under `/ui` as a page;
//! - one module per page, each calling the same `flows` as the JSON handlers.
//!
//! The page CSP and `Cache-Control: no-store` are set by the `security_headers` layer for every
//! path under `/ui`. With `[ui] enabled = false` none of this is routed: `/ui/*` is 404.

pub mod account;
pub mod admin;
pub mod api_keys;
pub mod assets;
pub mod forms;
pub mod layout;
pub mod login;
pub mod mfa;
pub mod notice;
pub mod passkeys;
pub mod presession;
pub mod problem_page;
pub mod recovery;
pub mod register;
pub mod session;
pub mod signing_in;
pub mod totp;

use axum::Router;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::AppState;
use session::MaybeSignedIn;

/// The pages, with their full paths (merged into the main router, not nested, so that both
/// `/ui` and `/ui/` are the start page).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui", get(start))
        .route("/ui/", get(start))
        .route("/ui/assets/{name}", get(assets::serve))
        .route("/ui/login", get(login::show).post(login::submit))
        .route("/ui/mfa", get(mfa::show).post(mfa::submit))
        .route("/ui/mfa/passkey", post(mfa::submit_passkey))
        .route("/ui/mfa/passkey/start", post(passkeys::mfa_start))
        .route("/ui/register", get(register::show).post(register::submit))
        .route("/ui/forgot", get(recovery::show_forgot).post(recovery::submit_forgot))
        .route("/ui/reset", get(recovery::show_reset).post(recovery::submit_reset))
        .route("/ui/verify", get(recovery::show_verify).post(recovery::submit_verify))
        .route("/ui/account", get(account::show))
        .route("/ui/account/profile", post(account::save_profile))
        .route("/ui/account/password", post(account::change_password_form))
        .route("/ui/account/sessions/revoke", post(account::revoke_session))
        .route("/ui/account/passkeys/{id}/rename", post(passkeys::rename))
        .route("/ui/account/passkeys/{id}/remove", post(passkeys::remove))
        .route("/ui/account/api-keys", post(api_keys::create))
        .route("/ui/account/api-keys/revoke", post(api_keys::revoke))
        .route("/ui/account/mfa", get(totp::show))
        .route("/ui/account/mfa/setup", post(totp::setup))
        .route("/ui/account/mfa/enable", post(totp::enable))
        .route("/ui/account/mfa/disable", post(totp::disable))
        .route("/ui/logout", post(account::logout))
        .nest("/ui/admin", admin::router())
}

/// Whether `path` is one of the pages' (`/ui` or below it).
pub fn is_ui_path(path: &str) -> bool {
    path == "/ui" || path.starts_with("/ui/")
}

/// `GET /ui/`: the account when signed in, else the sign-in page.
async fn start(MaybeSignedIn(viewer): MaybeSignedIn) -> Response {
    match viewer {
        Some(_) => Redirect::to("/ui/account").into_response(),
        None => Redirect::to("/ui/login").into_response(),
    }
}

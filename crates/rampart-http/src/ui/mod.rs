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
//! Every route here is declared with its policy ([`PAGE`]: the page CSP, `Cache-Control:
//! no-store`, the CSRF token in the form; see `routes::route_policy`), which the outer layers
//! apply. The sign-in pages spend the API budget in the layer and the whole login budget in
//! their flow, as the JSON routes that read the account from the body do. With `[ui] enabled =
//! false` none of this is routed: `/ui/*` is 404, still with the pages' headers.

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

use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::routes::route_policy::{Caching, Content, Csrf, RoutePolicy, Routes};
use session::MaybeSignedIn;

/// A page: the page CSP, nothing may keep a copy (pages show credentials and admin data), the
/// CSRF token travels in the form (see [`Csrf::Form`]), no API key (only the session cookie opens
/// a page). Also what an unmatched path under `/ui` gets, pages on or off.
pub const PAGE: RoutePolicy = RoutePolicy::JSON.content(Content::Page).caching(Caching::NoStore).csrf(Csrf::Form);
/// The stylesheet and the script: they set their own `Cache-Control` (`immutable`: their names
/// change with their content).
const ASSET: RoutePolicy = PAGE.caching(Caching::ByHandler);

/// The pages, with their full paths (merged into the main router, not nested, so that both
/// `/ui` and `/ui/` are the start page).
pub fn routes() -> Routes {
    Routes::new()
        .unmatched("/ui", PAGE)
        .unmatched("/ui/assets", ASSET)
        .route("/ui", PAGE, get(start))
        .route("/ui/", PAGE, get(start))
        .route("/ui/assets/{name}", ASSET, get(assets::serve))
        .route("/ui/login", PAGE, get(login::show).post(login::submit))
        .route("/ui/mfa", PAGE, get(mfa::show).post(mfa::submit))
        .route("/ui/mfa/passkey", PAGE, post(mfa::submit_passkey))
        .route("/ui/mfa/passkey/start", PAGE, post(passkeys::mfa_start))
        .route("/ui/register", PAGE, get(register::show).post(register::submit))
        .route("/ui/forgot", PAGE, get(recovery::show_forgot).post(recovery::submit_forgot))
        .route("/ui/reset", PAGE, get(recovery::show_reset).post(recovery::submit_reset))
        .route("/ui/verify", PAGE, get(recovery::show_verify).post(recovery::submit_verify))
        .route("/ui/account", PAGE, get(account::show))
        .route("/ui/account/profile", PAGE, post(account::save_profile))
        .route("/ui/account/password", PAGE, post(account::change_password_form))
        .route("/ui/account/sessions/revoke", PAGE, post(account::revoke_session))
        .route("/ui/account/passkeys/{id}/rename", PAGE, post(passkeys::rename))
        .route("/ui/account/passkeys/{id}/remove", PAGE, post(passkeys::remove))
        .route("/ui/account/api-keys", PAGE, post(api_keys::create))
        .route("/ui/account/api-keys/revoke", PAGE, post(api_keys::revoke))
        .route("/ui/account/mfa", PAGE, get(totp::show))
        .route("/ui/account/mfa/setup", PAGE, post(totp::setup))
        .route("/ui/account/mfa/enable", PAGE, post(totp::enable))
        .route("/ui/account/mfa/disable", PAGE, post(totp::disable))
        .route("/ui/logout", PAGE, post(account::logout))
        .nest("/ui/admin", PAGE, admin::routes())
}

/// `GET /ui/`: the account when signed in, else the sign-in page.
async fn start(MaybeSignedIn(viewer): MaybeSignedIn) -> Response {
    match viewer {
        Some(_) => Redirect::to("/ui/account").into_response(),
        None => Redirect::to("/ui/login").into_response(),
    }
}

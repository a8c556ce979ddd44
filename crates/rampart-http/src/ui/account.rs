//! `/ui/account`: the signed-in visitor's own page.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use http::{StatusCode, header};
use maud::html;
use serde::Deserialize;

use super::forms::SignedInForm;
use super::layout::Page;
use super::session::SignedIn;
use crate::AppState;
use crate::cookie::clear_session;
use crate::extract::RequestContext;
use crate::flows::sessions::sign_out;

pub async fn show(State(state): State<AppState>, me: SignedIn) -> Response {
    let user = &me.user;
    let content = html! {
        h1 { "Your account" }
        p class="lead" { "Signed in as " strong { (user.email) } }
        section class="card" aria-labelledby="profile-title" {
            h2 id="profile-title" { "Profile" }
            dl class="facts" {
                dt { "Display name" }
                dd { @match &user.display_name { Some(name) => (name), None => span class="muted" { "Not set" } } }
                dt { "Email" }
                dd {
                    (user.email) " "
                    @if user.email_verified { span class="badge ok" { "Verified" } }
                    @else { span class="badge warn" { "Not verified" } }
                }
                dt { "Two-step verification" }
                dd {
                    @if user.mfa_enabled { span class="badge ok" { "On" } }
                    @else { span class="badge" { "Off" } }
                }
            }
        }
    };
    Page::signed_in("Account", &me, "/ui/account").respond(&state, StatusCode::OK, content)
}

/// No fields besides the CSRF token.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// `POST /ui/logout`: ends this session (the flow the JSON `POST /auth/logout` uses), clears the
/// cookie, 303 to the sign-in page.
#[tracing::instrument(skip_all)]
pub async fn logout(
    State(state): State<AppState>,
    ctx: RequestContext,
    SignedInForm { signed_in, .. }: SignedInForm<Empty>,
) -> Response {
    if let Err(e) = sign_out(&state, &ctx, &signed_in.user.id, &signed_in.session_id).await {
        return crate::ApiError::from(e).into_response();
    }
    let mut res = Redirect::to("/ui/login").into_response();
    res.headers_mut().append(header::SET_COOKIE, clear_session());
    res
}

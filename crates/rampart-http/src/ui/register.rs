//! `/ui/register`: a new account through `flows::registration::register`, as
//! `POST /auth/register` does (budgets, password policy, the same answer for a taken address when
//! verification is required).

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use http::StatusCode;
use maud::{Markup, html};
use secrecy::SecretString;
use serde::Deserialize;

use super::forms::{Failure, FormErrors, Input, PreSessionForm, csrf_input};
use super::layout::Page;
use super::presession::PreSession;
use crate::AppState;
use crate::extract::RequestContext;
use crate::flows::registration::{Registered, register};

pub async fn show(State(state): State<AppState>, pre: PreSession) -> Response {
    pre.respond(StatusCode::OK, page(&state, &pre, None, &FormErrors::none()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterForm {
    email: String,
    password: SecretString,
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn submit(
    State(state): State<AppState>,
    ctx: RequestContext,
    PreSessionForm { form, pre }: PreSessionForm<RegisterForm>,
) -> Response {
    match register(&state, &ctx, &form.email, form.password, None).await {
        Ok(Registered::Created(_)) => Redirect::to("/ui/login?notice=registered").into_response(),
        Ok(Registered::VerificationSent) => Redirect::to("/ui/login?notice=verify_sent").into_response(),
        Err(e) => Failure::of(e)
            .await
            .respond(|status, errors| pre.respond(status, page(&state, &pre, Some(&form.email), errors))),
    }
}

fn page(state: &AppState, pre: &PreSession, email: Option<&str>, errors: &FormErrors) -> Markup {
    let content = html! {
        div class="card" {
            h1 { "Create your account" }
            p class="lead" { "It takes a minute. You can add two-step verification afterwards." }
            (errors.summary())
            form class="stack" method="post" action="/ui/register" novalidate {
                (csrf_input(pre.token()))
                (Input::new("email", "Email", "email").autocomplete("username").value(email).render(errors))
                (Input::new("password", "Password", "password")
                    .autocomplete("new-password")
                    .hint("At least 8 characters and hard to guess: a few unrelated words work well.")
                    .render(errors))
                button type="submit" class="wide" { "Create account" }
            }
            div class="below-form" {
                span { "Already have an account? " a href="/ui/login" { "Sign in" } }
            }
        }
    };
    Page::anonymous("Create account").render(state, content)
}

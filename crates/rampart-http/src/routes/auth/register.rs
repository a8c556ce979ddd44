//! `POST /auth/register`: see [`crate::flows::registration`].

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use http::StatusCode;
use rampart_core::clock::rfc3339;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

use crate::extract::{ApiJson, RequestContext};
use crate::flows::registration::{self, Registered};
use crate::middleware::LoginIpSpent;
use crate::{ApiError, AppState};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    email: String,
    password: SecretString,
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn register(
    State(state): State<AppState>,
    ctx: RequestContext,
    ip_spent: Option<Extension<LoginIpSpent>>,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<Response, ApiError> {
    let ip_spent = ip_spent.map(|Extension(s)| s);
    match registration::register(&state, &ctx, &body.email, body.password, ip_spent).await? {
        Registered::VerificationSent => {
            Ok((StatusCode::ACCEPTED, Json(json!({ "status": "verification_sent" }))).into_response())
        }
        Registered::Created(user) => {
            let body = json!({
                "id": user.id,
                "email": user.email,
                "email_verified": user.email_verified,
                "created_at": rfc3339(user.created_at),
            });
            Ok((StatusCode::CREATED, Json(body)).into_response())
        }
    }
}

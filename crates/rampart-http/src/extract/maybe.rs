//! `MaybeAuthenticated`: for routes that anonymous callers may use (a `public` resource rule).
//! No credentials: `None`. Credentials that do not verify: 401, never silently anonymous.

use axum::extract::FromRequestParts;
use http::header;
use http::request::Parts;

use super::Authenticated;
use crate::cookie::session_value;
use crate::{ApiError, AppState};

pub struct MaybeAuthenticated(pub Option<Authenticated>);

impl FromRequestParts<AppState> for MaybeAuthenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if !parts.headers.contains_key(header::AUTHORIZATION) && session_value(&parts.headers).is_none() {
            return Ok(Self(None));
        }
        Authenticated::from_request_parts(parts, state).await.map(|a| Self(Some(a)))
    }
}

//! `GET /auth/me`, `PATCH /auth/me`.

use axum::Json;
use axum::extract::State;
use rampart_core::clock::now_ms;
use serde::{Deserialize, Deserializer};

use crate::error::FieldError;
use crate::extract::{ApiJson, Authenticated};
use crate::views::UserView;
use crate::{ApiError, AppState};

pub async fn get_me(auth: Authenticated) -> Json<UserView> {
    Json(UserView::from(&auth.user))
}

/// Only `display_name` may be changed here; roles, email_verified, id and anything else are
/// unknown fields and refused (no mass assignment).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchMe {
    /// Absent: unchanged. `null`: cleared.
    #[serde(default, deserialize_with = "present")]
    display_name: Option<Option<String>>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

const DISPLAY_NAME_MAX: usize = 100;

#[tracing::instrument(skip_all)]
pub async fn patch_me(
    State(state): State<AppState>,
    auth: Authenticated,
    ApiJson(body): ApiJson<PatchMe>,
) -> Result<Json<UserView>, ApiError> {
    let Some(name) = body.display_name else {
        return Ok(Json(UserView::from(&auth.user)));
    };
    let name = name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if let Some(n) = &name {
        let problem = if n.chars().count() > DISPLAY_NAME_MAX {
            Some(format!("must be at most {DISPLAY_NAME_MAX} characters"))
        } else if n.chars().any(char::is_control) {
            Some("must not contain control characters".to_owned())
        } else {
            None
        };
        if let Some(message) = problem {
            return Err(ApiError::Validation(vec![FieldError::new("display_name", message)]));
        }
    }
    let updated = state.store.set_display_name(&auth.user.id, name.as_deref(), now_ms()).await?;
    let user = updated.ok_or(ApiError::Unauthorized("invalid or expired session"))?;
    Ok(Json(UserView::from(&user)))
}

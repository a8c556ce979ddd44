//! `GET /auth/me`, `PATCH /auth/me`.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Deserializer};

use crate::extract::{ApiJson, Authenticated};
use crate::flows::account;
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

#[tracing::instrument(level = "debug", skip_all)]
pub async fn patch_me(
    State(state): State<AppState>,
    auth: Authenticated,
    ApiJson(body): ApiJson<PatchMe>,
) -> Result<Json<UserView>, ApiError> {
    let Some(name) = body.display_name else {
        return Ok(Json(UserView::from(&auth.user)));
    };
    let updated = account::set_display_name(&state, &auth.user.id, name).await?;
    let user = updated.ok_or(ApiError::Unauthorized("invalid or expired session"))?;
    Ok(Json(UserView::from(&user)))
}

//! Public ids taken from the path: a user, session or record id is a UUID, and anything else names
//! nothing. Checked here, once, and answered 404 without a query, like an unknown id.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path};
use http::request::Parts;

use crate::ApiError;

/// The `{id}` of the path, as the hyphenated lowercase UUID it spells (any spelling the `uuid`
/// crate reads is accepted, so one record has one id whatever the client typed).
pub struct IdPath(pub String);

/// `/{resource}/{id}`: the resource name as given (the handler looks it up among the declared
/// ones) and the record id, checked like [`IdPath`].
pub struct RecordPath {
    pub resource: String,
    pub id: String,
}

fn param(params: &HashMap<String, String>, name: &str) -> Result<String, ApiError> {
    params.get(name).cloned().ok_or(ApiError::NotFound)
}

fn uuid(raw: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(raw).map(|u| u.hyphenated().to_string()).map_err(|_| ApiError::NotFound)
}

async fn params<S: Send + Sync>(parts: &mut Parts, state: &S) -> Result<HashMap<String, String>, ApiError> {
    let Path(params) =
        Path::<HashMap<String, String>>::from_request_parts(parts, state).await.map_err(|_| ApiError::NotFound)?;
    Ok(params)
}

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let params = params(parts, state).await?;
        Ok(IdPath(uuid(&param(&params, "id")?)?))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RecordPath {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let params = params(parts, state).await?;
        Ok(RecordPath { resource: param(&params, "resource")?, id: uuid(&param(&params, "id")?)? })
    }
}

//! Public ids taken from the path: a user, session or record id is a UUID, and anything else names
//! nothing. Checked here, once, and answered 404 without a query, like an unknown id.

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

/// The parameter `name`, taken out of `params`.
fn param(params: &mut Vec<(String, String)>, name: &str) -> Result<String, ApiError> {
    let at = params.iter().position(|(key, _)| key == name).ok_or(ApiError::NotFound)?;
    Ok(params.swap_remove(at).1)
}

/// Written into a stack buffer, not through `Display` (the formatting machinery cost a few
/// hundred instructions on every request naming a record, callgrind, issue 17).
fn uuid(raw: &str) -> Result<String, ApiError> {
    let parsed = uuid::Uuid::parse_str(raw).map_err(|_| ApiError::NotFound)?;
    Ok(parsed.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()).to_owned())
}

/// The path's parameters in a list: two at most, where a `HashMap` cost a SipHash per key.
async fn params<S: Send + Sync>(parts: &mut Parts, state: &S) -> Result<Vec<(String, String)>, ApiError> {
    let Path(params) =
        Path::<Vec<(String, String)>>::from_request_parts(parts, state).await.map_err(|_| ApiError::NotFound)?;
    Ok(params)
}

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let mut params = params(parts, state).await?;
        Ok(IdPath(uuid(&param(&mut params, "id")?)?))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RecordPath {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let mut params = params(parts, state).await?;
        Ok(RecordPath { resource: param(&mut params, "resource")?, id: uuid(&param(&mut params, "id")?)? })
    }
}

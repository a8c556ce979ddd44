//! `ApiJson<T>`: the only way a handler receives a body.
//!
//! In order, each refusal cheap and before any work: wrong content type (415), body over
//! `limits.max_body_bytes` (413, judged from Content-Length before reading when it is given),
//! nesting deeper than `limits.max_json_depth` (400, counted on the raw bytes before parsing),
//! then typed deserialization with unknown fields refused (400 naming the field).

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use http::header;
use serde::de::DeserializeOwned;

use crate::error::FieldError;
use crate::{ApiError, AppState};

pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let limits = &state.settings.limits;
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        if declares_more_than(req.headers(), limits.max_body_bytes) {
            return Err(ApiError::PayloadTooLarge(limits.max_body_bytes));
        }
        let bytes = read_body(req.into_body(), limits.max_body_bytes).await?;
        // Only an object: serde would otherwise read an array positionally into a struct
        // (`["a@b.c", "pw"]` as email and password), which no client means and no schema says.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::BadRequest("the body must be a JSON object".into()));
        }
        if json_depth_exceeds(&bytes, limits.max_json_depth) {
            return Err(ApiError::BadRequest(format!("JSON nested deeper than {} levels", limits.max_json_depth)));
        }
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            field_error(&path, &e.into_inner())
        })?;
        de.end().map_err(|_| ApiError::BadRequest("trailing characters after the JSON body".into()))?;
        Ok(ApiJson(value))
    }
}

fn is_json(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// Whether the request's `Content-Length` says its body is over `limit` bytes (false when there
/// is none or it is not a number: the read itself is bounded).
pub(crate) fn declares_more_than(headers: &http::HeaderMap, limit: usize) -> bool {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    declared.is_some_and(|n| n > limit as u64)
}

pub(crate) async fn read_body(body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(err) = source {
            if err.is::<http_body_util::LengthLimitError>() {
                return ApiError::PayloadTooLarge(limit);
            }
            source = err.source();
        }
        ApiError::BadRequest("the body could not be read".into())
    })
}

/// True when the JSON text opens more than `max` nested arrays/objects. Counts brackets outside
/// strings on the raw bytes, so a 200-deep body costs one linear scan and no allocation.
pub fn json_depth_exceeds(bytes: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Turns serde's message into a field-level error a client can act on.
fn field_error(path: &str, e: &serde_json::Error) -> ApiError {
    let msg = e.to_string();
    // serde_json appends " at line 1 column 9"; position is noise for a field error.
    let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
    if e.is_syntax() || e.is_eof() {
        return ApiError::BadRequest(format!("malformed JSON: {msg}"));
    }
    let parent = if path == "." { String::new() } else { format!("{path}.") };
    if let Some(name) = backticked(&msg, "unknown field `") {
        // serde_path_to_error already ends the path with the unknown key itself.
        let field = if path == name || path.ends_with(&format!(".{name}")) {
            path.to_owned()
        } else {
            format!("{parent}{name}")
        };
        return ApiError::Validation(vec![FieldError::new(field, "unknown field")]);
    }
    if let Some(name) = backticked(&msg, "missing field `") {
        return ApiError::Validation(vec![FieldError::new(format!("{parent}{name}"), "is required")]);
    }
    let message = match msg.strip_prefix("invalid type: ").and_then(|r| r.split_once(", expected ")) {
        Some((got, expected)) => format!("must be {expected}, not {got}"),
        None => msg,
    };
    if path == "." {
        // serde names our Rust types here ("struct LoginRequest"): say it plainly instead.
        return ApiError::BadRequest("the body must be a JSON object".into());
    }
    ApiError::Validation(vec![FieldError::new(path, message)])
}

fn backticked<'a>(msg: &'a str, prefix: &str) -> Option<&'a str> {
    msg.strip_prefix(prefix).and_then(|r| r.split('`').next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth() {
        let deep = "[".repeat(33) + &"]".repeat(33);
        assert!(json_depth_exceeds(deep.as_bytes(), 32));
        let ok = "[".repeat(32) + &"]".repeat(32);
        assert!(!json_depth_exceeds(ok.as_bytes(), 32));
        let in_string = format!("{{\"a\": \"{}\"}}", "[".repeat(100));
        assert!(!json_depth_exceeds(in_string.as_bytes(), 32));
        let escaped = format!("{{\"a\": \"\\\"{}\"}}", "[".repeat(100));
        assert!(!json_depth_exceeds(escaped.as_bytes(), 32));
    }
}

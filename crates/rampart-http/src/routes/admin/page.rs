//! Query parameters and paging shared by the admin lists.
//!
//! A list answers `{items, next_cursor}`. The cursor is opaque to clients: a position
//! (`<created_at>:<id>`, `<seq>`) sealed for its list (see `rampart_core::cursor`), so it can only
//! be passed back, not built or edited by hand; one list's cursor given to the other is refused
//! like any malformed one. Behind the seal, each list still parses its position strictly.

use std::collections::HashMap;

use axum::extract::Query;
use http::Uri;
use rampart_core::cursor::CursorSeal;
use serde::Serialize;

use crate::ApiError;
use crate::error::FieldError;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 100;

#[derive(Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// `rows` were fetched with `limit + 1`: an extra row means there is a next page, which
    /// starts after the last row shown.
    pub fn from_rows<R>(mut rows: Vec<R>, limit: u32, view: impl Fn(&R) -> T, cursor: impl Fn(&R) -> String) -> Self {
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = if more { rows.last().map(&cursor) } else { None };
        Self { items: rows.iter().map(view).collect(), next_cursor }
    }
}

/// The query string as name → value. A name the route does not declare, or one given twice, is
/// 400 naming it (as unknown body fields are): `?page=2` silently ignored would be a surprise.
/// An empty value counts as absent, so `?cursor=` is the first page.
pub fn params(uri: &Uri, allowed: &[&'static str]) -> Result<HashMap<&'static str, String>, ApiError> {
    let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map_err(|_| ApiError::BadRequest("the query string could not be read".into()))?;
    let mut out = HashMap::new();
    for (name, value) in pairs {
        let Some(&known) = allowed.iter().find(|a| **a == name) else {
            return Err(invalid(&name, "unknown query parameter"));
        };
        if out.contains_key(known) {
            return Err(invalid(known, "given more than once"));
        }
        if !value.is_empty() {
            out.insert(known, value);
        }
    }
    Ok(out)
}

pub fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::Validation(vec![FieldError::new(field, message)])
}

/// `limit`: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
pub fn limit(raw: Option<&String>) -> Result<u32, ApiError> {
    let Some(raw) = raw else { return Ok(DEFAULT_LIMIT) };
    match raw.parse::<u32>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(invalid("limit", &format!("must be a whole number from 1 to {MAX_LIMIT}"))),
    }
}

/// The cursor of `position` in the admin list `list` (`users`, `audit`).
pub fn encode_cursor(seal: &CursorSeal, list: &str, position: &str) -> String {
    seal.seal(&format!("admin/{list}"), position.as_bytes())
}

/// The position inside a cursor of this list, or 400 naming `cursor`.
pub fn decode_cursor(seal: &CursorSeal, list: &str, raw: &str) -> Result<String, ApiError> {
    let bad = || invalid("cursor", "is not a cursor this list gave out");
    let bytes = seal.open(&format!("admin/{list}"), raw).ok_or_else(bad)?;
    String::from_utf8(bytes).map_err(|_| bad())
}

/// A UUID in its usual 8-4-4-4-12 hex form. Public ids are UUIDv4; anything else cannot name a
/// user or an actor, and is answered without a query.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { c == '-' } else { c.is_ascii_hexdigit() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_are_bound_to_their_list() {
        let seal = CursorSeal::new(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"test"));
        let c = encode_cursor(&seal, "audit", "42");
        assert_eq!(decode_cursor(&seal, "audit", &c).ok().as_deref(), Some("42"));
        assert!(decode_cursor(&seal, "users", &c).is_err());
        // The unsealed hex form of earlier versions is not a cursor any more.
        for bad in ["", "zz", "abc", "00", "61756469743a3432", &"a".repeat(300)] {
            assert!(decode_cursor(&seal, "audit", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn uuids() {
        assert!(is_uuid("8cdeda35-5950-4157-96c5-4dd18860108a"));
        assert!(!is_uuid("8cdeda35-5950-4157-96c5-4dd18860108"));
        assert!(!is_uuid("8cdeda35x5950-4157-96c5-4dd18860108a"));
        assert!(!is_uuid("' OR 1=1 --"));
    }

    #[test]
    fn limits() {
        assert_eq!(limit(None).ok(), Some(DEFAULT_LIMIT));
        assert_eq!(limit(Some(&"100".into())).ok(), Some(100));
        for bad in ["0", "101", "-1", "ten", "1.5"] {
            assert!(limit(Some(&bad.into())).is_err(), "{bad}");
        }
    }
}

//! `GET /api/{resource}`: typed filters and sort on declared fields only, keyset pagination.
//!
//! Query parameters: `limit` (1..=100, default 50), `cursor` (opaque, from `next_cursor`),
//! `sort` (`field` or `-field`), and filters `field=v`, `field__ne`, `__gt`, `__gte`, `__lt`,
//! `__lte`. Values are parsed by the field's type; anything else is 400 naming the parameter.
//!
//! The cursor is sealed (see `rampart_core::cursor`) for this resource, sort column and
//! direction: a forged or edited cursor, or one from another list or sort, is 400 naming `cursor`.
//! Behind the seal its sort value is still typed strictly by the column's kind, as if untrusted.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use rampart_core::resources::{Action, Field, Kind, Resource, SqlValue, value};
use rampart_store::{Filter, Op, Record, Sort};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Caller, body, resource};
use crate::error::FieldError;
use crate::extract::{MaybeAuthenticated, RequestContext};
use crate::{ApiError, AppState};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 100;

fn bad(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::Validation(vec![FieldError::new(param, message)])
}

/// A sortable or filterable column with the kind its values parse as.
fn column(res: &Resource, name: &str) -> Option<Field> {
    let server =
        |kind: Kind| Field { name: name.to_owned(), kind, optional: false, default: None, write: None, read: None };
    match name {
        "id" => Some(server(Kind::Uuid)),
        "created_at" | "updated_at" => Some(server(Kind::Timestamp)),
        _ if res.owner.as_deref() == Some(name) => Some(server(Kind::Uuid)),
        _ => res.field(name).cloned(),
    }
}

#[tracing::instrument(level = "debug", skip_all, fields(resource = %name))]
pub async fn list(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    ctx: RequestContext,
    who: MaybeAuthenticated,
) -> Result<Response, ApiError> {
    let res = resource(&state, &name)?;
    let caller = Caller::new(&who);
    caller.check_key(&state, &ctx, res, Action::List)?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|_| ApiError::BadRequest("malformed query string".into()))?;
    let (rows, next_cursor) = list_page(&state, &caller, res, &pairs).await?;
    let items: Vec<_> = rows.iter().map(|rec| body::RecordJson { res, rec, who: caller.principal() }).collect();
    Ok(Json(Page { items, next_cursor }).into_response())
}

/// A page of the list, in the order `json!` would give its keys (sorted).
#[derive(serde::Serialize)]
struct Page<'a> {
    items: Vec<body::RecordJson<'a>>,
    next_cursor: Option<String>,
}

/// One page of records as `caller` may list them, from the query's pairs (`limit`, `cursor`,
/// `sort` and typed filters): the records rendered as the caller may see them, and the next
/// page's cursor. The JSON list and the console's records table both run this.
pub(crate) async fn list_page(
    state: &AppState,
    caller: &Caller,
    res: &Resource,
    pairs: &[(String, String)],
) -> Result<(Vec<Record>, Option<String>), ApiError> {
    let scope = caller.scope(res, Action::List).ok_or_else(|| caller.refuse())?;
    let mut limit = DEFAULT_LIMIT;
    let mut cursor = None;
    let mut sort = Sort { column: "created_at".into(), descending: false };
    let mut filters = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (key, raw_value) in pairs {
        if !seen.insert(key.as_str()) {
            return Err(bad(key, "given more than once"));
        }
        match key.as_str() {
            "limit" => {
                limit = raw_value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| bad("limit", format!("must be an integer from 1 to {MAX_LIMIT}")))?;
            }
            "cursor" => cursor = Some(raw_value.as_str()),
            "sort" => {
                let (descending, col) = match raw_value.strip_prefix('-') {
                    Some(c) => (true, c),
                    None => (false, raw_value.as_str()),
                };
                let field = column(res, col).ok_or_else(|| bad("sort", format!("`{col}` is not a sortable field")))?;
                if field.optional {
                    return Err(bad("sort", format!("`{col}` is optional; sort by a required field")));
                }
                readable(res, &field, caller).map_err(|m| bad("sort", m))?;
                sort = Sort { column: col.to_owned(), descending };
            }
            _ => filters.push(filter(res, caller, key, raw_value)?),
        }
    }
    let sort_field = column(res, &sort.column).ok_or_else(|| bad("sort", "unknown field"))?;
    let after = cursor.map(|c| decode_cursor(state, res, c, &sort, &sort_field)).transpose()?;
    let mut rows = state.store.list_records(res, &scope, &filters, &sort, after, limit + 1).await?;
    let next = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|last| encode_cursor(state, res, last, &sort, &sort_field))
    } else {
        None
    };
    Ok((rows, next))
}

/// Filtering on a field the caller may not read would let them probe its values.
fn readable(res: &Resource, field: &Field, caller: &Caller) -> Result<(), String> {
    let _ = res;
    // Owner-dependent read rules cannot be decided per row in a filter; refuse unless granted
    // without ownership.
    if rampart_core::resources::policy::field_allowed(field.read.as_ref(), caller.principal(), false) {
        Ok(())
    } else {
        Err(format!("`{}` is not readable by you", field.name))
    }
}

fn filter(res: &Resource, caller: &Caller, key: &str, raw: &str) -> Result<Filter, ApiError> {
    let (name, op) = match key.rsplit_once("__") {
        Some((n, "ne")) => (n, Op::Ne),
        Some((n, "gt")) => (n, Op::Gt),
        Some((n, "gte")) => (n, Op::Gte),
        Some((n, "lt")) => (n, Op::Lt),
        Some((n, "lte")) => (n, Op::Lte),
        _ => (key, Op::Eq),
    };
    let field = column(res, name).ok_or_else(|| bad(key, "unknown parameter: filters take declared fields"))?;
    readable(res, &field, caller).map_err(|m| bad(key, m))?;
    let ordered =
        matches!(field.kind, Kind::Integer { .. } | Kind::Number { .. } | Kind::Timestamp | Kind::String { .. });
    if !matches!(op, Op::Eq | Op::Ne) && !ordered {
        return Err(bad(key, "this field only supports equality filters"));
    }
    let value = value::parse_query(&field, raw).map_err(|m| bad(key, m))?;
    Ok(Filter { column: name.to_owned(), op, value })
}

/// The list a cursor belongs to: resource, sort column, direction. A cursor sealed for one does
/// not open for another, so a position is never compared against a column of another type.
fn cursor_context(res: &Resource, sort: &Sort) -> String {
    let direction = if sort.descending { "desc" } else { "asc" };
    format!("records/{}/{}/{direction}", res.name, sort.column)
}

/// What a record cursor holds: the last row's sort value and id.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Position {
    v: Value,
    id: String,
}

fn encode_cursor(state: &AppState, res: &Resource, last: &Record, sort: &Sort, field: &Field) -> String {
    let v = match sort.column.as_str() {
        "id" => Value::String(last.id.clone()),
        "created_at" => Value::from(last.created_at),
        "updated_at" => Value::from(last.updated_at),
        c if res.owner.as_deref() == Some(c) => Value::String(last.owner.clone().unwrap_or_default()),
        c => last
            .fields
            .iter()
            .find(|(n, _)| n == c)
            .map(|(_, v)| match (&field.kind, v) {
                // Timestamps travel as their stored milliseconds, not as RFC 3339 text.
                (Kind::Timestamp, SqlValue::Int(ms)) => Value::from(*ms),
                (k, v) => body::to_json(k, v),
            })
            .unwrap_or(Value::Null),
    };
    let payload = json!({ "v": v, "id": last.id }).to_string();
    state.cursors.seal(&cursor_context(res, sort), payload.as_bytes())
}

fn decode_cursor(
    state: &AppState,
    res: &Resource,
    c: &str,
    sort: &Sort,
    field: &Field,
) -> Result<(SqlValue, String), ApiError> {
    let invalid = || bad("cursor", "invalid cursor; use next_cursor from the previous page with the same sort");
    let payload = state.cursors.open(&cursor_context(res, sort), c).ok_or_else(invalid)?;
    let position: Position = serde_json::from_slice(&payload).map_err(|_| invalid())?;
    if uuid::Uuid::parse_str(&position.id).is_err() {
        return Err(invalid());
    }
    let value = typed_value(&field.kind, &position.v).ok_or_else(invalid)?;
    Ok((value, position.id))
}

/// A sort value read back from a cursor, typed strictly by the column's kind. The statement binds
/// it against that column: PostgreSQL answers a string bound for a BIGINT or BOOLEAN column, or a
/// NUL byte in text, with an error (a 500), where we owe the client a 400.
fn typed_value(kind: &Kind, v: &Value) -> Option<SqlValue> {
    match (kind, v) {
        (Kind::Integer { .. } | Kind::Timestamp, Value::Number(n)) => n.as_i64().map(SqlValue::Int),
        (Kind::Number { .. }, Value::Number(n)) => n.as_f64().filter(|f| f.is_finite()).map(SqlValue::Float),
        (Kind::Boolean, Value::Bool(b)) => Some(SqlValue::Bool(*b)),
        (Kind::Uuid, Value::String(s)) if uuid::Uuid::parse_str(s).is_ok() => Some(SqlValue::Text(s.clone())),
        (Kind::String { .. } | Kind::Enum(_), Value::String(s)) if !s.contains('\0') => Some(SqlValue::Text(s.clone())),
        _ => None,
    }
}

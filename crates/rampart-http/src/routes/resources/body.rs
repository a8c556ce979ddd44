//! Record bodies in and out: which fields a caller may write (mass assignment refused) and see.

use rampart_core::clock::rfc3339;
use rampart_core::resources::policy::field_allowed;
use rampart_core::resources::{Kind, Principal, Resource, SERVER_FIELDS, SqlValue, value};
use rampart_store::Record;
use serde_json::{Map, Value};

use crate::ApiError;
use crate::error::FieldError;

/// Validates a create (`creating`) or update body into the values to store. Every problem is
/// collected and reported by field.
pub fn writable(
    res: &Resource,
    body: Map<String, Value>,
    who: Option<Principal<'_>>,
    creating: bool,
    is_owner: bool,
) -> Result<Vec<(String, SqlValue)>, ApiError> {
    let mut errors = Vec::new();
    let mut values = Vec::new();
    for (key, v) in &body {
        if SERVER_FIELDS.contains(&key.as_str()) || res.owner.as_deref() == Some(key.as_str()) {
            errors.push(FieldError::new(key, "is set by the server"));
            continue;
        }
        let Some(field) = res.field(key) else {
            errors.push(FieldError::new(key, "unknown field"));
            continue;
        };
        if !field_allowed(field.write.as_ref(), who, is_owner) {
            errors.push(FieldError::new(key, "you may not set this field"));
            continue;
        }
        match value::validate(field, v) {
            Ok(sql) => values.push((key.clone(), sql)),
            Err(m) => errors.push(FieldError::new(key, m)),
        }
    }
    if creating {
        for f in &res.fields {
            if body.contains_key(&f.name) {
                continue;
            }
            match (&f.default, f.optional) {
                (Some(d), _) => values.push((f.name.clone(), d.clone())),
                (None, true) => {}
                (None, false) => errors.push(FieldError::new(&f.name, "is required")),
            }
        }
    } else if body.is_empty() {
        return Err(ApiError::BadRequest("nothing to update: send at least one field".into()));
    }
    if errors.is_empty() { Ok(values) } else { Err(ApiError::Validation(errors)) }
}

/// The record as JSON, without the fields the caller may not read.
pub fn render(res: &Resource, rec: &Record, who: Option<Principal<'_>>) -> Value {
    let is_owner = matches!((&rec.owner, who), (Some(o), Some(p)) if *o == p.user_id);
    let mut out = Map::new();
    out.insert("id".into(), Value::String(rec.id.clone()));
    if let (Some(col), Some(owner)) = (&res.owner, &rec.owner) {
        out.insert(col.clone(), Value::String(owner.clone()));
    }
    for (name, v) in &rec.fields {
        let Some(field) = res.field(name) else { continue };
        if !field_allowed(field.read.as_ref(), who, is_owner) {
            continue;
        }
        out.insert(name.clone(), to_json(&field.kind, v));
    }
    out.insert("created_at".into(), Value::String(rfc3339(rec.created_at)));
    out.insert("updated_at".into(), Value::String(rfc3339(rec.updated_at)));
    Value::Object(out)
}

pub fn to_json(kind: &Kind, v: &SqlValue) -> Value {
    match (kind, v) {
        (_, SqlValue::Null) => Value::Null,
        (Kind::Timestamp, SqlValue::Int(ms)) => Value::String(rfc3339(*ms)),
        (_, SqlValue::Text(s)) => Value::String(s.clone()),
        (_, SqlValue::Int(i)) => Value::from(*i),
        (_, SqlValue::Float(f)) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        (_, SqlValue::Bool(b)) => Value::Bool(*b),
    }
}

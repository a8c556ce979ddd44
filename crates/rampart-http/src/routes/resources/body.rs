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

/// The record as [`render`] shows it, serialized straight into the response (the API's list, read
/// and create answers): no `Value` tree per record, no copy of its strings (issue 17: building
/// and dropping those trees was most of a list's work outside SQLite). The keys come in the
/// order of `render`'s map (sorted), so both give the same bytes.
pub struct RecordJson<'a> {
    pub res: &'a Resource,
    pub rec: &'a Record,
    pub who: Option<Principal<'a>>,
}

/// One value of a [`RecordJson`].
enum Out<'a> {
    Text(&'a str),
    Time(i64),
    Field(&'a Kind, &'a SqlValue),
}

impl serde::Serialize for Out<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Out::Text(t) => s.serialize_str(t),
            Out::Time(ms) => s.serialize_str(&rfc3339(*ms)),
            // As `to_json`.
            Out::Field(_, SqlValue::Null) => s.serialize_unit(),
            Out::Field(Kind::Timestamp, SqlValue::Int(ms)) => s.serialize_str(&rfc3339(*ms)),
            Out::Field(_, SqlValue::Text(t)) => s.serialize_str(t),
            Out::Field(_, SqlValue::Int(i)) => s.serialize_i64(*i),
            Out::Field(_, SqlValue::Float(f)) if f.is_finite() => s.serialize_f64(*f),
            Out::Field(_, SqlValue::Float(_)) => s.serialize_unit(),
            Out::Field(_, SqlValue::Bool(b)) => s.serialize_bool(*b),
        }
    }
}

impl serde::Serialize for RecordJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (res, rec) = (self.res, self.rec);
        let is_owner = matches!((&rec.owner, self.who), (Some(o), Some(p)) if *o == p.user_id);
        let mut entries: Vec<(&str, Out<'_>)> = Vec::with_capacity(rec.fields.len() + 4);
        entries.push(("id", Out::Text(&rec.id)));
        if let (Some(col), Some(owner)) = (&res.owner, &rec.owner) {
            entries.push((col, Out::Text(owner)));
        }
        for (name, v) in &rec.fields {
            let Some(field) = res.field(name) else { continue };
            if field_allowed(field.read.as_ref(), self.who, is_owner) {
                entries.push((name, Out::Field(&field.kind, v)));
            }
        }
        entries.push(("created_at", Out::Time(rec.created_at)));
        entries.push(("updated_at", Out::Time(rec.updated_at)));
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut map = s.serialize_map(Some(entries.len()))?;
        for (key, value) in &entries {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
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

#[cfg(test)]
mod tests {
    use rampart_core::config::access::AccessRule;
    use rampart_core::resources::{Actions, Field};

    use super::*;

    fn field(name: &str, kind: Kind, read: Option<&str>) -> Field {
        let read = read.map(|r| AccessRule::parse(r).unwrap());
        Field { name: name.into(), kind, optional: true, default: None, write: None, read }
    }

    /// The direct serializer answers exactly what `render` answers, field for field and byte for
    /// byte (key order, hidden fields, nulls, timestamps, a non-finite number), for the owner,
    /// another user and an anonymous caller.
    #[test]
    fn the_record_serializer_matches_render() {
        let res = Resource {
            name: "orders".into(),
            table: "res_orders".into(),
            owner: Some("user_id".into()),
            fields: vec![
                field("zeta", Kind::String { min_len: None, max_len: None, pattern: None }, None),
                field("amount", Kind::Number { min: None, max: None }, None),
                field("due", Kind::Timestamp, None),
                field("paid", Kind::Boolean, None),
                field("note", Kind::String { min_len: None, max_len: None, pattern: None }, Some("owner")),
                field("count", Kind::Integer { min: None, max: None }, None),
                field("ratio", Kind::Number { min: None, max: None }, None),
            ],
            actions: Actions::default(),
            memo: Default::default(),
        };
        let rec = Record {
            id: "r1".into(),
            owner: Some("u1".into()),
            created_at: 1_700_000_000_000,
            updated_at: 1_700_000_000_123,
            fields: vec![
                ("zeta".into(), SqlValue::Text("a \"quoted\" <b>\u{7}".into())),
                ("amount".into(), SqlValue::Float(12.5)),
                ("due".into(), SqlValue::Int(1_700_000_000_456)),
                ("paid".into(), SqlValue::Bool(true)),
                ("note".into(), SqlValue::Text("private".into())),
                ("count".into(), SqlValue::Null),
                ("ratio".into(), SqlValue::Float(f64::NAN)),
            ],
        };
        let roles = vec!["user".to_owned()];
        for who in
            [Some(Principal { user_id: "u1", roles: &roles }), Some(Principal { user_id: "u2", roles: &roles }), None]
        {
            let direct = serde_json::to_string(&RecordJson { res: &res, rec: &rec, who }).unwrap();
            let tree = serde_json::to_string(&render(&res, &rec, who)).unwrap();
            assert_eq!(direct, tree);
        }
        let owner = Some(Principal { user_id: "u1", roles: &roles });
        assert!(serde_json::to_string(&RecordJson { res: &res, rec: &rec, who: owner }).unwrap().contains("private"));
        let other = Some(Principal { user_id: "u2", roles: &roles });
        assert!(!serde_json::to_string(&RecordJson { res: &res, rec: &rec, who: other }).unwrap().contains("private"));
    }
}

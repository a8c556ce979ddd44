//! Typed validation of field values, from JSON bodies and from query-string filters. A value that
//! passes is a [`SqlValue`], which only ever reaches the database as a bound parameter.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Field, Kind};
use crate::clock::Millis;

/// A validated value, in its storage form (timestamps as Unix milliseconds).
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Validates one JSON value for `field`. `null` is accepted for optional fields only.
pub fn validate(field: &Field, v: &Value) -> Result<SqlValue, String> {
    if v.is_null() {
        return if field.optional { Ok(SqlValue::Null) } else { Err("is required and cannot be null".into()) };
    }
    match &field.kind {
        Kind::String { min_len, max_len, pattern } => {
            let s = v.as_str().ok_or_else(|| format!("must be a string, not {}", describe(v)))?;
            let n = s.chars().count();
            if let Some(min) = min_len.filter(|m| n < *m) {
                return Err(format!("must be at least {min} characters"));
            }
            if let Some(max) = max_len.filter(|m| n > *m) {
                return Err(format!("must be at most {max} characters"));
            }
            if s.contains('\0') {
                return Err("must not contain NUL characters".into());
            }
            if let Some((src, re)) = pattern
                && !re.is_match(s)
            {
                return Err(format!("must match the pattern {src}"));
            }
            Ok(SqlValue::Text(s.to_owned()))
        }
        Kind::Integer { min, max } => {
            let i = v.as_i64().ok_or_else(|| match v {
                Value::Number(_) => "must be a whole number within 64 bits".to_owned(),
                _ => format!("must be an integer, not {}", describe(v)),
            })?;
            range(i as f64, *min, *max)?;
            Ok(SqlValue::Int(i))
        }
        Kind::Number { min, max } => {
            let f =
                v.as_f64().filter(|f| f.is_finite()).ok_or_else(|| format!("must be a number, not {}", describe(v)))?;
            range(f, *min, *max)?;
            Ok(SqlValue::Float(f))
        }
        Kind::Boolean => {
            v.as_bool().map(SqlValue::Bool).ok_or_else(|| format!("must be a boolean, not {}", describe(v)))
        }
        Kind::Enum(values) => {
            let s = v.as_str().ok_or_else(|| format!("must be a string, not {}", describe(v)))?;
            if values.iter().any(|x| x == s) {
                Ok(SqlValue::Text(s.to_owned()))
            } else {
                Err(format!("must be one of: {}", values.join(", ")))
            }
        }
        Kind::Timestamp => {
            let s = v.as_str().ok_or_else(|| format!("must be an RFC 3339 timestamp string, not {}", describe(v)))?;
            parse_timestamp(s).map(SqlValue::Int)
        }
        Kind::Uuid => {
            let s = v.as_str().ok_or_else(|| format!("must be a UUID string, not {}", describe(v)))?;
            uuid::Uuid::parse_str(s)
                .map(|u| SqlValue::Text(u.hyphenated().to_string()))
                .map_err(|_| "must be a UUID".to_owned())
        }
    }
}

fn range(x: f64, min: Option<f64>, max: Option<f64>) -> Result<(), String> {
    if let Some(m) = min.filter(|m| x < *m) {
        return Err(format!("must be at least {m}"));
    }
    if let Some(m) = max.filter(|m| x > *m) {
        return Err(format!("must be at most {m}"));
    }
    Ok(())
}

pub fn parse_timestamp(s: &str) -> Result<Millis, String> {
    let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| "must be an RFC 3339 timestamp".to_owned())?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).map_err(|_| "timestamp out of range".to_owned())
}

/// A query-string filter value, typed by the field: `?quantity=5`, `?status=paid`.
pub fn parse_query(field: &Field, raw: &str) -> Result<SqlValue, String> {
    let json = match &field.kind {
        Kind::Integer { .. } => raw.parse::<i64>().map(Value::from).map_err(|_| "must be an integer".to_owned())?,
        Kind::Number { .. } => raw
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| "must be a number".to_owned())?,
        Kind::Boolean => match raw {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err("must be true or false".into()),
        },
        _ => Value::String(raw.to_owned()),
    };
    // Filters compare against stored values; bounds that apply to writes do not apply here.
    let unbounded = Field {
        kind: match &field.kind {
            Kind::String { .. } => Kind::String { min_len: None, max_len: Some(1000), pattern: None },
            Kind::Integer { .. } => Kind::Integer { min: None, max: None },
            Kind::Number { .. } => Kind::Number { min: None, max: None },
            other => other.clone(),
        },
        optional: false,
        ..field.clone()
    };
    validate(&unbounded, &json)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field(kind: Kind) -> Field {
        Field { name: "f".into(), kind, optional: false, default: None, write: None, read: None }
    }

    #[test]
    fn types_and_bounds() {
        let q = field(Kind::Integer { min: Some(1.0), max: Some(10000.0) });
        assert_eq!(validate(&q, &json!(5)), Ok(SqlValue::Int(5)));
        for bad in
            [json!(0), json!(10001), json!(1.5), json!("5"), json!({"$gt": 0}), json!([1]), json!(null), json!(true)]
        {
            assert!(validate(&q, &bad).is_err(), "{bad}");
        }
        let s = field(Kind::String { min_len: Some(1), max_len: Some(3), pattern: None });
        assert!(validate(&s, &json!("abcd")).is_err());
        assert!(validate(&s, &json!("")).is_err());
        assert!(validate(&s, &json!({"$ne": null})).is_err());
        let e = field(Kind::Enum(vec!["a".into(), "b".into()]));
        assert!(validate(&e, &json!("c")).is_err());
        assert_eq!(validate(&e, &json!("b")), Ok(SqlValue::Text("b".into())));
        let t = field(Kind::Timestamp);
        assert_eq!(validate(&t, &json!("1970-01-01T00:00:01Z")), Ok(SqlValue::Int(1000)));
        assert!(validate(&t, &json!("yesterday")).is_err());
        let u = field(Kind::Uuid);
        assert!(validate(&u, &json!("not-a-uuid")).is_err());
        assert!(parse_query(&q, "1 OR 1=1").is_err());
        assert_eq!(parse_query(&q, "20000"), Ok(SqlValue::Int(20000)));
    }
}

//! `[resources.*]` checked and compiled in one pass: every declaration is validated (names,
//! constraints, access expressions and the roles they name), its access rules linted, and what
//! passes is compiled into a [`Resource`] (patterns into regexes, defaults into stored values).
//! Each problem names its key; a registry comes out only when no declaration had an error.

use std::collections::BTreeMap;

use super::{Actions, Field, Kind, Registry, Resource, SERVER_FIELDS, value};
use crate::config::access::{AccessRule, Term};
use crate::config::problem::Report;
use crate::config::roles::Roles;
use crate::config::{FieldConfig, FieldType, ResourceConfig};
use crate::ident::is_identifier;

/// Every declared resource, compiled; `None` when any of them is malformed (every problem is
/// reported either way). A rule that is well-formed but unsafe is compiled: whether the server may
/// run on it is the report's verdict.
pub(crate) fn compile(declared: &BTreeMap<String, ResourceConfig>, roles: &Roles, r: &mut Report) -> Option<Registry> {
    let mut compiled = Some(BTreeMap::new());
    for (name, res) in declared {
        match (resource(name, res, roles, r), &mut compiled) {
            (Some(resource), Some(out)) => {
                out.insert(name.clone(), resource);
            }
            (Some(_), None) => {}
            (None, _) => compiled = None,
        }
    }
    compiled.map(Registry)
}

fn resource(name: &str, res: &ResourceConfig, roles: &Roles, r: &mut Report) -> Option<Resource> {
    let errors = r.errors();
    let base = format!("resources.{name}");
    if !is_identifier(name) {
        r.error(&base, format!("`{name}` is not a resource name"), "use ^[a-z][a-z0-9_]{0,62}$");
        return None;
    }
    if let Some(owner) = &res.owner
        && (!is_identifier(owner) || SERVER_FIELDS.contains(&owner.as_str()) || res.fields.contains_key(owner))
    {
        r.error(
            format!("{base}.owner"),
            format!("`{owner}` cannot be the owner column"),
            "name a column not otherwise declared, e.g. user_id",
        );
    }
    if res.fields.is_empty() {
        r.error(
            format!("{base}.fields"),
            "a resource needs at least one field",
            "declare fields.NAME = { type = ... }",
        );
    }
    let rules = Rules { base: &base, res, roles };
    let mut actions: BTreeMap<&str, AccessRule> = BTreeMap::new();
    for (action, expr) in res.access.actions() {
        let key = format!("{base}.access.{action}");
        let Some(expr) = expr else {
            r.warn(
                &key,
                "not declared: the action is refused to everyone but admins",
                format!("declare {key} to open it"),
            );
            continue;
        };
        if let Some(parsed) = rules.parse(&key, expr, r) {
            actions.insert(action, parsed);
        }
    }
    let linted = r.errors();
    super::lints::policy(&base, res, &actions, r);
    let unsafe_rules = r.errors() - linted;
    let mut fields = Vec::new();
    for (name, f) in &res.fields {
        if let Some(field) = field(&rules, name, f, r) {
            fields.push(field);
        }
    }
    if r.errors() - unsafe_rules != errors {
        return None;
    }
    let actions = Actions {
        list: actions.remove("list"),
        read: actions.remove("read"),
        create: actions.remove("create"),
        update: actions.remove("update"),
        delete: actions.remove("delete"),
    };
    Some(Resource {
        name: name.to_owned(),
        table: format!("res_{name}"),
        owner: res.owner.clone(),
        fields,
        actions,
        memo: Default::default(),
    })
}

/// What an access expression of one resource is checked against.
struct Rules<'a> {
    base: &'a str,
    res: &'a ResourceConfig,
    roles: &'a Roles,
}

impl Rules<'_> {
    /// The parsed rule, or `None` when it does not parse; either way its problems are reported.
    fn parse(&self, key: &str, expr: &str, r: &mut Report) -> Option<AccessRule> {
        let rule = match AccessRule::parse(expr) {
            Ok(rule) => rule,
            Err(m) => {
                r.error(key, m, "e.g. \"owner | role:admin\"");
                return None;
            }
        };
        for role in rule.roles() {
            // A hard error in every profile, not only a lint: the rule would grant nobody, and
            // `rampart user create --role` refuses the name anyway.
            if !self.roles.is_known(role) {
                r.error(
                    key,
                    format!(
                        "unknown role `{role}`: it is neither built in ({}) nor in roles.declared",
                        Roles::BUILT_IN.join(", ")
                    ),
                    format!("add \"{role}\" to roles.declared, or correct the name"),
                );
            }
        }
        if rule.has(&Term::Owner) && self.res.owner.is_none() {
            r.error(key, "`owner` used but the resource has no owner column", format!("set {}.owner", self.base));
        }
        Some(rule)
    }
}

fn field(rules: &Rules<'_>, name: &str, f: &FieldConfig, r: &mut Report) -> Option<Field> {
    let errors = r.errors();
    let key = format!("{}.fields.{name}", rules.base);
    if !is_identifier(name) || SERVER_FIELDS.contains(&name) {
        r.error(
            &key,
            format!("`{name}` cannot be a field name"),
            "use ^[a-z][a-z0-9_]{0,62}$, not id/created_at/updated_at",
        );
    }
    let write = f.write.as_deref().and_then(|expr| rules.parse(&format!("{key}.write"), expr, r));
    let read = f.read.as_deref().and_then(|expr| rules.parse(&format!("{key}.read"), expr, r));
    if let (Some(min), Some(max)) = (f.min, f.max)
        && min > max
    {
        r.error(&key, "min is greater than max", "swap them");
    }
    if let (Some(min), Some(max)) = (f.min_len, f.max_len)
        && min > max
    {
        r.error(&key, "min_len is greater than max_len", "swap them");
    }
    let numeric = matches!(f.kind, FieldType::Integer | FieldType::Number);
    if (f.min.is_some() || f.max.is_some()) && !numeric {
        r.error(&key, "min/max apply to integer and number fields", "use min_len/max_len for strings");
    }
    if (f.min_len.is_some() || f.max_len.is_some() || f.pattern.is_some()) && f.kind != FieldType::String {
        r.error(&key, "min_len/max_len/pattern apply to string fields", "remove them");
    }
    match (f.kind, &f.values) {
        (FieldType::Enum, None) => r.error(&key, "an enum needs `values`", "values = [\"a\", \"b\"]"),
        (FieldType::Enum, Some(v)) if v.is_empty() => {
            r.error(&key, "an enum needs at least one value", "values = [\"a\", \"b\"]")
        }
        (FieldType::Enum, Some(_)) | (_, None) => {}
        (_, Some(_)) => r.error(&key, "`values` applies to enum fields", "use type = \"enum\""),
    }
    if let (Some(default), FieldType::Enum, Some(values)) = (&f.default, f.kind, &f.values)
        && !default.as_str().is_some_and(|d| values.iter().any(|v| v == d))
    {
        r.error(&key, "the default is not one of the values", "pick one of `values`");
    }
    if f.kind == FieldType::String && f.max_len.is_none() {
        r.warn(&key, "string without max_len: bounded only by the body limit", "set max_len");
    }
    // What only compiling finds (a pattern that is not a regex, a default that breaks its own
    // field's constraints) is looked for once the declaration itself is sound, so that one
    // mistake is not reported twice.
    if r.errors() != errors {
        return None;
    }
    let kind = kind(&key, f, r)?;
    let mut field = Field { name: name.to_owned(), kind, optional: f.optional, default: None, write, read };
    if let Some(d) = &f.default {
        match value::validate(&field, &toml_to_json(d)) {
            Ok(v) => field.default = Some(v),
            Err(m) => {
                r.error(format!("{key}.default"), m, "fix the declaration");
                return None;
            }
        }
    }
    Some(field)
}

fn kind(key: &str, f: &FieldConfig, r: &mut Report) -> Option<Kind> {
    Some(match f.kind {
        FieldType::String => {
            let pattern = match &f.pattern {
                Some(p) => match regex_lite::Regex::new(&format!("^(?:{p})$")) {
                    Ok(re) => Some((p.clone(), re)),
                    Err(e) => {
                        r.error(format!("{key}.pattern"), e.to_string(), "fix the declaration");
                        return None;
                    }
                },
                None => None,
            };
            Kind::String { min_len: f.min_len, max_len: f.max_len, pattern }
        }
        FieldType::Integer => Kind::Integer { min: f.min, max: f.max },
        FieldType::Number => Kind::Number { min: f.min, max: f.max },
        FieldType::Boolean => Kind::Boolean,
        FieldType::Enum => Kind::Enum(f.values.clone().unwrap_or_default()),
        FieldType::Timestamp => Kind::Timestamp,
        FieldType::Uuid => Kind::Uuid,
    })
}

fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    match v {
        toml::Value::String(s) => serde_json::Value::String(s.clone()),
        toml::Value::Integer(i) => serde_json::Value::from(*i),
        toml::Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, serde_json::Value::Number)
        }
        toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
        toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
        toml::Value::Array(_) | toml::Value::Table(_) => serde_json::Value::Null,
    }
}

//! Declared resources, compiled once at start-up from `[resources.*]` into the form the record
//! API and the store use: typed fields with their constraints, and per-action access rules.
//!
//! Names (resource, field, owner column) come only from here, after `config::check` has validated
//! them against `^[a-z][a-z0-9_]{0,62}$`; they are the only identifiers that ever reach SQL text.

pub mod policy;
pub mod value;

use std::collections::BTreeMap;

use crate::config::access::AccessRule;
use crate::config::{Config, FieldType};

pub use policy::{Principal, Scope};
pub use value::SqlValue;

#[derive(Debug, Clone)]
pub enum Kind {
    String { min_len: Option<usize>, max_len: Option<usize>, pattern: Option<(String, regex_lite::Regex)> },
    Integer { min: Option<f64>, max: Option<f64> },
    Number { min: Option<f64>, max: Option<f64> },
    Boolean,
    Enum(Vec<String>),
    Timestamp,
    Uuid,
}

impl Kind {
    /// The stable name recorded with the schema; a change of kind is a lossy migration.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::String { .. } => "string",
            Kind::Integer { .. } => "integer",
            Kind::Number { .. } => "number",
            Kind::Boolean => "boolean",
            Kind::Enum(_) => "enum",
            Kind::Timestamp => "timestamp",
            Kind::Uuid => "uuid",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub kind: Kind,
    pub optional: bool,
    pub default: Option<SqlValue>,
    /// Who may set it (None: whoever may create / update the record).
    pub write: Option<AccessRule>,
    /// Who may see it (None: whoever may read the record).
    pub read: Option<AccessRule>,
}

#[derive(Debug, Clone, Default)]
pub struct Actions {
    pub list: Option<AccessRule>,
    pub read: Option<AccessRule>,
    pub create: Option<AccessRule>,
    pub update: Option<AccessRule>,
    pub delete: Option<AccessRule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    List,
    Read,
    Create,
    Update,
    Delete,
}

#[derive(Debug, Clone)]
pub struct Resource {
    pub name: String,
    /// The table: `res_<name>`, so a resource can never shadow an internal table.
    pub table: String,
    pub owner: Option<String>,
    pub fields: Vec<Field>,
    pub actions: Actions,
}

impl Resource {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn rule(&self, action: Action) -> Option<&AccessRule> {
        match action {
            Action::List => self.actions.list.as_ref(),
            Action::Read => self.actions.read.as_ref(),
            Action::Create => self.actions.create.as_ref(),
            Action::Update => self.actions.update.as_ref(),
            Action::Delete => self.actions.delete.as_ref(),
        }
    }
}

/// All declared resources, by name.
#[derive(Debug, Clone, Default)]
pub struct Registry(pub BTreeMap<String, Resource>);

impl Registry {
    /// Compiles a checked configuration. Errors name the key, like `config::check`.
    pub fn compile(config: &Config) -> Result<Self, String> {
        let mut out = BTreeMap::new();
        for (name, res) in &config.resources {
            let mut fields = Vec::new();
            for (fname, f) in &res.fields {
                let key = format!("resources.{name}.fields.{fname}");
                let kind = match f.kind {
                    FieldType::String => {
                        let pattern = match &f.pattern {
                            Some(p) => Some((
                                p.clone(),
                                regex_lite::Regex::new(&format!("^(?:{p})$"))
                                    .map_err(|e| format!("{key}.pattern: {e}"))?,
                            )),
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
                };
                let rule = |which: &str, e: &Option<String>| -> Result<Option<AccessRule>, String> {
                    e.as_deref().map(AccessRule::parse).transpose().map_err(|m| format!("{key}.{which}: {m}"))
                };
                let mut field = Field {
                    name: fname.clone(),
                    kind,
                    optional: f.optional,
                    default: None,
                    write: rule("write", &f.write)?,
                    read: rule("read", &f.read)?,
                };
                if let Some(d) = &f.default {
                    let json = toml_to_json(d);
                    field.default = Some(value::validate(&field, &json).map_err(|m| format!("{key}.default: {m}"))?);
                }
                fields.push(field);
            }
            let rule = |action: &str, e: Option<&str>| -> Result<Option<AccessRule>, String> {
                e.map(AccessRule::parse).transpose().map_err(|m| format!("resources.{name}.access.{action}: {m}"))
            };
            let a = &res.access;
            let actions = Actions {
                list: rule("list", a.list.as_deref())?,
                read: rule("read", a.read.as_deref())?,
                create: rule("create", a.create.as_deref())?,
                update: rule("update", a.update.as_deref())?,
                delete: rule("delete", a.delete.as_deref())?,
            };
            out.insert(
                name.clone(),
                Resource {
                    name: name.clone(),
                    table: format!("res_{name}"),
                    owner: res.owner.clone(),
                    fields,
                    actions,
                },
            );
        }
        Ok(Self(out))
    }

    pub fn get(&self, name: &str) -> Option<&Resource> {
        self.0.get(name)
    }
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

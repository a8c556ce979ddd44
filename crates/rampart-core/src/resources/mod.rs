//! Declared resources, checked and compiled once, by `config::check` (see `compile.rs`), from
//! `[resources.*]` into the form the record API and the store use: typed fields with their
//! constraints, and per-action access rules.
//!
//! Names (resource, field, owner column) come only from here, validated against
//! `^[a-z][a-z0-9_]{0,62}$` when compiled; they are the only identifiers that ever reach SQL text.

pub(crate) mod compile;
mod lints;
pub mod policy;
pub mod policy_table;
pub mod value;

use std::collections::BTreeMap;

use crate::config::access::AccessRule;

pub use policy::{Principal, Scope};
pub use value::SqlValue;

/// Columns the server owns on every resource table: no field may take their names, and a client
/// that sends one gets 400, never a silent ignore.
pub const SERVER_FIELDS: [&str; 3] = ["id", "created_at", "updated_at"];

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
    /// What the store derives from the declaration once (its column list), kept here so that a
    /// request does not rebuild it (issue 17). Empty until first used.
    pub memo: Memo,
}

/// See [`Resource::memo`]: text that depends on the declaration only, made on first use.
#[derive(Debug, Clone, Default)]
pub struct Memo {
    columns: std::sync::OnceLock<Box<str>>,
}

impl Memo {
    /// The column list, made by `build` the first time.
    pub fn columns(&self, build: impl FnOnce() -> String) -> &str {
        self.columns.get_or_init(|| build().into_boxed_str())
    }
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
    pub fn get(&self, name: &str) -> Option<&Resource> {
        self.0.get(name)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

//! Resource declarations (`[resources.NAME]`), as read from the config. Checked and compiled,
//! once, by `crate::resources::compile` (which [`super::check()`] runs).

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    String,
    Integer,
    Number,
    Boolean,
    Enum,
    Timestamp,
    Uuid,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldConfig {
    #[serde(rename = "type")]
    pub kind: FieldType,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub min_len: Option<usize>,
    pub max_len: Option<usize>,
    pub pattern: Option<String>,
    pub values: Option<Vec<String>>,
    #[serde(default)]
    pub optional: bool,
    pub default: Option<toml::Value>,
    /// Access expression: who may set this field (default: whoever may create / update).
    pub write: Option<String>,
    /// Access expression: who may see this field (default: whoever may read the record).
    pub read: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessConfig {
    pub list: Option<String>,
    pub read: Option<String>,
    pub create: Option<String>,
    pub update: Option<String>,
    pub delete: Option<String>,
}

impl AccessConfig {
    pub fn actions(&self) -> [(&'static str, Option<&str>); 5] {
        [
            ("list", self.list.as_deref()),
            ("read", self.read.as_deref()),
            ("create", self.create.as_deref()),
            ("update", self.update.as_deref()),
            ("delete", self.delete.as_deref()),
        ]
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceConfig {
    /// The column that holds the id of the user who owns a row.
    pub owner: Option<String>,
    #[serde(default)]
    pub fields: BTreeMap<String, FieldConfig>,
    #[serde(default)]
    pub access: AccessConfig,
    /// Says that `public` in a write rule (create, update, delete) is meant: without it,
    /// `rampart check` treats anonymous writes as a mistake (an error in production).
    #[serde(default)]
    pub public_writes: bool,
}

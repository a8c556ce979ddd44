//! The access policy as a table a reviewer can read: for each declared resource and action, which
//! kind of caller may do it and over which rows.
//!
//! Every cell is the answer of [`decide`] itself, asked for a representative caller of each kind
//! (nobody signed in, a plain user, a holder of each role), never a second reading of the
//! expressions: if the table and the record API could disagree, the table would be a comforting
//! lie. A caller holding several roles gets the widest scope any of them grants, so one column
//! per role is the whole story.

use super::policy::{Principal, decide};
use super::{Action, Registry, Resource};
use crate::config::Roles;
use crate::config::access::AccessRule;

/// What one kind of caller may do with one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Refused.
    Nobody,
    /// Only the records the caller owns.
    OwnRecords,
    /// Every record.
    AllRecords,
}

impl Grant {
    pub fn label(self) -> &'static str {
        match self {
            Grant::Nobody => "nobody",
            Grant::OwnRecords => "own records",
            Grant::AllRecords => "all records",
        }
    }
}

/// A kind of caller, as a column of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    Anonymous,
    /// Any signed-in account (every account holds `user`).
    SignedIn,
    /// A signed-in account that also holds this role.
    Role(String),
}

impl Audience {
    pub fn label(&self) -> String {
        match self {
            Audience::Anonymous => "anonymous".to_owned(),
            Audience::SignedIn => "signed-in user".to_owned(),
            Audience::Role(r) => format!("role {r}"),
        }
    }
}

/// Every action, in the order the table shows them.
pub const ACTIONS: [(Action, &str); 5] = [
    (Action::List, "list"),
    (Action::Read, "read"),
    (Action::Create, "create"),
    (Action::Update, "update"),
    (Action::Delete, "delete"),
];

/// One resource's rows: per action, the declared expression (or `None`: undeclared, admins only)
/// and one grant per audience, in the order of [`PolicyTable::audiences`].
#[derive(Debug, Clone)]
pub struct ResourcePolicy {
    pub resource: String,
    pub owner_column: Option<String>,
    pub rows: Vec<ActionRow>,
}

#[derive(Debug, Clone)]
pub struct ActionRow {
    pub action: &'static str,
    /// The declared expression as written in canonical form, or `None` when undeclared.
    pub declared: Option<String>,
    pub grants: Vec<Grant>,
}

#[derive(Debug, Clone)]
pub struct PolicyTable {
    pub audiences: Vec<Audience>,
    pub resources: Vec<ResourcePolicy>,
}

/// The table of every declared resource, for every known role.
pub fn policy_table(registry: &Registry, roles: &Roles) -> PolicyTable {
    let mut audiences = vec![Audience::Anonymous, Audience::SignedIn, Audience::Role("admin".to_owned())];
    audiences.extend(roles.declared.iter().map(|r| Audience::Role(r.clone())));
    let resources = registry.0.values().map(|res| resource_policy(res, &audiences)).collect();
    PolicyTable { audiences, resources }
}

fn resource_policy(res: &Resource, audiences: &[Audience]) -> ResourcePolicy {
    let rows = ACTIONS
        .iter()
        .map(|&(action, name)| ActionRow {
            action: name,
            declared: res.rule(action).map(AccessRule::to_expression),
            grants: audiences.iter().map(|a| grant(res, action, a)).collect(),
        })
        .collect();
    ResourcePolicy { resource: res.name.clone(), owner_column: res.owner.clone(), rows }
}

/// The policy's own answer for a representative caller of `audience`. The user id is a
/// placeholder: a scope only ever names the caller, and the table only asks which kind it is.
fn grant(res: &Resource, action: Action, audience: &Audience) -> Grant {
    let roles: Vec<String> = match audience {
        Audience::Anonymous => Vec::new(),
        Audience::SignedIn => vec!["user".to_owned()],
        Audience::Role(r) => vec!["user".to_owned(), r.clone()],
    };
    let who = match audience {
        Audience::Anonymous => None,
        _ => Some(Principal { user_id: "caller", roles: &roles }),
    };
    match decide(res.rule(action), who, res.owner.is_some()) {
        None => Grant::Nobody,
        Some(scope) if scope.owner().is_some() => Grant::OwnRecords,
        Some(_) => Grant::AllRecords,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::resources::{Actions, Field, Kind};

    fn rule(s: &str) -> Option<AccessRule> {
        Some(AccessRule::parse(s).unwrap())
    }

    fn orders() -> Resource {
        Resource {
            name: "orders".into(),
            table: "res_orders".into(),
            owner: Some("user_id".into()),
            fields: vec![Field {
                name: "item".into(),
                kind: Kind::String { min_len: None, max_len: Some(10), pattern: None },
                optional: false,
                default: None,
                write: None,
                read: None,
            }],
            actions: Actions {
                list: rule("owner | role:admin"),
                read: rule("public"),
                create: rule("authenticated"),
                update: rule("owner | role:manager"),
                delete: None,
            },
            memo: Default::default(),
        }
    }

    #[test]
    fn every_cell_is_the_policy_answer() {
        let registry = Registry(BTreeMap::from([("orders".to_owned(), orders())]));
        let roles = Roles { declared: vec!["manager".into()] };
        let t = policy_table(&registry, &roles);
        let labels: Vec<String> = t.audiences.iter().map(Audience::label).collect();
        assert_eq!(labels, ["anonymous", "signed-in user", "role admin", "role manager"]);
        let res = &t.resources[0];
        assert_eq!(res.owner_column.as_deref(), Some("user_id"));
        let row = |name: &str| res.rows.iter().find(|r| r.action == name).unwrap();
        use Grant::*;
        assert_eq!(row("list").grants, [Nobody, OwnRecords, AllRecords, OwnRecords]);
        assert_eq!(row("list").declared.as_deref(), Some("owner | role:admin"));
        assert_eq!(row("read").grants, [AllRecords, AllRecords, AllRecords, AllRecords]);
        assert_eq!(row("create").grants, [Nobody, AllRecords, AllRecords, AllRecords]);
        assert_eq!(row("update").grants, [Nobody, OwnRecords, OwnRecords, AllRecords]);
        // Undeclared: admins only, as `decide` says.
        assert_eq!(row("delete").declared, None);
        assert_eq!(row("delete").grants, [Nobody, Nobody, AllRecords, Nobody]);
    }
}

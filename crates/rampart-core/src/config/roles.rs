//! The roles a user can hold: the two built in and `roles.declared`. This is the one place that
//! says which names are roles; access rules, `PATCH /admin/users/{id}` and `rampart user create
//! --role` all ask it.

use super::problem::Report;
use crate::ident::is_identifier;

/// The known roles. Built only by `check`: every declared name is an identifier, none is declared
/// twice, none is built in.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Roles {
    /// `roles.declared`, in the order written.
    pub declared: Vec<String>,
}

impl Roles {
    /// Every account has `user`; `admin` opens the admin API and every undeclared action.
    pub const BUILT_IN: [&str; 2] = ["user", "admin"];

    pub fn is_known(&self, role: &str) -> bool {
        Self::BUILT_IN.contains(&role) || self.declared.iter().any(|d| d == role)
    }
}

/// The declared roles that are valid; the others are reported.
pub(crate) fn check(declared: &[String], r: &mut Report) -> Roles {
    let mut roles = Roles { declared: Vec::new() };
    for (i, role) in declared.iter().enumerate() {
        let key = format!("roles.declared[{i}]");
        if !is_identifier(role) {
            r.error(key, format!("`{role}` is not a role name"), "use ^[a-z][a-z0-9_]{0,62}$");
        } else if roles.is_known(role) {
            r.error(key, format!("`{role}` is declared twice or is built in"), "remove the duplicate");
        } else {
            roles.declared.push(role.clone());
        }
    }
    roles
}

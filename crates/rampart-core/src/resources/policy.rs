//! Who may do what to which rows. The answer is a [`Scope`] that the store puts into the same SQL
//! statement that reads or writes (`WHERE id = $1 AND owner = $2`); there is no fetch-then-check.

use crate::config::access::{AccessRule, Term};

/// The authenticated caller.
#[derive(Debug, Clone, Copy)]
pub struct Principal<'a> {
    pub user_id: &'a str,
    pub roles: &'a [String],
}

impl Principal<'_> {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// The rows an allowed action may touch. Only the policy ([`decide`]) makes one: no handler can
/// write itself a wider scope than the declarations grant, and the store reads it through
/// [`Scope::owner`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope(Rows);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rows {
    /// Every row of the resource.
    All,
    /// Only rows whose owner column equals this user id.
    Owner(String),
}

impl Scope {
    const ALL: Scope = Scope(Rows::All);

    fn owned_by(user_id: &str) -> Self {
        Scope(Rows::Owner(user_id.to_owned()))
    }

    /// The user whose rows alone are in scope; `None` when every row is.
    pub fn owner(&self) -> Option<&str> {
        match &self.0 {
            Rows::All => None,
            Rows::Owner(user) => Some(user),
        }
    }
}

/// The widest scope any term of `rule` grants `who`, or `None` when the action is denied.
/// An undeclared rule (`None`) is open to admins only, as `rampart check` warns.
pub fn decide(rule: Option<&AccessRule>, who: Option<Principal<'_>>, has_owner: bool) -> Option<Scope> {
    let Some(rule) = rule else {
        return who.filter(|p| p.has_role("admin")).map(|_| Scope::ALL);
    };
    let mut owner = false;
    for term in &rule.0 {
        match (term, who) {
            (Term::Public, _) => return Some(Scope::ALL),
            (Term::Authenticated, Some(_)) => return Some(Scope::ALL),
            (Term::Role(r), Some(p)) if p.has_role(r) => return Some(Scope::ALL),
            (Term::Owner, Some(_)) if has_owner => owner = true,
            _ => {}
        }
    }
    match (owner, who) {
        (true, Some(p)) => Some(Scope::owned_by(p.user_id)),
        _ => None,
    }
}

/// Field-level rules: may `who` set / see a field restricted by `rule`?
pub fn field_allowed(rule: Option<&AccessRule>, who: Option<Principal<'_>>, is_owner: bool) -> bool {
    let Some(rule) = rule else { return true };
    rule.0.iter().any(|t| match (t, who) {
        (Term::Public, _) => true,
        (Term::Authenticated, Some(_)) => true,
        (Term::Role(r), Some(p)) => p.has_role(r),
        (Term::Owner, Some(_)) => is_owner,
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> AccessRule {
        AccessRule::parse(s).unwrap()
    }

    #[test]
    fn scopes() {
        let user = vec!["user".to_owned()];
        let admin = vec!["user".to_owned(), "admin".to_owned()];
        let u = Principal { user_id: "u1", roles: &user };
        let a = Principal { user_id: "a1", roles: &admin };
        let r = rule("owner | role:admin");
        assert_eq!(decide(Some(&r), Some(u), true), Some(Scope::owned_by("u1")));
        assert_eq!(decide(Some(&r), Some(a), true), Some(Scope::ALL));
        assert_eq!(decide(Some(&r), None, true), None);
        assert_eq!(decide(Some(&rule("role:admin")), Some(u), true), None);
        assert_eq!(decide(Some(&rule("authenticated")), Some(u), false), Some(Scope::ALL));
        assert_eq!(decide(Some(&rule("public")), None, false), Some(Scope::ALL));
        assert_eq!(decide(None, Some(u), true), None);
        assert_eq!(decide(None, Some(a), true), Some(Scope::ALL));
        assert!(!field_allowed(Some(&rule("role:admin")), Some(u), true));
        assert!(field_allowed(Some(&rule("role:admin")), Some(a), false));
        assert!(field_allowed(None, None, false));
    }
}

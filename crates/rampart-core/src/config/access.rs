//! Access expressions: `public`, `authenticated`, `owner`, `role:NAME`, joined with `|`.
//! Parsed once at load; the compiled form is what the authorization layer evaluates.

use crate::ident::is_identifier;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    Public,
    Authenticated,
    Owner,
    Role(String),
}

/// Any one of the terms grants access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRule(pub Vec<Term>);

impl AccessRule {
    pub fn parse(expr: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for raw in expr.split('|') {
            let t = raw.trim();
            let term = match t {
                "public" => Term::Public,
                "authenticated" => Term::Authenticated,
                "owner" => Term::Owner,
                _ => match t.strip_prefix("role:") {
                    Some(name) if is_identifier(name.trim()) => Term::Role(name.trim().to_owned()),
                    Some(name) => return Err(format!("`{name}` is not a role name")),
                    None if t.is_empty() => return Err("empty term (a stray `|`?)".into()),
                    None => {
                        return Err(format!(
                            "unknown term `{t}`; use public, authenticated, owner or role:NAME joined with |"
                        ));
                    }
                },
            };
            terms.push(term);
        }
        Ok(Self(terms))
    }

    pub fn roles(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|t| match t {
            Term::Role(r) => Some(r.as_str()),
            _ => None,
        })
    }

    pub fn has(&self, term: &Term) -> bool {
        self.0.contains(term)
    }

    /// The rule written back in canonical form (`owner | role:admin`), for display.
    pub fn to_expression(&self) -> String {
        let terms: Vec<String> = self
            .0
            .iter()
            .map(|t| match t {
                Term::Public => "public".to_owned(),
                Term::Authenticated => "authenticated".to_owned(),
                Term::Owner => "owner".to_owned(),
                Term::Role(r) => format!("role:{r}"),
            })
            .collect();
        terms.join(" | ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(
            AccessRule::parse("owner | role:admin|role:manager").unwrap().0,
            vec![Term::Owner, Term::Role("admin".into()), Term::Role("manager".into())]
        );
        assert!(AccessRule::parse("owner ||").is_err());
        assert!(AccessRule::parse("everyone").is_err());
        assert!(AccessRule::parse("role:Admin").is_err());
        assert!(AccessRule::parse("role:x;drop").is_err());
    }
}

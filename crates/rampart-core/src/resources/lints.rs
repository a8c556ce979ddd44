//! Access rules that parse but do not say what their author most likely meant. Anonymous writes
//! and lifted owner scoping are unsafe settings (errors in production); a `list` broader than
//! `read` is advice in both profiles.

use std::collections::BTreeMap;

use crate::config::ResourceConfig;
use crate::config::access::{AccessRule, Term};
use crate::config::problem::Report;

/// Lints the parsed action rules of one resource.
pub(super) fn policy(base: &str, res: &ResourceConfig, rules: &BTreeMap<&str, AccessRule>, r: &mut Report) {
    for (&action, rule) in rules {
        let key = format!("{base}.access.{action}");
        let writes = matches!(action, "create" | "update" | "delete");
        if writes && rule.has(&Term::Public) && !res.public_writes {
            r.unsafe_setting(
                &key,
                format!("`public` lets anonymous clients {action} records, and the resource does not say that is meant"),
                format!(
                    "use authenticated, owner or a role; if anonymous writes are intended, set {base}.public_writes = true"
                ),
            );
        }
        if !matches!(action, "update" | "delete") {
            continue;
        }
        let open = [Term::Public, Term::Authenticated].into_iter().find(|t| rule.has(t));
        match (&res.owner, open) {
            // A caller gets the widest scope any matching term grants (`policy::decide`), and
            // `authenticated` / `public` match everyone, with the whole table as scope: the
            // statement is no longer limited to the caller's rows, and nothing says so.
            (Some(owner), Some(term)) => r.unsafe_setting(
                &key,
                format!(
                    "`{}` turns owner scoping off: every {} may {action} every row, not only rows whose {owner} is theirs",
                    term_name(&term),
                    if term == Term::Public { "client, signed in or not," } else { "signed-in user" },
                ),
                "write \"owner | role:admin\"; if every signed-in user really may change every row, name a role instead (e.g. role:user)",
            ),
            (None, Some(Term::Authenticated)) => r.unsafe_setting(
                &key,
                "any signed-in user may change every row of a resource without an owner",
                "add an owner column or restrict to a role",
            ),
            _ => {}
        }
    }
    if let (Some(list), Some(read)) = (rules.get("list"), rules.get("read"))
        && let Some(wider) = list.0.iter().find(|t| !grants(read, t))
    {
        r.warn(
            format!("{base}.access.list"),
            format!(
                "list is broader than read: `{}` may list records that read refuses it one by one",
                term_name(wider)
            ),
            format!("make {base}.access.list at most as broad as {base}.access.read (e.g. the same expression)"),
        );
    }
    if rules.contains_key("list") && !rules.contains_key("read") {
        r.warn(
            format!("{base}.access.list"),
            "list is broader than read: read is not declared (admins only), list is",
            format!("declare {base}.access.read, or make list admins only as well"),
        );
    }
}

/// Whether `rule` lets in everyone `term` lets in: `public` covers everything, `authenticated`
/// every signed-in caller (owners and role holders included), and a term covers itself.
fn grants(rule: &AccessRule, term: &Term) -> bool {
    rule.has(term)
        || rule.has(&Term::Public)
        || (rule.has(&Term::Authenticated) && matches!(term, Term::Owner | Term::Role(_)))
}

fn term_name(term: &Term) -> String {
    match term {
        Term::Public => "public".into(),
        Term::Authenticated => "authenticated".into(),
        Term::Owner => "owner".into(),
        Term::Role(name) => format!("role:{name}"),
    }
}

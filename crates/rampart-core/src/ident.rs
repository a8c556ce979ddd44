//! Identifiers that come from the configuration (resource, field and role names). They end up in
//! SQL as identifiers, so they are checked once, at load, against a strict pattern.

/// `^[a-z][a-z0-9_]{0,62}$`, as docs/configuration.md documents it.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_lowercase() => {}
        _ => return false,
    }
    s.len() <= 63 && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(is_identifier("orders"));
        assert!(is_identifier("a_1"));
        assert!(!is_identifier("1a"));
        assert!(!is_identifier("Orders"));
        assert!(!is_identifier("orders;drop"));
        assert!(!is_identifier(""));
        assert!(!is_identifier(&"a".repeat(64)));
    }
}

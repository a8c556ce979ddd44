//! Stored password hashes brought up to the current Argon2 price without the password.
//!
//! Why: an unknown email is checked against a dummy hash made with the current parameters, while
//! a dormant account verifies with the parameters its hash was made with. After the parameters
//! are raised, the dormant account answers several times faster than an unknown email: an
//! enumeration oracle, one email at a time. A login upgrades a hash, but only for users who log
//! in.
//!
//! So `serve` wraps every weaker hash at start: the stored Argon2 output `H_old(password)` is
//! itself hashed with the current parameters, `H_now(H_old(password))`, and stored with the old
//! parameters and salt but without the old output (which would be cheap to attack). Verifying
//! recomputes the chain from the password. Every verification then costs at least the current
//! price (the old layers add their own, smaller, cost), and the first successful login replaces
//! the chain with a plain current hash.
//!
//! Format: `rampart-wrap1;LEN;PHC;...;LEN;PHC;OUTER`, where each `LEN;PHC` pair is an earlier layer,
//! innermost first (its PHC string without the output; `LEN` the output length in bytes), and
//! `OUTER` a complete PHC string whose "password" is the last layer's raw output. `;` appears in
//! no PHC string.

pub const PREFIX: &str = "rampart-wrap1";

/// One earlier hash: its parameters and salt as a PHC string without the output, and the
/// output's length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer<'a> {
    pub len: usize,
    pub phc: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrapped<'a> {
    pub layers: Vec<Layer<'a>>,
    pub outer: &'a str,
}

/// `None` for a plain PHC string, or a malformed wrapped one.
pub fn parse(stored: &str) -> Option<Wrapped<'_>> {
    let rest = stored.strip_prefix(PREFIX)?.strip_prefix(';')?;
    let mut parts: Vec<&str> = rest.split(';').collect();
    let outer = parts.pop()?;
    if parts.is_empty() || !parts.len().is_multiple_of(2) {
        return None;
    }
    let layers = parts
        .chunks(2)
        .map(|pair| Some(Layer { len: pair.first()?.parse().ok()?, phc: pair.get(1)? }))
        .collect::<Option<Vec<_>>>()?;
    Some(Wrapped { layers, outer })
}

/// The stored form of `layers` under `outer`.
pub fn format(layers: &[Layer<'_>], outer: &str) -> String {
    let mut s = String::from(PREFIX);
    for layer in layers {
        s.push_str(&format!(";{};{}", layer.len, layer.phc));
    }
    s.push(';');
    s.push_str(outer);
    s
}

/// The PHC string whose parameters decide the price of `stored`: the outer one of a wrapped hash.
pub fn outermost(stored: &str) -> &str {
    parse(stored).map_or(stored, |w| w.outer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_malformed() {
        let layers = vec![Layer { len: 32, phc: "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ" }];
        let outer = "$argon2id$v=19$m=2048,t=2,p=1$c2FsdHNhbHQ$aGFzaA";
        let s = format(&layers, outer);
        assert_eq!(parse(&s), Some(Wrapped { layers, outer }));
        assert_eq!(outermost(&s), outer);
        assert_eq!(outermost(outer), outer);
        for bad in [outer, "rampart-wrap1", "rampart-wrap1;", "rampart-wrap1;x;$a;$b", "rampart-wrap1;32;$b"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}

//! Password policy: length bounds, a common-password check and a strength estimate (zxcvbn), each
//! refusal with a reason a person can act on.

use secrecy::{ExposeSecret, SecretString};
use zxcvbn::feedback::Warning;

pub const MIN_CHARS: usize = 8;
pub const MAX_CHARS: usize = 128;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordProblem {
    #[error("must not be empty")]
    Empty,
    #[error("must be at least {MIN_CHARS} characters")]
    TooShort,
    #[error("must be at most {MAX_CHARS} characters")]
    TooLong,
    #[error("is one of the most commonly used passwords")]
    Common,
    #[error("is too easy to guess: {0}")]
    Weak(String),
}

/// Length bounds alone. Used at login, where the policy of the day must not lock out a password
/// chosen under an older one, but an absurd length is still refused before any hashing.
pub fn check_length(candidate: &SecretString) -> Result<(), PasswordProblem> {
    let n = candidate.expose_secret().chars().count();
    if n < 1 {
        return Err(PasswordProblem::Empty);
    }
    if n > MAX_CHARS {
        return Err(PasswordProblem::TooLong);
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
pub struct PasswordPolicy {
    /// zxcvbn score (0..=4) a new password must reach.
    pub min_score: u8,
}

impl PasswordPolicy {
    /// Checks a new password. `context` holds strings the password must not lean on (the email).
    pub fn check(&self, candidate: &SecretString, context: &[&str]) -> Result<(), PasswordProblem> {
        let pw = candidate.expose_secret();
        let n = pw.chars().count();
        if n < MIN_CHARS {
            return Err(PasswordProblem::TooShort);
        }
        if n > MAX_CHARS {
            return Err(PasswordProblem::TooLong);
        }
        let estimate = zxcvbn::zxcvbn(pw, context);
        let warning = estimate.feedback().and_then(|f| f.warning());
        if is_common(warning) {
            return Err(PasswordProblem::Common);
        }
        if u8::from(estimate.score()) < self.min_score {
            let reason = estimate
                .feedback()
                .and_then(|f| {
                    f.warning().map(|w| w.to_string()).or_else(|| f.suggestions().first().map(|s| s.to_string()))
                })
                .unwrap_or_else(|| "add more words or characters that are hard to predict".to_owned());
            return Err(PasswordProblem::Weak(trim_reason(&reason)));
        }
        Ok(())
    }
}

/// zxcvbn says this when the whole password (ignoring case) is an entry of its list of the 30 000
/// most common passwords, taken from real breaches.
fn is_common(warning: Option<Warning>) -> bool {
    matches!(
        warning,
        Some(Warning::ThisIsATop10Password | Warning::ThisIsATop100Password | Warning::ThisIsACommonPassword)
    )
}

fn trim_reason(reason: &str) -> String {
    let r = reason.trim().trim_end_matches('.');
    let mut chars = r.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => r.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(p: &str) -> Result<(), PasswordProblem> {
        PasswordPolicy { min_score: 3 }.check(&SecretString::from(p.to_owned()), &["alice@example.com"])
    }

    #[test]
    fn policy() {
        assert_eq!(check("short"), Err(PasswordProblem::TooShort));
        assert_eq!(check(&"x".repeat(129)), Err(PasswordProblem::TooLong));
        assert_eq!(check("password"), Err(PasswordProblem::Common));
        assert_eq!(check("qwertyuiop"), Err(PasswordProblem::Common));
        assert_eq!(check("iloveyou"), Err(PasswordProblem::Common));
        assert!(matches!(check("aaaaaaaaaaaa"), Err(PasswordProblem::Weak(_))));
        assert!(check("alice@example.com1").is_err());
        assert_eq!(check("correct horse battery staple"), Ok(()));
        assert_eq!(check("vX9#qL2!mR7@tZ4k"), Ok(()));
    }
}

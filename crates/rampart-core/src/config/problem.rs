//! What [`super::check()`] reports: a problem names its key, says what is wrong and how to fix it.
//! Every check writes into one `Report`, so an operator sees every problem in one pass.

use std::fmt;

use super::Profile;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub level: Level,
    pub key: String,
    pub message: String,
    pub fix: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        write!(f, "{level}: `{}`: {} (fix: {})", self.key, self.message, self.fix)
    }
}

/// The problems found so far. In the production profile every unsafe setting is an error; in the
/// dev profile the same settings are at most warnings.
pub(crate) struct Report {
    production: bool,
    problems: Vec<Problem>,
}

impl Report {
    pub(crate) fn new(profile: Profile) -> Self {
        Self { production: profile == Profile::Production, problems: Vec::new() }
    }

    pub(crate) fn error(&mut self, key: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) {
        self.push(Level::Error, key, message, fix);
    }

    pub(crate) fn warn(&mut self, key: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) {
        self.push(Level::Warning, key, message, fix);
    }

    /// Unsafe in production: an error there, a warning in dev.
    pub(crate) fn unsafe_setting(
        &mut self,
        key: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        let level = if self.production { Level::Error } else { Level::Warning };
        self.push(level, key, message, fix);
    }

    /// Unsafe in production, normal in dev: an error there, silence in dev.
    pub(crate) fn production_only(
        &mut self,
        key: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        if self.production {
            self.error(key, message, fix);
        }
    }

    /// How many errors so far: a check that types a value compares the count before and after,
    /// and keeps the value only when it found nothing wrong with it.
    pub(crate) fn errors(&self) -> usize {
        self.problems.iter().filter(|p| p.level == Level::Error).count()
    }

    /// Every problem, errors first, each level in the order found.
    pub(crate) fn into_problems(mut self) -> Vec<Problem> {
        self.problems.sort_by_key(|p| std::cmp::Reverse(p.level));
        self.problems
    }

    fn push(&mut self, level: Level, key: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) {
        self.problems.push(Problem { level, key: key.into(), message: message.into(), fix: fix.into() });
    }
}

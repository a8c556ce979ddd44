//! SQL texts as named constants, and the test that compiles every one of them on both backends.
//!
//! Each module declares its fixed statements with [`statements!`], next to the code that runs
//! them. The macro makes each a `const NAME: &str` and also lists it in the module's
//! `STATEMENTS`, with where it runs. The test in `sql/tests.rs` prepares every listed statement
//! against freshly migrated databases, so a typo, a column the schema does not have, a dialect
//! difference, or (on SQLite) a statement the runtime authorizer refuses fails a fast test rather
//! than a request. A module's list left out of `ALL` is dead code in the test build, which Clippy
//! refuses.
//!
//! A parameter whose type PostgreSQL cannot infer from where it first appears (`$1 IS NULL`, a
//! `CASE` result) is written `CAST($1 AS type)` there. sqlx sends a type with every bound value,
//! so such a statement ran anyway; written this way it does not depend on the driver for it, and
//! it prepares without values.
//!
//! Statements that depend on a declaration are built at run time from its validated, quoted
//! identifiers, and are not listed: the records of declared resources (`records.rs`), the DDL of
//! their tables (`resource_schema.rs`) and the PostgreSQL grants (`grants.rs`). The fixed
//! statements beside them (the bookkeeping of declared resources, the grants' checks) are.

/// Where a statement runs, which is where the test prepares it.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Runs {
    /// On the runtime pools of both backends (on SQLite, through the authorizer).
    Runtime,
    /// On the migration connection of both backends (no authorizer on SQLite).
    Migration,
    /// On PostgreSQL only: advisory locks, the grants and their check.
    Postgres,
    /// On SQLite only, before the authorizer is installed (prepared on the migration connection).
    Sqlite,
    /// On SQLite's runtime connections only: the writer's own transaction statements.
    SqliteRuntime,
}

/// One declared statement, for the test.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct Declared {
    pub(crate) name: &'static str,
    pub(crate) runs: Runs,
    pub(crate) text: &'static str,
}

/// Declares SQL texts as `pub(crate) const`s and lists them in the module's `STATEMENTS`
/// (test builds only): `NAME = "text";`, or `NAME [Migration] = ...;` (likewise `[Postgres]`,
/// `[Sqlite]`) for a statement that does not run on the runtime pools of both backends (see
/// `Runs`).
macro_rules! statements {
    (@runs) => {
        $crate::sql::Runs::Runtime
    };
    (@runs $runs:ident) => {
        $crate::sql::Runs::$runs
    };
    ($($(#[$attr:meta])* $name:ident $([$runs:ident])? = $text:expr;)*) => {
        $($(#[$attr])* pub(crate) const $name: &str = $text;)*

        #[cfg(test)]
        pub(crate) const STATEMENTS: &[$crate::sql::Declared] = &[
            $($crate::sql::Declared { name: stringify!($name), runs: statements!(@runs $($runs)?), text: $name },)*
        ];
    };
}

/// `"p.a, p.b, ..."`: each column name after the prefix `p.` (or `""`), for `concat!`.
macro_rules! prefixed_columns {
    ($prefix:literal: $first:literal $(, $rest:literal)*) => {
        concat!($prefix, $first $(, ", ", $prefix, $rest)*)
    };
}

/// The columns of a `UserRow`, each prefixed with `$prefix` (`""`, or a table alias and a dot).
/// A macro rather than a constant so that the statements that read users stay constants, built
/// with `concat!`.
macro_rules! user_columns {
    ($prefix:literal) => {
        prefixed_columns!($prefix: "id", "email", "email_normalized", "password_hash", "display_name", "roles",
            "email_verified", "mfa_enabled", "failed_logins", "locked_until", "created_at", "updated_at", "kind")
    };
}

/// Every module's statements.
#[cfg(test)]
pub(crate) const ALL: &[&[Declared]] = &[
    crate::db::STATEMENTS,
    crate::db::sqlite_conns::STATEMENTS,
    crate::users::STATEMENTS,
    crate::sessions::STATEMENTS,
    crate::refresh::STATEMENTS,
    crate::attempts::STATEMENTS,
    crate::account_tokens::STATEMENTS,
    crate::mfa::STATEMENTS,
    crate::passkeys::STATEMENTS,
    crate::admin::STATEMENTS,
    crate::audit::STATEMENTS,
    crate::outbox::STATEMENTS,
    crate::backup::STATEMENTS,
    crate::resource_schema::STATEMENTS,
    crate::grants::STATEMENTS,
    crate::api_keys::STATEMENTS,
];

#[cfg(test)]
mod tests;

//! PostgreSQL least privilege: what `rampart migrate`, running as the schema owner, grants the
//! runtime role (the user of `database.url`).
//!
//! Everything is revoked first, then exactly this is granted, so a grant a declaration no longer
//! needs (DELETE on a resource whose policy stopped allowing deletes) goes away on the next
//! migration:
//!
//! - no DDL: the runtime role owns nothing and gets no CREATE (PostgreSQL 15 no longer grants
//!   CREATE on `public` to everyone; on older servers run `REVOKE CREATE ON SCHEMA public FROM
//!   PUBLIC` once, see docs/deployment.md);
//! - the audit log: SELECT and INSERT only (and its triggers refuse UPDATE, DELETE, TRUNCATE even
//!   to the owner);
//! - identity tables: SELECT, INSERT, UPDATE, and DELETE only where the server deletes (expired
//!   rows, a deleted account, a removed second factor); refresh tokens are only ever deleted by
//!   the cascade from `sessions`, which PostgreSQL runs with the owner's rights;
//! - declared resources: SELECT, INSERT, UPDATE, and DELETE only when the resource declares an
//!   `access.delete` rule;
//! - the schema bookkeeping (`_sqlx_migrations`, `rampart_resources`, `rampart_resource_fields`):
//!   SELECT only, for the start-up check of `database.migrate_on_start = false`.
//!
//! Nobody gets TRUNCATE, REFERENCES or TRIGGER.

use rampart_core::resources::{Action, Registry};
use sqlx::PgConnection;

use crate::StoreError;

statements! {
    SELECT_ROLE_AND_SCHEMA [Postgres] = "SELECT current_user::text, current_schema()::text";
    /// Ownership counts through role membership (`pg_has_role`), so owning the database (and
    /// `public` through `pg_database_owner`) counts too.
    SELECT_RUNTIME_ROLE_OWNS_SCHEMA [Postgres] = "SELECT \
            EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = current_schema() \
                    AND pg_has_role(current_user, nspowner, 'USAGE')) \
         OR EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = current_schema() \
                    AND pg_has_role(current_user, tableowner::name, 'USAGE'))";
}

const READ_WRITE: &[&str] = &[
    "users",
    "sessions",
    "refresh_tokens",
    "totp_secrets",
    "recovery_codes",
    "mfa_challenges",
    "account_tokens",
    "unknown_login_failures",
    "mail_outbox",
    "passkeys",
    "passkey_challenges",
    "api_keys",
];
const DELETES: &[&str] = &[
    "users",
    "sessions",
    "totp_secrets",
    "recovery_codes",
    "mfa_challenges",
    "account_tokens",
    "unknown_login_failures",
    "mail_outbox",
    "passkeys",
    "passkey_challenges",
];

/// `"name"`, with embedded quotes doubled: role and schema names come from the operator's URL,
/// not from clients, but are quoted like any identifier.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub(crate) async fn apply(conn: &mut PgConnection, role: &str, resources: &Registry) -> Result<(), StoreError> {
    let (me, schema): (String, String) = sqlx::query_as(SELECT_ROLE_AND_SCHEMA).fetch_one(&mut *conn).await?;
    if me == role {
        // The same role migrates and runs: there is nothing to take away from it. `rampart check`
        // refuses this in production (the runtime role would own the schema).
        return Ok(());
    }
    let (r, s) = (ident(role), ident(&schema));
    let mut statements = vec![
        format!("REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {r}"),
        format!("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {s} FROM {r}"),
        format!("REVOKE CREATE ON SCHEMA {s} FROM {r}"),
        format!("GRANT USAGE ON SCHEMA {s} TO {r}"),
        format!("GRANT SELECT, INSERT, UPDATE ON {} TO {r}", READ_WRITE.join(", ")),
        format!("GRANT DELETE ON {} TO {r}", DELETES.join(", ")),
        format!("GRANT SELECT, INSERT ON audit_log TO {r}"),
        // Read only: a server with `database.migrate_on_start = false` checks that the schema is
        // not older than its binary before it serves.
        format!("GRANT SELECT ON _sqlx_migrations, rampart_resources, rampart_resource_fields TO {r}"),
    ];
    for res in resources.0.values() {
        let table = ident(&res.table);
        statements.push(format!("GRANT SELECT, INSERT, UPDATE ON {table} TO {r}"));
        if res.rule(Action::Delete).is_some() {
            statements.push(format!("GRANT DELETE ON {table} TO {r}"));
        }
    }
    // One transaction: a running instance never sees the moment between the REVOKE and the
    // GRANTs (it would get "permission denied").
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    for sql in statements {
        sqlx::query(&sql).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Whether the connected role owns the current schema or any table in it, directly or through
/// a role it is a member of (which includes owning the database, for a schema owned by
/// `pg_database_owner`): such a role could alter or drop them whatever it was granted. For
/// `rampart check` and `serve`.
pub async fn runtime_role_owns_schema(conn: &mut PgConnection) -> Result<bool, StoreError> {
    let (owns,): (bool,) = sqlx::query_as(SELECT_RUNTIME_ROLE_OWNS_SCHEMA).fetch_one(&mut *conn).await?;
    Ok(owns)
}

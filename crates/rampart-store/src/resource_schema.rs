//! Tables of declared resources, created or migrated from the declarations on the migration
//! connection. Additive changes are applied; a change that would lose or invalidate data (a field
//! removed, a field's kind or the owner changed, a required field added to a table that has rows
//! with no default, an optional field made required while rows hold nulls) is refused with an
//! explanation and nothing is applied.

use rampart_core::resources::{Field, Kind, SqlValue};

fn q(ident: &str) -> String {
    format!("\"{ident}\"")
}

fn column_type(kind: &Kind) -> &'static str {
    match kind {
        Kind::String { .. } | Kind::Enum(_) | Kind::Uuid => "TEXT",
        Kind::Integer { .. } | Kind::Timestamp => "BIGINT",
        Kind::Number { .. } => "DOUBLE PRECISION",
        Kind::Boolean => "BOOLEAN",
    }
}

/// A literal for a column DEFAULT. Only values that passed field validation get here, and text
/// is quoted with doubled quotes; still, DDL defaults are the one place a value is not bound,
/// because DDL takes no parameters.
fn literal(v: &SqlValue) -> String {
    match v {
        SqlValue::Null => "NULL".into(),
        SqlValue::Text(s) => format!("'{}'", s.replace('\'', "''")),
        SqlValue::Int(i) => i.to_string(),
        SqlValue::Float(f) => format!("{f:?}"),
        SqlValue::Bool(b) => if *b { "TRUE" } else { "FALSE" }.into(),
    }
}

fn column_def(f: &Field, creating: bool) -> String {
    let mut def = format!("{} {}", q(&f.name), column_type(&f.kind));
    match (&f.default, f.optional, creating) {
        (Some(d), false, _) => def.push_str(&format!(" NOT NULL DEFAULT {}", literal(d))),
        (Some(d), true, _) => def.push_str(&format!(" DEFAULT {}", literal(d))),
        (None, false, true) => def.push_str(" NOT NULL"),
        _ => {}
    }
    def
}

/// The migration functions, written once and compiled for each backend's connection type.
macro_rules! schema_fns {
    ($Conn:ty) => {
    /// Brings every declared resource's table in line with its declaration, in one transaction.
    pub async fn ensure(conn: &mut $Conn, registry: &Registry) -> Result<(), StoreError> {
        let mut tx = conn.begin().await?;
        for res in registry.0.values() {
            ensure_one(&mut tx, res).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn ensure_one(tx: &mut $Conn, res: &Resource) -> Result<(), StoreError> {
        let refuse = |m: String| StoreError::Other(format!("resource `{}`: {m}; nothing was changed", res.name));
        let recorded: Option<(Option<String>,)> = sqlx::query_as("SELECT owner FROM rampart_resources WHERE resource = $1")
            .bind(&res.name)
            .fetch_optional(&mut *tx)
            .await?;
        let Some((owner,)) = recorded else {
            return create(tx, res).await;
        };
        if owner != res.owner {
            return Err(refuse(format!(
                "the owner column changed from {owner:?} to {:?}, which would reassign every row",
                res.owner
            )));
        }
        let fields: Vec<(String, String, bool)> =
            sqlx::query_as("SELECT field, kind, optional FROM rampart_resource_fields WHERE resource = $1")
                .bind(&res.name)
                .fetch_all(&mut *tx)
                .await?;
        for (name, kind, _) in &fields {
            match res.field(name) {
                None => {
                    return Err(refuse(format!(
                        "field `{name}` was removed from the declaration, which would lose its data; declare it again (optional = true if it is no longer needed)"
                    )));
                }
                Some(f) if f.kind.name() != kind => {
                    return Err(refuse(format!(
                        "field `{name}` changed kind from {kind} to {}, which existing values may not fit; add a new field instead",
                        f.kind.name()
                    )));
                }
                _ => {}
            }
        }
        let table = q(&res.table);
        let (rows,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(&mut *tx).await?;
        for f in &res.fields {
            let known = fields.iter().find(|(n, _, _)| *n == f.name);
            match known {
                None => {
                    if !f.optional && f.default.is_none() && rows > 0 {
                        return Err(refuse(format!(
                            "new required field `{}` has no default and the table has {rows} rows; give it a default or make it optional",
                            f.name
                        )));
                    }
                    sqlx::query(&format!("ALTER TABLE {table} ADD COLUMN {}", column_def(f, false)))
                        .execute(&mut *tx)
                        .await?;
                    record_field(tx, res, f).await?;
                }
                Some((_, _, was_optional)) if *was_optional && !f.optional => {
                    let (nulls,): (i64,) =
                        sqlx::query_as(&format!("SELECT COUNT(*) FROM {table} WHERE {} IS NULL", q(&f.name)))
                            .fetch_one(&mut *tx)
                            .await?;
                    if nulls > 0 {
                        return Err(refuse(format!(
                            "field `{}` became required but {nulls} rows have no value; fill them or keep it optional",
                            f.name
                        )));
                    }
                    record_field(tx, res, f).await?;
                }
                Some(_) => record_field(tx, res, f).await?,
            }
        }
        Ok(())
    }

    async fn create(tx: &mut $Conn, res: &Resource) -> Result<(), StoreError> {
        let table = q(&res.table);
        let mut cols = vec![format!("{} TEXT PRIMARY KEY NOT NULL", q("id"))];
        if let Some(o) = &res.owner {
            // Records go with their owner when the account is deleted.
            cols.push(format!("{} TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE", q(o)));
        }
        cols.push(format!("{} BIGINT NOT NULL", q("created_at")));
        cols.push(format!("{} BIGINT NOT NULL", q("updated_at")));
        cols.extend(res.fields.iter().map(|f| column_def(f, true)));
        sqlx::query(&format!("CREATE TABLE IF NOT EXISTS {table} ({})", cols.join(", "))).execute(&mut *tx).await?;
        // Lists are scoped by owner and paged by (created_at, id).
        let index_cols = match &res.owner {
            Some(o) => format!("{}, {}, {}", q(o), q("created_at"), q("id")),
            None => format!("{}, {}", q("created_at"), q("id")),
        };
        sqlx::query(&format!("CREATE INDEX IF NOT EXISTS {} ON {table} ({index_cols})", q(&format!("{}_list", res.table))))
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO rampart_resources (resource, owner) VALUES ($1, $2)")
            .bind(&res.name)
            .bind(&res.owner)
            .execute(&mut *tx)
            .await?;
        for f in &res.fields {
            record_field(tx, res, f).await?;
        }
        Ok(())
    }

    async fn record_field(tx: &mut $Conn, res: &Resource, f: &Field) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO rampart_resource_fields (resource, field, kind, optional) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (resource, field) DO UPDATE SET kind = excluded.kind, optional = excluded.optional",
        )
        .bind(&res.name)
        .bind(&f.name)
        .bind(f.kind.name())
        .bind(f.optional)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
    };
}

pub mod sqlite {
    use rampart_core::resources::{Field, Registry, Resource};
    use sqlx::Connection;

    use super::{column_def, q};
    use crate::StoreError;

    schema_fns!(sqlx::SqliteConnection);
}

pub mod postgres {
    use rampart_core::resources::{Field, Registry, Resource};
    use sqlx::Connection;

    use super::{column_def, q};
    use crate::StoreError;

    schema_fns!(sqlx::PgConnection);
}

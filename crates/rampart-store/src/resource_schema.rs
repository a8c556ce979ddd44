//! Tables of declared resources, created or migrated from the declarations on the migration
//! connection. Additive changes are applied; a change that would lose or invalidate data (a field
//! removed, a field's kind or the owner changed, a required field added to a table that has rows
//! with no default, an optional field made required while rows hold nulls) is refused with an
//! explanation and nothing is applied.

use rampart_core::resources::{Field, Kind, Registry, Resource, SqlValue};

use crate::dialect::WriteTx;
use crate::{Fault, StoreError};

statements! {
    SELECT_RECORDED_OWNER [Migration] = "SELECT owner FROM rampart_resources WHERE resource = $1";
    SELECT_RECORDED_FIELDS [Migration] =
        "SELECT field, kind, optional FROM rampart_resource_fields WHERE resource = $1";
    INSERT_RECORDED_RESOURCE [Migration] = "INSERT INTO rampart_resources (resource, owner) VALUES ($1, $2)";
    UPSERT_RECORDED_FIELD [Migration] = "INSERT INTO rampart_resource_fields (resource, field, kind, optional) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (resource, field) DO UPDATE SET kind = excluded.kind, optional = excluded.optional";
}

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

/// Brings every declared resource's table in line with its declaration, in one transaction
/// (on the migration connection).
pub(crate) async fn ensure(mut tx: WriteTx<'_>, registry: &Registry) -> Result<(), StoreError> {
    for res in registry.0.values() {
        ensure_one(&mut tx, res).await?;
    }
    tx.commit().await
}

async fn ensure_one(tx: &mut WriteTx<'_>, res: &Resource) -> Result<(), StoreError> {
    let refuse = |reason: String| Fault::SchemaChangeRefused { resource: res.name.clone(), reason };
    let Some(owner) = tx.recorded_owner(&res.name).await? else {
        return create(tx, res).await;
    };
    if owner != res.owner {
        return Err(refuse(format!(
            "the owner column changed from {owner:?} to {:?}, which would reassign every row",
            res.owner
        ))
        .into());
    }
    let fields = tx.recorded_fields(&res.name).await?;
    for (name, kind, _) in &fields {
        match res.field(name) {
            None => {
                return Err(refuse(format!(
                    "field `{name}` was removed from the declaration, which would lose its data; declare it again (optional = true if it is no longer needed)"
                ))
                .into());
            }
            Some(f) if f.kind.name() != kind => {
                return Err(refuse(format!(
                    "field `{name}` changed kind from {kind} to {}, which existing values may not fit; add a new field instead",
                    f.kind.name()
                ))
                .into());
            }
            _ => {}
        }
    }
    let table = q(&res.table);
    let rows = tx.count(&format!("SELECT COUNT(*) FROM {table}")).await?;
    for f in &res.fields {
        let known = fields.iter().find(|(n, _, _)| *n == f.name);
        match known {
            None => {
                if !f.optional && f.default.is_none() && rows > 0 {
                    return Err(refuse(format!(
                        "new required field `{}` has no default and the table has {rows} rows; give it a default or make it optional",
                        f.name
                    ))
                    .into());
                }
                tx.execute_ddl(&format!("ALTER TABLE {table} ADD COLUMN {}", column_def(f, false))).await?;
                tx.record_field(res, f).await?;
            }
            Some((_, _, was_optional)) if *was_optional && !f.optional => {
                let nulls = tx.count(&format!("SELECT COUNT(*) FROM {table} WHERE {} IS NULL", q(&f.name))).await?;
                if nulls > 0 {
                    return Err(refuse(format!(
                        "field `{}` became required but {nulls} rows have no value; fill them or keep it optional",
                        f.name
                    ))
                    .into());
                }
                tx.record_field(res, f).await?;
            }
            Some(_) => tx.record_field(res, f).await?,
        }
    }
    Ok(())
}

async fn create(tx: &mut WriteTx<'_>, res: &Resource) -> Result<(), StoreError> {
    let table = q(&res.table);
    let mut cols = vec![format!("{} TEXT PRIMARY KEY NOT NULL", q("id"))];
    if let Some(o) = &res.owner {
        // Records go with their owner when the account is deleted.
        cols.push(format!("{} TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE", q(o)));
    }
    cols.push(format!("{} BIGINT NOT NULL", q("created_at")));
    cols.push(format!("{} BIGINT NOT NULL", q("updated_at")));
    cols.extend(res.fields.iter().map(|f| column_def(f, true)));
    tx.execute_ddl(&format!("CREATE TABLE IF NOT EXISTS {table} ({})", cols.join(", "))).await?;
    // Lists are scoped by owner and paged by (created_at, id).
    let index_cols = match &res.owner {
        Some(o) => format!("{}, {}, {}", q(o), q("created_at"), q("id")),
        None => format!("{}, {}", q("created_at"), q("id")),
    };
    let index = q(&format!("{}_list", res.table));
    tx.execute_ddl(&format!("CREATE INDEX IF NOT EXISTS {index} ON {table} ({index_cols})")).await?;
    tx.record_resource(res).await?;
    for f in &res.fields {
        tx.record_field(res, f).await?;
    }
    Ok(())
}

/// The bookkeeping of declared resources, and the statements built from a declaration.
impl WriteTx<'_> {
    /// The owner column recorded for this resource: `None` when its table was never created.
    async fn recorded_owner(&mut self, resource: &str) -> Result<Option<Option<String>>, StoreError> {
        let row: Option<(Option<String>,)> =
            in_tx!(self, |conn| sqlx::query_as(SELECT_RECORDED_OWNER).bind(resource).fetch_optional(conn).await)?;
        Ok(row.map(|(owner,)| owner))
    }

    /// `(field, kind, optional)` as recorded when the table was last migrated.
    async fn recorded_fields(&mut self, resource: &str) -> Result<Vec<(String, String, bool)>, StoreError> {
        let rows = in_tx!(self, |conn| sqlx::query_as(SELECT_RECORDED_FIELDS).bind(resource).fetch_all(conn).await)?;
        Ok(rows)
    }

    async fn record_resource(&mut self, res: &Resource) -> Result<(), StoreError> {
        in_tx!(self, |conn| {
            sqlx::query(INSERT_RECORDED_RESOURCE)
                .bind(&res.name)
                .bind(&res.owner)
                .execute(conn)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    async fn record_field(&mut self, res: &Resource, f: &Field) -> Result<(), StoreError> {
        in_tx!(self, |conn| {
            sqlx::query(UPSERT_RECORDED_FIELD)
                .bind(&res.name)
                .bind(&f.name)
                .bind(f.kind.name())
                .bind(f.optional)
                .execute(conn)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// A `SELECT COUNT(*) ...` built from the declaration (no parameters).
    async fn count(&mut self, sql: &str) -> Result<i64, StoreError> {
        let (n,): (i64,) = in_tx!(self, |conn| sqlx::query_as(sql).fetch_one(conn).await)?;
        Ok(n)
    }

    /// DDL built from the declaration (DDL takes no parameters).
    async fn execute_ddl(&mut self, sql: &str) -> Result<(), StoreError> {
        in_tx!(self, |conn| sqlx::query(sql).execute(conn).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}

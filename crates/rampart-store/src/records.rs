//! Records of declared resources. Every statement is built here from the compiled declaration
//! (identifiers validated at load, quoted) with every value bound as a parameter, and the
//! caller's scope is part of the same statement: `WHERE "id" = $1 AND "user_id" = $2`.
//!
//! On SQLite they run on the calling thread through rusqlite (`db/inline.rs`): reads on the
//! inline readers, writes on the writer's rusqlite connection while its lock is held, in a group
//! commit under load (`db/group_commit.rs`). On
//! PostgreSQL they go through sqlx. The texts and the bound values are the same either way.

use rampart_core::clock::Millis;
use rampart_core::resources::{Kind, Resource, Scope, SqlValue};
use sqlx::{Database, Decode, Encode, Row, Type};

use crate::db::Db;
use crate::db::group_commit::record_write;
use crate::{Fault, Store, StoreError};

/// A stored record: server columns and the declared fields, in declaration order.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: String,
    pub owner: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub fields: Vec<(String, SqlValue)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Op {
    fn sql(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "<>",
            Op::Gt => ">",
            Op::Gte => ">=",
            Op::Lt => "<",
            Op::Lte => "<=",
        }
    }
}

/// `column op value`; the column is a declared field or a server column, checked by the caller.
#[derive(Debug, Clone)]
pub struct Filter {
    pub column: String,
    pub op: Op,
    pub value: SqlValue,
}

#[derive(Debug, Clone)]
pub struct Sort {
    pub column: String,
    pub descending: bool,
}

/// SQL text with its parameters, numbered as they are added.
struct Statement {
    sql: String,
    args: Vec<SqlValue>,
}

impl Statement {
    fn new(sql: impl Into<String>) -> Self {
        Self { sql: sql.into(), args: Vec::new() }
    }
    /// The placeholder for `v`. A NULL is written as the literal: a bound NULL must carry a type,
    /// and PostgreSQL refuses a text-typed NULL for a BIGINT column. No client value is ever
    /// written into the text.
    fn arg(&mut self, v: SqlValue) -> String {
        let mut placeholder = String::with_capacity(4);
        Self::placeholder(&mut self.args, v, &mut placeholder);
        placeholder
    }
    /// [`Statement::arg`] written at the end of the text.
    fn push_arg(&mut self, v: SqlValue) {
        Self::placeholder(&mut self.args, v, &mut self.sql);
    }
    /// Adds `v` to `args` and writes its placeholder into `out`, digit by digit: a `format!` per
    /// placeholder was a few hundred instructions on every statement (callgrind, issue 17).
    fn placeholder(args: &mut Vec<SqlValue>, v: SqlValue, out: &mut String) {
        if v == SqlValue::Null {
            out.push_str("NULL");
            return;
        }
        args.push(v);
        out.push('$');
        out.push_str(itoa::Buffer::new().format(args.len()));
    }
    /// Appends `pieces` to the text, in order.
    fn push(&mut self, pieces: &[&str]) {
        for piece in pieces {
            self.sql.push_str(piece);
        }
    }
    /// `AND "owner" = $n` when the scope is the caller's own rows.
    fn scope(&mut self, res: &Resource, scope: &Scope) -> Result<(), StoreError> {
        if let Some(user) = scope.owner() {
            let owner = res.owner.as_deref().ok_or(Fault::OwnerScopeWithoutOwner)?;
            // Pushed piece by piece (as `q` quotes it): on every owner-scoped statement, two
            // `format!`s here were about 900 instructions (callgrind, issue 17).
            self.push(&[" AND \"", owner, "\" = "]);
            self.push_arg(SqlValue::Text(user.to_owned()));
        }
        Ok(())
    }
}

impl Statement {
    /// The statement as a query with every argument bound, for whichever backend runs it.
    fn query<'q, DB>(&'q self) -> sqlx::query::Query<'q, DB, <DB as Database>::Arguments<'q>>
    where
        DB: Database,
        Option<String>: Encode<'q, DB> + Type<DB>,
        &'q str: Encode<'q, DB> + Type<DB>,
        i64: Encode<'q, DB> + Type<DB>,
        f64: Encode<'q, DB> + Type<DB>,
        bool: Encode<'q, DB> + Type<DB>,
    {
        let mut q = sqlx::query(&self.sql);
        for a in &self.args {
            q = match a {
                SqlValue::Null => q.bind(Option::<String>::None),
                SqlValue::Text(s) => q.bind(s.as_str()),
                SqlValue::Int(i) => q.bind(*i),
                SqlValue::Float(f) => q.bind(*f),
                SqlValue::Bool(b) => q.bind(*b),
            };
        }
        q
    }
}

impl Statement {
    /// Runs the statement on a rusqlite connection (the inline record readers on SQLite) and
    /// maps each row. Parameters are bound by name: `$N` is a named parameter to SQLite, numbered
    /// in the order the names first appear in the text, which is not always N (`record_presence`
    /// writes `$2` before `$1`).
    fn rows<T>(
        &self,
        conn: &rusqlite::Connection,
        mut map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let mut stmt = conn.prepare_cached(&self.sql)?;
        self.bind(&mut stmt)?;
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(map(row)?);
        }
        Ok(out)
    }

    /// Runs a statement that returns no rows on a rusqlite connection; the number of rows changed.
    fn execute(&self, conn: &rusqlite::Connection) -> Result<usize, StoreError> {
        let mut stmt = conn.prepare_cached(&self.sql)?;
        self.bind(&mut stmt)?;
        Ok(stmt.raw_execute()?)
    }

    fn bind(&self, stmt: &mut rusqlite::CachedStatement<'_>) -> Result<(), StoreError> {
        for index in 1..=stmt.parameter_count() {
            let arg = stmt
                .parameter_name(index)
                .and_then(|name| name.strip_prefix('$'))
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| self.args.get(n.wrapping_sub(1)))
                .ok_or(rusqlite::Error::InvalidParameterCount(index, self.args.len()))?;
            match arg {
                SqlValue::Null => stmt.raw_bind_parameter(index, rusqlite::types::Null)?,
                SqlValue::Text(s) => stmt.raw_bind_parameter(index, s.as_str())?,
                SqlValue::Int(i) => stmt.raw_bind_parameter(index, i)?,
                SqlValue::Float(f) => stmt.raw_bind_parameter(index, f)?,
                SqlValue::Bool(b) => stmt.raw_bind_parameter(index, b)?,
            }
        }
        Ok(())
    }
}

/// [`decode`] for a rusqlite row: the same columns, in the same order.
fn decode_inline(res: &Resource, row: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    let mut i = 0;
    let mut next = || {
        i += 1;
        i - 1
    };
    let id: String = row.get(next())?;
    let owner: Option<String> = match res.owner {
        Some(_) => row.get(next())?,
        None => None,
    };
    let created_at: i64 = row.get(next())?;
    let updated_at: i64 = row.get(next())?;
    let mut fields = Vec::with_capacity(res.fields.len());
    for f in &res.fields {
        let idx = next();
        let v = match f.kind {
            Kind::String { .. } | Kind::Enum(_) | Kind::Uuid => row.get::<_, Option<String>>(idx)?.map(SqlValue::Text),
            Kind::Integer { .. } | Kind::Timestamp => row.get::<_, Option<i64>>(idx)?.map(SqlValue::Int),
            Kind::Number { .. } => row.get::<_, Option<f64>>(idx)?.map(SqlValue::Float),
            Kind::Boolean => row.get::<_, Option<bool>>(idx)?.map(SqlValue::Bool),
        };
        fields.push((f.name.clone(), v.unwrap_or(SqlValue::Null)));
    }
    Ok(Record { id, owner, created_at, updated_at, fields })
}

/// Quotes an identifier. Identifiers come only from the validated declaration.
fn q(ident: &str) -> String {
    format!("\"{ident}\"")
}

/// The columns every read returns, in the order `decode` reads them. Made once per resource:
/// built on every request it was a few thousand instructions of `format!` (callgrind, issue 17).
fn columns(res: &Resource) -> &str {
    res.memo.columns(|| {
        let mut cols = vec![q("id")];
        if let Some(o) = &res.owner {
            cols.push(q(o));
        }
        cols.push(q("created_at"));
        cols.push(q("updated_at"));
        cols.extend(res.fields.iter().map(|f| q(&f.name)));
        cols.join(", ")
    })
}

fn decode<R: Row>(res: &Resource, row: &R) -> Result<Record, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> f64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
{
    let mut i = 0;
    let mut next = || {
        i += 1;
        i - 1
    };
    let id: String = row.try_get(next())?;
    let owner: Option<String> = match res.owner {
        Some(_) => row.try_get(next())?,
        None => None,
    };
    let created_at: i64 = row.try_get(next())?;
    let updated_at: i64 = row.try_get(next())?;
    let mut fields = Vec::with_capacity(res.fields.len());
    for f in &res.fields {
        let idx = next();
        let v = match f.kind {
            Kind::String { .. } | Kind::Enum(_) | Kind::Uuid => {
                row.try_get::<Option<String>, _>(idx)?.map(SqlValue::Text)
            }
            Kind::Integer { .. } | Kind::Timestamp => row.try_get::<Option<i64>, _>(idx)?.map(SqlValue::Int),
            Kind::Number { .. } => row.try_get::<Option<f64>, _>(idx)?.map(SqlValue::Float),
            Kind::Boolean => row.try_get::<Option<bool>, _>(idx)?.map(SqlValue::Bool),
        };
        fields.push((f.name.clone(), v.unwrap_or(SqlValue::Null)));
    }
    Ok(Record { id, owner, created_at, updated_at, fields })
}

impl Store {
    pub async fn insert_record(
        &self,
        res: &Resource,
        id: &str,
        owner: Option<&str>,
        now: Millis,
        values: Vec<(String, SqlValue)>,
    ) -> Result<Record, StoreError> {
        let mut st = Statement::new("");
        let mut cols = vec![q("id")];
        let mut vals = vec![st.arg(SqlValue::Text(id.to_owned()))];
        if let (Some(col), Some(user)) = (&res.owner, owner) {
            cols.push(q(col));
            vals.push(st.arg(SqlValue::Text(user.to_owned())));
        }
        cols.push(q("created_at"));
        vals.push(st.arg(SqlValue::Int(now)));
        cols.push(q("updated_at"));
        vals.push(st.arg(SqlValue::Int(now)));
        for (name, v) in values {
            cols.push(q(&name));
            vals.push(st.arg(v));
        }
        st.sql = format!(
            "INSERT INTO {} ({}) VALUES ({}) RETURNING {}",
            q(&res.table),
            cols.join(", "),
            vals.join(", "),
            columns(res)
        );
        match &self.db {
            Db::Sqlite { write, .. } => {
                let inserted = record_write(write, |c| st.rows(c, |r| decode_inline(res, r))).await?;
                inserted.into_iter().next().ok_or_else(|| StoreError::from(sqlx::Error::RowNotFound))
            }
            Db::Postgres(db) => Ok(st.query().fetch_one(db).await.and_then(|row| decode(res, &row))?),
        }
    }

    pub async fn get_record(&self, res: &Resource, id: &str, scope: &Scope) -> Result<Option<Record>, StoreError> {
        // Pushed piece by piece, as `q` quotes: this is every read of a record (issue 17).
        let mut st = Statement::new(String::with_capacity(256));
        st.push(&["SELECT ", columns(res), " FROM \"", &res.table, "\" WHERE \"id\" = "]);
        st.push_arg(SqlValue::Text(id.to_owned()));
        st.scope(res, scope)?;
        let record = match &self.db {
            Db::Sqlite { inline, .. } => inline.read(|c| st.rows(c, |r| decode_inline(res, r)))?.into_iter().next(),
            Db::Postgres(db) => st.query().fetch_optional(db).await?.map(|r| decode(res, &r)).transpose()?,
        };
        Ok(record)
    }

    /// Whether a record with this id exists, and whether it is also within `scope` (false when no
    /// scope is given), for the answer to a denied request. One statement that always returns one
    /// row of two counts, whether or not the record exists: a miss costs what a hit costs, so the
    /// time of the answer does not tell which ids exist.
    pub async fn record_presence(
        &self,
        res: &Resource,
        id: &str,
        scope: Option<&Scope>,
    ) -> Result<(bool, bool), StoreError> {
        let mut st = Statement::new("");
        let idp = st.arg(SqlValue::Text(id.to_owned()));
        let within = match scope.map(Scope::owner) {
            None => "CAST(0 AS BIGINT)".to_owned(),
            Some(None) => "COUNT(*)".to_owned(),
            Some(Some(user)) => {
                let owner = res.owner.as_deref().ok_or(Fault::OwnerScopeWithoutOwner)?;
                let p = st.arg(SqlValue::Text(user.to_owned()));
                format!("COUNT(CASE WHEN {} = {p} THEN 1 END)", q(owner))
            }
        };
        st.sql = format!("SELECT COUNT(*), {within} FROM {} WHERE {} = {idp}", q(&res.table), q("id"));
        let (exists, within): (i64, i64) = match &self.db {
            Db::Sqlite { inline, .. } => {
                inline.read(|c| st.rows(c, |r| Ok((r.get(0)?, r.get(1)?))))?.into_iter().next().unwrap_or_default()
            }
            Db::Postgres(db) => st.query().fetch_one(db).await.and_then(|r| Ok((r.try_get(0)?, r.try_get(1)?)))?,
        };
        Ok((exists > 0, within > 0))
    }

    /// One page, ordered by `sort` then `id`, after the keyset cursor `(sort value, id)`.
    pub async fn list_records(
        &self,
        res: &Resource,
        scope: &Scope,
        filters: &[Filter],
        sort: &Sort,
        after: Option<(SqlValue, String)>,
        limit: u32,
    ) -> Result<Vec<Record>, StoreError> {
        let mut st = Statement::new(String::with_capacity(512));
        st.push(&["SELECT ", columns(res), " FROM \"", &res.table, "\" WHERE 1 = 1"]);
        st.scope(res, scope)?;
        for f in filters {
            let p = st.arg(f.value.clone());
            st.sql.push_str(&format!(" AND {} {} {p}", q(&f.column), f.op.sql()));
        }
        let (cmp, dir) = if sort.descending { ("<", "DESC") } else { (">", "ASC") };
        if let Some((value, id)) = after {
            let (v1, v2, i) = (st.arg(value.clone()), st.arg(value), st.arg(SqlValue::Text(id)));
            let col = q(&sort.column);
            st.sql.push_str(&format!(" AND ({col} {cmp} {v1} OR ({col} = {v2} AND {} {cmp} {i}))", q("id")));
        }
        let lim = st.arg(SqlValue::Int(i64::from(limit)));
        st.sql.push_str(&format!(" ORDER BY {} {dir}, {} {dir} LIMIT {lim}", q(&sort.column), q("id")));
        let records = match &self.db {
            Db::Sqlite { inline, .. } => inline.read(|c| st.rows(c, |r| decode_inline(res, r)))?,
            Db::Postgres(db) => {
                st.query().fetch_all(db).await?.iter().map(|r| decode(res, r)).collect::<Result<Vec<_>, _>>()?
            }
        };
        Ok(records)
    }

    /// `None` when no row matched the id within the scope.
    pub async fn update_record(
        &self,
        res: &Resource,
        id: &str,
        scope: &Scope,
        now: Millis,
        values: Vec<(String, SqlValue)>,
    ) -> Result<Option<Record>, StoreError> {
        let mut st = Statement::new("");
        let mut sets = Vec::new();
        for (name, v) in values {
            let p = st.arg(v);
            sets.push(format!("{} = {p}", q(&name)));
        }
        let p = st.arg(SqlValue::Int(now));
        sets.push(format!("{} = {p}", q("updated_at")));
        let idp = st.arg(SqlValue::Text(id.to_owned()));
        st.sql = format!("UPDATE {} SET {} WHERE {} = {idp}", q(&res.table), sets.join(", "), q("id"));
        st.scope(res, scope)?;
        st.sql.push_str(&format!(" RETURNING {}", columns(res)));
        let record = match &self.db {
            Db::Sqlite { write, .. } => {
                record_write(write, |c| st.rows(c, |r| decode_inline(res, r))).await?.into_iter().next()
            }
            Db::Postgres(db) => st.query().fetch_optional(db).await?.map(|r| decode(res, &r)).transpose()?,
        };
        Ok(record)
    }

    /// False when no row matched the id within the scope.
    pub async fn delete_record(&self, res: &Resource, id: &str, scope: &Scope) -> Result<bool, StoreError> {
        let mut st = Statement::new(String::with_capacity(128));
        st.push(&["DELETE FROM \"", &res.table, "\" WHERE \"id\" = "]);
        st.push_arg(SqlValue::Text(id.to_owned()));
        st.scope(res, scope)?;
        let deleted = match &self.db {
            Db::Sqlite { write, .. } => record_write(write, |c| st.execute(c)).await?,
            Db::Postgres(db) => usize::try_from(st.query().execute(db).await?.rows_affected()).unwrap_or(usize::MAX),
        };
        Ok(deleted == 1)
    }
}

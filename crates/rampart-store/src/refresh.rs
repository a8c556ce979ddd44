//! Refresh tokens. The single-use rule lives in the schema (see the migration): rotation is one
//! INSERT of the successor with `parent_hash` UNIQUE, so of two requests racing with the same
//! token exactly one succeeds, with one statement and one commit.

use rampart_core::clock::Millis;

use crate::db::Db;
use crate::db::group_commit::record_write;
use crate::dialect::WriteTx;
use crate::{Store, StoreError, UserRow};

statements! {
    /// With `$3` NULL for the first token of a login (or a sibling); else the successor of `$3`,
    /// which the UNIQUE `parent_hash` admits once.
    INSERT_REFRESH = "INSERT INTO refresh_tokens \
         (token_hash, session_id, parent_hash, created_at, expires_at, created_ip, created_user_agent) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)";
    SELECT_REFRESH_BY_HASH = concat!(
        "SELECT r.token_hash, r.session_id, r.expires_at AS token_expires_at, \
                c.created_at AS used_at, c.created_ip AS used_ip, c.created_user_agent AS used_user_agent, \
                s.expires_at AS session_expires_at, s.revoked_at AS session_revoked_at, ",
        user_columns!("u."),
        " FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id JOIN users u ON u.id = s.user_id \
         LEFT JOIN refresh_tokens c ON c.parent_hash = r.token_hash \
         WHERE r.token_hash = $1"
    );
}

/// A refresh token with its login, its user, and (if it was already rotated) who rotated it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshRow {
    pub token_hash: String,
    pub session_id: String,
    pub token_expires_at: i64,
    pub used_at: Option<i64>,
    pub used_ip: Option<String>,
    pub used_user_agent: Option<String>,
    pub session_expires_at: i64,
    pub session_revoked_at: Option<i64>,
    #[sqlx(flatten)]
    pub user: UserRow,
}

/// The client that rotated a token: its IP and User-Agent.
pub type Client<'a> = (&'a str, Option<&'a str>);

/// A [`RefreshRow`] read on a rusqlite connection, columns as `SELECT_REFRESH_BY_HASH` lists them.
fn refresh_from_inline(row: &rusqlite::Row<'_>) -> rusqlite::Result<RefreshRow> {
    Ok(RefreshRow {
        token_hash: row.get(0)?,
        session_id: row.get(1)?,
        token_expires_at: row.get(2)?,
        used_at: row.get(3)?,
        used_ip: row.get(4)?,
        used_user_agent: row.get(5)?,
        session_expires_at: row.get(6)?,
        session_revoked_at: row.get(7)?,
        user: UserRow::from_inline(row, 8)?,
    })
}

/// One row of `refresh_tokens` to insert.
pub(crate) struct NewRefresh<'a> {
    pub(crate) token_hash: &'a str,
    pub(crate) session_id: &'a str,
    pub(crate) parent_hash: Option<&'a str>,
    pub(crate) now: Millis,
    pub(crate) expires_at: Millis,
    pub(crate) client: Client<'a>,
}

impl<'a> NewRefresh<'a> {
    /// The INSERT, bound; run on the writer or in a transaction.
    fn insert<DB: sqlx::Database>(&self) -> sqlx::query::Query<'a, DB, <DB as sqlx::Database>::Arguments<'a>>
    where
        &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
        Option<&'a str>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
        i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    {
        sqlx::query(INSERT_REFRESH)
            .bind(self.token_hash)
            .bind(self.session_id)
            .bind(self.parent_hash)
            .bind(self.now)
            .bind(self.expires_at)
            .bind(self.client.0)
            .bind(self.client.1)
    }
}

impl WriteTx<'_> {
    pub(crate) async fn insert_refresh(&mut self, row: &NewRefresh<'_>) -> Result<(), StoreError> {
        in_tx!(self, |conn| row.insert().execute(conn).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}

impl Store {
    /// The first token of a login, or a sibling in an allowed concurrent refresh (no parent).
    pub async fn insert_refresh(
        &self,
        token_hash: &str,
        session_id: &str,
        now: Millis,
        expires_at: Millis,
        client: Client<'_>,
    ) -> Result<(), StoreError> {
        self.insert_refresh_row(token_hash, session_id, None, now, expires_at, client).await?;
        Ok(())
    }

    /// Rotation: stores `new` as the successor of `old`. False (nothing stored) when `old`
    /// already has a successor, i.e. another request used it first.
    pub async fn rotate_refresh(
        &self,
        old: &str,
        new: &str,
        session_id: &str,
        now: Millis,
        expires_at: Millis,
        client: Client<'_>,
    ) -> Result<bool, StoreError> {
        match self.insert_refresh_row(new, session_id, Some(old), now, expires_at, client).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(other) => Err(other),
        }
    }

    async fn insert_refresh_row(
        &self,
        token_hash: &str,
        session_id: &str,
        parent_hash: Option<&str>,
        now: Millis,
        expires_at: Millis,
        client: Client<'_>,
    ) -> Result<(), StoreError> {
        let row = NewRefresh { token_hash, session_id, parent_hash, now, expires_at, client };
        match &self.db {
            // On the calling thread, in a group commit under load (see `db/group_commit.rs`):
            // a rotation is the hottest write after record writes.
            Db::Sqlite { write, .. } => {
                record_write(write, |c| {
                    let params = rusqlite::params![
                        row.token_hash,
                        row.session_id,
                        row.parent_hash,
                        row.now,
                        row.expires_at,
                        row.client.0,
                        row.client.1
                    ];
                    Ok(c.prepare_cached(INSERT_REFRESH)?.execute(params)?)
                })
                .await?;
            }
            Db::Postgres(db) => {
                row.insert().execute(db).await?;
            }
        }
        Ok(())
    }

    pub async fn refresh_by_hash(&self, token_hash: &str) -> Result<Option<RefreshRow>, StoreError> {
        let row = match &self.db {
            Db::Sqlite { inline, .. } => {
                inline.optional_row(SELECT_REFRESH_BY_HASH, [token_hash], refresh_from_inline)?
            }
            Db::Postgres(db) => {
                sqlx::query_as::<_, RefreshRow>(SELECT_REFRESH_BY_HASH).bind(token_hash).fetch_optional(db).await?
            }
        };
        Ok(row)
    }
}

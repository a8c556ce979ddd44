//! API keys and service accounts.
//!
//! A key is found by its id (the primary key) together with its owner, in one indexed statement,
//! on every request: the owner's roles, lock and very existence are read fresh each time, and a
//! revocation is a column of the same row, so a revoked key, or the key of a demoted, locked or
//! deleted owner, stops at once on every instance without a cache to invalidate. Only the SHA-256
//! of a key is stored; the caller compares it in constant time.
//!
//! Every statement that touches a user's keys carries the owner in its WHERE clause: zero rows is
//! "no such key" (404), whoever's key it was.

use rampart_core::clock::Millis;

use crate::db::Db;
use crate::users::KIND_SERVICE;
use crate::{Store, StoreError, UserRow};

/// The columns of an [`ApiKeyRow`].
macro_rules! api_key_columns {
    () => {
        "id, name, roles, scopes, created_at, expires_at, last_used_at, last_used_ip"
    };
}

statements! {
    INSERT_API_KEY = concat!(
        "INSERT INTO api_keys (id, user_id, name, secret_hash, roles, scopes, created_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ",
        api_key_columns!()
    );
    /// The key and its owner, by the key's id: the one lookup a request with a key costs.
    SELECT_API_KEY_AUTH = concat!(
        "SELECT k.id AS key_id, k.secret_hash AS key_secret_hash, k.previous_hash AS key_previous_hash, \
                k.previous_until AS key_previous_until, k.roles AS key_roles, k.scopes AS key_scopes, \
                k.expires_at AS key_expires_at, k.revoked_at AS key_revoked_at, \
                k.last_used_at AS key_last_used_at, ",
        user_columns!("u."),
        " FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.id = $1"
    );
    /// A user's keys that are not revoked (expired ones included, so their owner sees them end).
    SELECT_API_KEYS_OF_USER = concat!(
        "SELECT ",
        api_key_columns!(),
        " FROM api_keys WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC, id LIMIT $2"
    );
    REVOKE_API_KEY = "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL";
    /// The old hash stays valid until `$4` (the end of the grace; `$4` = now: not at all). A key
    /// rotated twice within a grace loses the oldest secret at once: only one predecessor is kept.
    ROTATE_API_KEY = concat!(
        "UPDATE api_keys SET previous_hash = secret_hash, previous_until = $4, secret_hash = $1 \
         WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL AND expires_at > $5 RETURNING ",
        api_key_columns!()
    );
    /// Only when the last recorded use is older than `$4`: several instances (or requests) that
    /// race to record a use write it once.
    TOUCH_API_KEY = "UPDATE api_keys SET last_used_at = $1, last_used_ip = $2 \
         WHERE id = $3 AND (last_used_at IS NULL OR last_used_at < $4)";
    SELECT_API_KEYS_PAGE = concat!(
        "SELECT user_id, ",
        api_key_columns!(),
        " FROM api_keys WHERE (CAST($1 AS TEXT) IS NULL OR user_id = $1) \
           AND (CAST($2 AS BIGINT) IS NULL OR created_at > $2 OR (created_at = $2 AND id > $3)) \
         ORDER BY created_at, id LIMIT $4"
    );
    INSERT_SERVICE_ACCOUNT = concat!(
        "INSERT INTO users (id, email, email_normalized, password_hash, display_name, roles, kind, \
                            email_verified, created_at, updated_at) \
         VALUES ($1, '', $2, $3, $4, $5, $6, FALSE, $7, $7) RETURNING ",
        user_columns!("")
    );
}

/// A key as its owner (or an admin) sees it: never its secret, never its hash.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    /// Space-separated.
    pub roles: String,
    /// JSON, or `None` for "not narrowed".
    pub scopes: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_used_at: Option<i64>,
    pub last_used_ip: Option<String>,
}

/// A key and its owner as one row, for authenticating a request. No `Debug`: it holds hashes.
#[derive(Clone, sqlx::FromRow)]
pub struct ApiKeyAuth {
    pub key_id: String,
    pub key_secret_hash: String,
    pub key_previous_hash: Option<String>,
    pub key_previous_until: Option<i64>,
    pub key_roles: String,
    pub key_scopes: Option<String>,
    pub key_expires_at: i64,
    pub key_revoked_at: Option<i64>,
    pub key_last_used_at: Option<i64>,
    #[sqlx(flatten)]
    pub user: UserRow,
}

/// An [`ApiKeyAuth`] read on a rusqlite connection, columns as `SELECT_API_KEY_AUTH` lists them.
fn key_auth_from_inline(row: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKeyAuth> {
    Ok(ApiKeyAuth {
        key_id: row.get(0)?,
        key_secret_hash: row.get(1)?,
        key_previous_hash: row.get(2)?,
        key_previous_until: row.get(3)?,
        key_roles: row.get(4)?,
        key_scopes: row.get(5)?,
        key_expires_at: row.get(6)?,
        key_revoked_at: row.get(7)?,
        key_last_used_at: row.get(8)?,
        user: UserRow::from_inline(row, 9)?,
    })
}

pub struct NewApiKey<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub name: &'a str,
    pub secret_hash: &'a str,
    pub roles: &'a str,
    pub scopes: Option<&'a str>,
    pub created_by: &'a str,
    pub now: Millis,
    pub expires_at: Millis,
}

pub struct Rotation<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub secret_hash: &'a str,
    /// Until when the replaced secret still works.
    pub previous_until: Millis,
    pub now: Millis,
}

pub struct NewServiceAccount<'a> {
    pub id: &'a str,
    pub name: &'a str,
    /// The hash of a random password nobody is ever told: a valid hash that nothing can match.
    pub password_hash: &'a str,
    pub roles: &'a [&'a str],
    pub now: Millis,
}

/// At most this many keys are listed per user (newest first).
const KEYS_LIST_MAX: i64 = 200;

impl Store {
    pub async fn insert_api_key(&self, k: &NewApiKey<'_>) -> Result<ApiKeyRow, StoreError> {
        let row = on_write!(self, |db| {
            sqlx::query_as::<_, ApiKeyRow>(INSERT_API_KEY)
                .bind(k.id)
                .bind(k.user_id)
                .bind(k.name)
                .bind(k.secret_hash)
                .bind(k.roles)
                .bind(k.scopes)
                .bind(k.created_by)
                .bind(k.now)
                .bind(k.expires_at)
                .fetch_one(db)
                .await
        })?;
        Ok(row)
    }

    /// The key with this id and its owner (`None`: no such key, or its owner was deleted, which
    /// deleted the key). Revocation, expiry and the secret are the caller's to judge.
    pub async fn api_key_auth(&self, id: &str) -> Result<Option<ApiKeyAuth>, StoreError> {
        // On SQLite on the calling thread (see `db/inline.rs`): every request with a key reads it.
        let row = match &self.db {
            Db::Sqlite { inline, .. } => inline.optional_row(SELECT_API_KEY_AUTH, [id], key_auth_from_inline)?,
            Db::Postgres(db) => {
                sqlx::query_as::<_, ApiKeyAuth>(SELECT_API_KEY_AUTH).bind(id).fetch_optional(db).await?
            }
        };
        Ok(row)
    }

    pub async fn api_keys_of(&self, user_id: &str) -> Result<Vec<ApiKeyRow>, StoreError> {
        let rows = on_read!(self, |db| {
            sqlx::query_as::<_, ApiKeyRow>(SELECT_API_KEYS_OF_USER)
                .bind(user_id)
                .bind(KEYS_LIST_MAX)
                .fetch_all(db)
                .await
        })?;
        Ok(rows)
    }

    /// False when the user has no such live key (another user's key included).
    pub async fn revoke_api_key(&self, id: &str, user_id: &str, now: Millis) -> Result<bool, StoreError> {
        let done = on_write!(self, |db| {
            sqlx::query(REVOKE_API_KEY).bind(now).bind(id).bind(user_id).execute(db).await.map(|r| r.rows_affected())
        })?;
        Ok(done == 1)
    }

    /// `None` when the user has no such live, unexpired key.
    pub async fn rotate_api_key(&self, r: &Rotation<'_>) -> Result<Option<ApiKeyRow>, StoreError> {
        let row = on_write!(self, |db| {
            sqlx::query_as::<_, ApiKeyRow>(ROTATE_API_KEY)
                .bind(r.secret_hash)
                .bind(r.id)
                .bind(r.user_id)
                .bind(r.previous_until)
                .bind(r.now)
                .fetch_optional(db)
                .await
        })?;
        Ok(row)
    }

    /// Records a use, unless one was recorded since `unless_since`.
    pub async fn touch_api_key(&self, id: &str, ip: &str, now: Millis, unless_since: Millis) -> Result<(), StoreError> {
        on_write!(self, |db| {
            sqlx::query(TOUCH_API_KEY)
                .bind(now)
                .bind(ip)
                .bind(id)
                .bind(unless_since)
                .execute(db)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Every key (of one user, with `user`), in creation order after `after`, at most `limit`,
    /// revoked ones included: `(owner id, key)`.
    pub async fn api_keys_page(
        &self,
        user: Option<&str>,
        after: Option<(Millis, &str)>,
        limit: i64,
    ) -> Result<Vec<(String, ApiKeyRow)>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Owned {
            user_id: String,
            #[sqlx(flatten)]
            key: ApiKeyRow,
        }
        let rows = on_read!(self, |db| {
            sqlx::query_as::<_, Owned>(SELECT_API_KEYS_PAGE)
                .bind(user)
                .bind(after.map(|(at, _)| at))
                .bind(after.map(|(_, id)| id))
                .bind(limit)
                .fetch_all(db)
                .await
        })?;
        Ok(rows.into_iter().map(|o| (o.user_id, o.key)).collect())
    }

    /// A service account. Its `email_normalized` is `service:<id>`, which no parsed email can
    /// equal (it has no `@`): no login, reset or verification path, all of which look users up by
    /// a parsed email, can ever find it, so they answer exactly as for an unknown address.
    pub async fn insert_service_account(&self, s: &NewServiceAccount<'_>) -> Result<UserRow, StoreError> {
        let normalized = format!("service:{}", s.id);
        let row = on_write!(self, |db| {
            sqlx::query_as::<_, UserRow>(INSERT_SERVICE_ACCOUNT)
                .bind(s.id)
                .bind(&normalized)
                .bind(s.password_hash)
                .bind(s.name)
                .bind(s.roles.join(" "))
                .bind(KIND_SERVICE)
                .bind(s.now)
                .fetch_one(db)
                .await
        })?;
        Ok(row)
    }
}

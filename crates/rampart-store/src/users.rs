//! Users. Emails are looked up by their normalized (lower-cased) form.

use rampart_core::clock::{Millis, now_ms};

use crate::{Store, StoreError};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub email_normalized: String,
    /// The PHC string. Never leaves the server: response types do not have this field, and its
    /// `Debug` does not print it.
    pub password_hash: PasswordHash,
    pub display_name: Option<String>,
    pub roles: String,
    pub email_verified: bool,
    pub mfa_enabled: bool,
    pub failed_logins: i64,
    pub locked_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// `person`, or `service` for a service account (which never signs in: see `api_keys`).
    pub kind: String,
}

/// A stored password hash (a PHC string, or a wrapped one). Its `Debug` prints nothing of it, so
/// a `UserRow` in a log line, an error or a panic message does not hand out an offline-crackable
/// hash.
#[derive(Clone, PartialEq, Eq, sqlx::Type)]
#[sqlx(transparent)]
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for PasswordHash {
    fn from(phc: String) -> Self {
        Self(phc)
    }
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

impl UserRow {
    /// A user read on a rusqlite connection (SQLite's inline readers): the columns of
    /// `user_columns!`, in their order, from column `first` on.
    pub(crate) fn from_inline(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(first)?,
            email: row.get(first + 1)?,
            email_normalized: row.get(first + 2)?,
            password_hash: PasswordHash(row.get(first + 3)?),
            display_name: row.get(first + 4)?,
            roles: row.get(first + 5)?,
            email_verified: row.get(first + 6)?,
            mfa_enabled: row.get(first + 7)?,
            failed_logins: row.get(first + 8)?,
            locked_until: row.get(first + 9)?,
            created_at: row.get(first + 10)?,
            updated_at: row.get(first + 11)?,
            kind: row.get(first + 12)?,
        })
    }

    pub fn roles(&self) -> Vec<String> {
        self.roles.split_whitespace().map(str::to_owned).collect()
    }
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.split_whitespace().any(|r| r == role)
    }
    /// A service account: no password anyone knows, no email, acts only through API keys.
    pub fn is_service(&self) -> bool {
        self.kind == KIND_SERVICE
    }
}

/// `users.kind` of a service account.
pub const KIND_SERVICE: &str = "service";

/// Users recently read by id, for bearer requests: a token proves who the caller is, and the row
/// only supplies profile fields. An entry lives `USER_CACHE_MS` at most and is dropped by every
/// write to that user through this store, so one instance never serves its own stale row; other
/// instances may lag by at most that long. Nothing that grants or removes access depends on it:
/// roles come from the token, and revocation is checked on every request.
pub(crate) struct UserCache(quick_cache::sync::Cache<String, (Millis, UserRow)>);

const USER_CACHE_MS: Millis = 1000;

impl UserCache {
    pub(crate) fn new() -> Self {
        Self(quick_cache::sync::Cache::new(10_000))
    }
}

pub struct NewUser<'a> {
    pub id: &'a str,
    pub email: &'a str,
    pub email_normalized: &'a str,
    pub password_hash: &'a str,
    pub roles: &'a [&'a str],
    pub now: Millis,
}

statements! {
    INSERT_USER = concat!(
        "INSERT INTO users (id, email, email_normalized, password_hash, roles, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING ",
        user_columns!("")
    );
    SELECT_USER_BY_EMAIL = concat!("SELECT ", user_columns!(""), " FROM users WHERE email_normalized = $1");
    SELECT_USER_BY_ID = concat!("SELECT ", user_columns!(""), " FROM users WHERE id = $1");
    /// Only if the stored hash is still the one the login verified.
    REHASH_PASSWORD = "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3 AND password_hash = $4";
    SELECT_PASSWORD_HASHES_AFTER = "SELECT id, password_hash FROM users WHERE id > $1 ORDER BY id LIMIT $2";
    SET_DISPLAY_NAME = concat!(
        "UPDATE users SET display_name = $1, updated_at = $2 WHERE id = $3 RETURNING ",
        user_columns!("")
    );
    SET_ROLES = "UPDATE users SET roles = $1, updated_at = $2 WHERE id = $3";
}

impl Store {
    /// `Conflict` when the normalized email is taken.
    pub async fn insert_user(&self, u: &NewUser<'_>) -> Result<UserRow, StoreError> {
        let row = on_write!(self, |db| {
            sqlx::query_as::<_, UserRow>(INSERT_USER)
                .bind(u.id)
                .bind(u.email)
                .bind(u.email_normalized)
                .bind(u.password_hash)
                .bind(u.roles.join(" "))
                .bind(u.now)
                .fetch_one(db)
                .await
        })?;
        Ok(row)
    }

    pub async fn user_by_email(&self, email_normalized: &str) -> Result<Option<UserRow>, StoreError> {
        let row = on_read!(self, |db| {
            sqlx::query_as::<_, UserRow>(SELECT_USER_BY_EMAIL).bind(email_normalized).fetch_optional(db).await
        })?;
        Ok(row)
    }

    /// [`Store::user_by_id`] through the short-lived cache (see [`UserCache`]).
    pub async fn user_by_id_cached(&self, id: &str) -> Result<Option<UserRow>, StoreError> {
        let now = now_ms();
        if let Some((at, row)) = self.users.0.get(id)
            && now - at < USER_CACHE_MS
        {
            return Ok(Some(row));
        }
        let row = self.user_by_id(id).await?;
        if let Some(r) = &row {
            self.users.0.insert(id.to_owned(), (now, r.clone()));
        }
        Ok(row)
    }

    pub(crate) fn forget_user(&self, id: &str) {
        self.users.0.remove(id);
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, StoreError> {
        let row =
            on_read!(self, |db| sqlx::query_as::<_, UserRow>(SELECT_USER_BY_ID).bind(id).fetch_optional(db).await)?;
        Ok(row)
    }

    /// Replaces the stored hash, but only if it is still `old_hash`: a concurrent password change
    /// must not be overwritten by a login's opportunistic rehash.
    pub async fn rehash_password(
        &self,
        id: &str,
        old_hash: &str,
        new_hash: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        self.forget_user(id);
        on_write!(self, |db| {
            sqlx::query(REHASH_PASSWORD)
                .bind(new_hash)
                .bind(now)
                .bind(id)
                .bind(old_hash)
                .execute(db)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// `(id, password_hash)` of up to `limit` users whose id sorts after `after`, in id order: for
    /// walking every stored hash in batches.
    pub async fn password_hashes_after(&self, after: &str, limit: i64) -> Result<Vec<(String, String)>, StoreError> {
        let rows = on_read!(self, |db| {
            sqlx::query_as(SELECT_PASSWORD_HASHES_AFTER).bind(after).bind(limit).fetch_all(db).await
        })?;
        Ok(rows)
    }

    pub async fn set_display_name(
        &self,
        id: &str,
        name: Option<&str>,
        now: Millis,
    ) -> Result<Option<UserRow>, StoreError> {
        self.forget_user(id);
        let row = on_write!(self, |db| {
            sqlx::query_as::<_, UserRow>(SET_DISPLAY_NAME).bind(name).bind(now).bind(id).fetch_optional(db).await
        })?;
        Ok(row)
    }

    /// Adds a role to an existing user (used by `rampart user create --role`).
    pub async fn set_roles(&self, id: &str, roles: &[&str], now: Millis) -> Result<(), StoreError> {
        self.forget_user(id);
        let roles = roles.join(" ");
        on_write!(self, |db| {
            sqlx::query(SET_ROLES).bind(&roles).bind(now).bind(id).execute(db).await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }
}

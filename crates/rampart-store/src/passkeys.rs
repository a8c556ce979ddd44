//! Passkeys (WebAuthn credentials) and the ceremonies under way.
//!
//! A ceremony's state is one `passkey_challenges` row, found by the hash of its random id and
//! consumed by the `DELETE ... RETURNING` that reads it: single use even when two instances finish
//! the same ceremony at once, and bound to its kind (and user) by that statement's `WHERE`, so a
//! challenge of one ceremony cannot finish another. Recording a use of a passkey is guarded on
//! the signature counter: a counter that did not move forward (a cloned authenticator, or a
//! replay racing the original) changes nothing.

use rampart_core::clock::Millis;

use crate::dialect::WriteTx;
use crate::{Store, StoreError};

statements! {
    INSERT_PASSKEY_CHALLENGE = "INSERT INTO passkey_challenges \
         (id_hash, kind, user_id, mfa_token_hash, name, state, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    /// Reads and spends in one statement; an expired row is spent too (and not returned).
    TAKE_PASSKEY_CHALLENGE = "DELETE FROM passkey_challenges WHERE id_hash = $1 AND kind = $2 \
         RETURNING user_id, mfa_token_hash, name, state, expires_at";
    PURGE_PASSKEY_CHALLENGES = "DELETE FROM passkey_challenges WHERE expires_at < $1";
    INSERT_PASSKEY = "INSERT INTO passkeys (id, user_id, credential_id, name, credential, sign_count, \
         backup_eligible, backed_up, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    SELECT_PASSKEYS_OF_USER = "SELECT id, user_id, credential_id, name, credential, sign_count, backup_eligible, \
         backed_up, created_at, last_used_at FROM passkeys WHERE user_id = $1 ORDER BY created_at, id";
    SELECT_PASSKEY_BY_CREDENTIAL = "SELECT id, user_id, credential_id, name, credential, sign_count, backup_eligible, \
         backed_up, created_at, last_used_at FROM passkeys WHERE credential_id = $1";
    COUNT_PASSKEYS_OF_USER = "SELECT COUNT(*) FROM passkeys WHERE user_id = $1";
    RENAME_PASSKEY = "UPDATE passkeys SET name = $3 WHERE id = $1 AND user_id = $2 RETURNING id, user_id, \
         credential_id, name, credential, sign_count, backup_eligible, backed_up, created_at, last_used_at";
    DELETE_PASSKEY = "DELETE FROM passkeys WHERE id = $1 AND user_id = $2";
    /// Only when the counter moved forward (or the authenticator keeps none: both zero).
    USE_PASSKEY = "UPDATE passkeys SET credential = $3, sign_count = $4, backed_up = $5, last_used_at = $6 \
         WHERE id = $1 AND user_id = $2 AND (sign_count < $4 OR (sign_count = 0 AND $4 = 0))";
    DELETE_PASSKEYS_OF_USER = "DELETE FROM passkeys WHERE user_id = $1";
    /// When a live login of the user started: how recent its sign-in is, for a change that
    /// needs a recent one.
    SELECT_LOGIN_STARTED = "SELECT created_at FROM sessions WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL";
}

/// Which ceremony a challenge belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ceremony {
    /// Adding a passkey to a signed-in user's account.
    Register,
    /// Signing in with a discoverable passkey, no email asked.
    Login,
    /// Answering an `mfa_token` with a passkey.
    Mfa,
}

impl Ceremony {
    pub fn as_str(self) -> &'static str {
        match self {
            Ceremony::Register => "register",
            Ceremony::Login => "login",
            Ceremony::Mfa => "mfa",
        }
    }
}

/// A ceremony to store.
#[derive(Debug, Clone)]
pub struct NewPasskeyChallenge<'a> {
    pub id_hash: &'a str,
    pub ceremony: Ceremony,
    pub user_id: Option<&'a str>,
    pub mfa_token_hash: Option<&'a str>,
    pub name: Option<&'a str>,
    /// The serialized ceremony state.
    pub state: &'a str,
    pub now: Millis,
    pub expires_at: Millis,
}

/// A ceremony, taken (it is gone from the table).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PasskeyChallengeRow {
    pub user_id: Option<String>,
    pub mfa_token_hash: Option<String>,
    pub name: Option<String>,
    pub state: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PasskeyRow {
    pub id: String,
    pub user_id: String,
    /// base64url of the credential id.
    pub credential_id: String,
    pub name: String,
    /// The serialized verifier-side credential (public key, counter, flags).
    pub credential: String,
    pub sign_count: i64,
    pub backup_eligible: bool,
    pub backed_up: bool,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A passkey to store.
#[derive(Debug, Clone)]
pub struct NewPasskey<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub credential_id: &'a str,
    pub name: &'a str,
    pub credential: &'a str,
    pub sign_count: i64,
    pub backup_eligible: bool,
    pub backed_up: bool,
    pub now: Millis,
}

/// A verified use of a passkey, to record.
#[derive(Debug, Clone, Copy)]
pub struct PasskeyUse<'a> {
    pub id: &'a str,
    pub credential: &'a str,
    pub sign_count: i64,
    pub backed_up: bool,
}

impl Store {
    pub async fn insert_passkey_challenge(&self, c: &NewPasskeyChallenge<'_>) -> Result<(), StoreError> {
        on_write!(self, |db| {
            sqlx::query(INSERT_PASSKEY_CHALLENGE)
                .bind(c.id_hash)
                .bind(c.ceremony.as_str())
                .bind(c.user_id)
                .bind(c.mfa_token_hash)
                .bind(c.name)
                .bind(c.state)
                .bind(c.now)
                .bind(c.expires_at)
                .execute(db)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Spends the challenge of this ceremony, and returns it if it had not expired. A challenge
    /// of another ceremony is left alone (and not returned).
    pub async fn take_passkey_challenge(
        &self,
        id_hash: &str,
        ceremony: Ceremony,
        now: Millis,
    ) -> Result<Option<PasskeyChallengeRow>, StoreError> {
        let row = on_write!(self, |db| {
            sqlx::query_as::<_, PasskeyChallengeRow>(TAKE_PASSKEY_CHALLENGE)
                .bind(id_hash)
                .bind(ceremony.as_str())
                .fetch_optional(db)
                .await
        })?;
        Ok(row.filter(|r| r.expires_at > now))
    }

    pub async fn purge_passkey_challenges(&self, now: Millis) -> Result<u64, StoreError> {
        let done = on_write!(self, |db| {
            sqlx::query(PURGE_PASSKEY_CHALLENGES).bind(now).execute(db).await.map(|r| r.rows_affected())
        })?;
        Ok(done)
    }

    /// Stores a new passkey; `Err(Conflict)` when its credential id is registered already (to
    /// anyone). In the same transaction, `recovery_hashes` become the user's recovery codes when
    /// they hold no unused one: a first second factor comes with its way around being lost, as
    /// TOTP's does (see `mfa.rs`), while a user who has codes keeps exactly those. Whether the
    /// codes were stored (and so may be shown).
    pub async fn insert_passkey(&self, p: &NewPasskey<'_>, recovery_hashes: &[String]) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        tx.lock_user(p.user_id).await?;
        in_tx!(&mut tx, |conn| {
            sqlx::query(INSERT_PASSKEY)
                .bind(p.id)
                .bind(p.user_id)
                .bind(p.credential_id)
                .bind(p.name)
                .bind(p.credential)
                .bind(p.sign_count)
                .bind(p.backup_eligible)
                .bind(p.backed_up)
                .bind(p.now)
                .execute(conn)
                .await
                .map(|r| r.rows_affected())
        })?;
        let issue = !recovery_hashes.is_empty() && !tx.has_unused_recovery_codes(p.user_id).await?;
        if issue {
            tx.insert_recovery_codes(p.user_id, recovery_hashes).await?;
        }
        tx.commit().await?;
        Ok(issue)
    }

    pub async fn passkeys_of_user(&self, user_id: &str) -> Result<Vec<PasskeyRow>, StoreError> {
        let rows = on_write!(self, |db| {
            sqlx::query_as::<_, PasskeyRow>(SELECT_PASSKEYS_OF_USER).bind(user_id).fetch_all(db).await
        })?;
        Ok(rows)
    }

    pub async fn passkey_by_credential(&self, credential_id: &str) -> Result<Option<PasskeyRow>, StoreError> {
        let row = on_write!(self, |db| {
            sqlx::query_as::<_, PasskeyRow>(SELECT_PASSKEY_BY_CREDENTIAL).bind(credential_id).fetch_optional(db).await
        })?;
        Ok(row)
    }

    /// When the live login `session_id` of the user signed in; `None` when it is not live.
    pub async fn login_started_at(&self, session_id: &str, user_id: &str) -> Result<Option<Millis>, StoreError> {
        let at = on_write!(self, |db| {
            sqlx::query_scalar::<_, i64>(SELECT_LOGIN_STARTED).bind(session_id).bind(user_id).fetch_optional(db).await
        })?;
        Ok(at)
    }

    pub async fn count_passkeys(&self, user_id: &str) -> Result<i64, StoreError> {
        let n = on_write!(self, |db| {
            sqlx::query_scalar::<_, i64>(COUNT_PASSKEYS_OF_USER).bind(user_id).fetch_one(db).await
        })?;
        Ok(n)
    }

    /// Renames the user's own passkey; `None` for an unknown id or another user's.
    pub async fn rename_passkey(&self, id: &str, user_id: &str, name: &str) -> Result<Option<PasskeyRow>, StoreError> {
        let row = on_write!(self, |db| {
            sqlx::query_as::<_, PasskeyRow>(RENAME_PASSKEY).bind(id).bind(user_id).bind(name).fetch_optional(db).await
        })?;
        Ok(row)
    }

    /// Removes the user's own passkey; false for an unknown id or another user's. When it was the
    /// last second factor (no other passkey, no TOTP), the recovery codes and the logins waiting
    /// for a second factor go in the same transaction, as when TOTP is disabled (see `mfa.rs`).
    pub async fn delete_passkey(&self, id: &str, user_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        tx.lock_user(user_id).await?;
        let done = in_tx!(&mut tx, |conn| {
            sqlx::query(DELETE_PASSKEY).bind(id).bind(user_id).execute(conn).await.map(|r| r.rows_affected())
        })?;
        if done != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.drop_recovery_codes_without_factor(user_id).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records a verified use (new counter, flags, last use); false when the counter did not move
    /// forward since it was read, so the use must be refused.
    pub async fn use_passkey(&self, user_id: &str, u: PasskeyUse<'_>, now: Millis) -> Result<bool, StoreError> {
        // One statement in a transaction of its own: the same bound statement as a login's
        // second factor uses inside its transaction (`WriteTx::use_passkey`).
        let mut tx = self.begin_write().await?;
        let done = tx.use_passkey(user_id, u, now).await?;
        tx.commit().await?;
        Ok(done)
    }
}

impl WriteTx<'_> {
    /// Records a verified use inside a transaction (the second factor of a login): see
    /// [`Store::use_passkey`].
    pub(crate) async fn use_passkey(
        &mut self,
        user_id: &str,
        u: PasskeyUse<'_>,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let done = in_tx!(self, |conn| {
            sqlx::query(USE_PASSKEY)
                .bind(u.id)
                .bind(user_id)
                .bind(u.credential)
                .bind(u.sign_count)
                .bind(u.backed_up)
                .bind(now)
                .execute(conn)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(done == 1)
    }

    /// Removes every passkey of the user; how many there were.
    pub(crate) async fn delete_passkeys_of_user(&mut self, user_id: &str) -> Result<u64, StoreError> {
        let done = in_tx!(self, |conn| {
            sqlx::query(DELETE_PASSKEYS_OF_USER).bind(user_id).execute(conn).await.map(|r| r.rows_affected())
        })?;
        Ok(done)
    }
}

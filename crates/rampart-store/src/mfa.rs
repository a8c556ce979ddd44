//! TOTP enrolment, recovery codes and logins waiting for their second factor.
//!
//! Each "use once" rule is one guarded `UPDATE` whose `WHERE` says "not used yet": a TOTP step is
//! accepted only if later than the last one (`last_step`), a recovery code only while `used_at` is
//! NULL, an `mfa_token` only while unused, unexpired and under its attempt limit. Completing a
//! login spends the challenge and the code in one transaction, so neither is spent alone.
//!
//! Recovery codes belong to the account's second factors as a whole, not to TOTP alone: they are
//! issued with the first factor (TOTP enabled, or a first passkey when there are none yet) and
//! deleted when the last factor goes (TOTP disabled with no passkey left, or the last passkey
//! removed with no TOTP), never while a factor remains. Every change of a user's second factors
//! takes that user's row lock first ([`WriteTx::lock_user`]), so two concurrent changes see each
//! other's outcome rather than both deciding on the state before either.

use rampart_core::clock::Millis;

use crate::dialect::WriteTx;
use crate::{OutgoingMail, Store, StoreError, UserRow};

statements! {
    /// Replaces an unconfirmed secret only: an enabled one is replaced by disabling it first.
    PUT_PENDING_TOTP = "INSERT INTO totp_secrets (user_id, secret_enc, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (user_id) DO UPDATE SET secret_enc = excluded.secret_enc, created_at = excluded.created_at, \
             last_step = NULL \
         WHERE totp_secrets.enabled_at IS NULL";
    SELECT_TOTP_SECRET = "SELECT secret_enc, enabled_at FROM totp_secrets WHERE user_id = $1";
    /// One page of every sealed TOTP secret, pending or enabled, in user-id order (keyset, so a
    /// page never skips or repeats a row whatever is written meanwhile).
    SELECT_SEALED_TOTP_PAGE = "SELECT user_id, secret_enc FROM totp_secrets WHERE user_id > $1 ORDER BY user_id LIMIT $2";
    /// Guarded on the value that was re-encrypted: a secret the user replaced meanwhile is left
    /// alone (the server sealed it under the current key anyway).
    RESEAL_TOTP_SECRET = "UPDATE totp_secrets SET secret_enc = $3 WHERE user_id = $1 AND secret_enc = $2";
    ENABLE_TOTP = "UPDATE totp_secrets SET enabled_at = $2, last_step = $3 \
         WHERE user_id = $1 AND enabled_at IS NULL AND (last_step IS NULL OR last_step < $3)";
    INSERT_RECOVERY_CODE = "INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)";
    /// A step is accepted only if later than the last one used.
    SPEND_TOTP_STEP = "UPDATE totp_secrets SET last_step = $2 \
         WHERE user_id = $1 AND enabled_at IS NOT NULL AND (last_step IS NULL OR last_step < $2)";
    SPEND_RECOVERY_CODE = "UPDATE recovery_codes SET used_at = $3 \
         WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL";
    SET_MFA_ENABLED = "UPDATE users SET mfa_enabled = $2, updated_at = $3 WHERE id = $1";
    RESET_MFA_ENABLED = concat!(
        "UPDATE users SET mfa_enabled = $3, updated_at = $2 WHERE id = $1 RETURNING ",
        user_columns!("")
    );
    DELETE_ENABLED_TOTP_SECRET = "DELETE FROM totp_secrets WHERE user_id = $1 AND enabled_at IS NOT NULL";
    DELETE_TOTP_SECRET = "DELETE FROM totp_secrets WHERE user_id = $1";
    DELETE_RECOVERY_CODES = "DELETE FROM recovery_codes WHERE user_id = $1";
    COUNT_UNUSED_RECOVERY_CODES = "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL";
    /// The second factors in force: passkeys and an enabled (not merely pending) TOTP secret.
    COUNT_SECOND_FACTORS = "SELECT (SELECT COUNT(*) FROM passkeys WHERE user_id = $1) \
         + (SELECT COUNT(*) FROM totp_secrets WHERE user_id = $1 AND enabled_at IS NOT NULL)";
    /// A write that changes nothing, for the row lock it takes on PostgreSQL (see `lock_user`).
    LOCK_USER = "UPDATE users SET updated_at = updated_at WHERE id = $1";
    DELETE_MFA_CHALLENGES = "DELETE FROM mfa_challenges WHERE user_id = $1";
    INSERT_MFA_CHALLENGE = "INSERT INTO mfa_challenges (token_hash, user_id, flow, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)";
    SELECT_MFA_CHALLENGE = "SELECT user_id, flow FROM mfa_challenges \
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 AND failed_attempts < $3";
    FAIL_MFA_CHALLENGE = "UPDATE mfa_challenges SET failed_attempts = failed_attempts + 1 WHERE token_hash = $1";
    SPEND_MFA_CHALLENGE = "UPDATE mfa_challenges SET used_at = $3 \
         WHERE token_hash = $1 AND user_id = $2 AND used_at IS NULL AND expires_at > $3 AND failed_attempts < $4";
    PURGE_MFA_CHALLENGES = "DELETE FROM mfa_challenges WHERE expires_at < $1 OR used_at IS NOT NULL";
}

/// Wrong codes an `mfa_token` survives; the next attempt finds it dead.
pub const MFA_MAX_ATTEMPTS: i64 = 5;

/// What proves the second factor.
#[derive(Debug, Clone, Copy)]
pub enum MfaProof<'a> {
    /// A TOTP code of this time step (Unix time / 30).
    Totp(i64),
    /// The hash of a recovery code.
    Recovery(&'a str),
    /// A passkey assertion webauthn-rs verified: recorded only if its counter moved forward.
    Passkey(crate::PasskeyUse<'a>),
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TotpRow {
    pub secret_enc: String,
    pub enabled_at: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChallengeRow {
    pub user_id: String,
    /// `cookie` or `token`: the flow the login started as.
    pub flow: String,
}

/// What [`Store::reset_mfa`] did.
#[derive(Debug, Clone)]
pub struct MfaReset {
    /// The user afterwards.
    pub user: UserRow,
    /// Whether a second factor was in force (not only a setup waiting to be confirmed): the owner
    /// is told only then.
    pub removed: bool,
}

impl Store {
    /// Stores a new, not yet confirmed, TOTP secret (replacing an earlier unconfirmed one). False
    /// when TOTP is already enabled: an enabled secret is only replaced by disabling it first.
    pub async fn put_pending_totp(&self, user_id: &str, secret_enc: &str, now: Millis) -> Result<bool, StoreError> {
        let done = on_write!(self, |db| {
            sqlx::query(PUT_PENDING_TOTP)
                .bind(user_id)
                .bind(secret_enc)
                .bind(now)
                .execute(db)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(done == 1)
    }

    /// Up to `limit` sealed TOTP secrets (user id, sealed value) of users after `after` in id
    /// order: the pages `rampart data-key rotate` walks.
    pub async fn sealed_totp_page(&self, after: &str, limit: i64) -> Result<Vec<(String, String)>, StoreError> {
        let rows = on_write!(self, |db| {
            sqlx::query_as::<_, (String, String)>(SELECT_SEALED_TOTP_PAGE).bind(after).bind(limit).fetch_all(db).await
        })?;
        Ok(rows)
    }

    /// Replaces a sealed TOTP secret, only if it is still `old`. False when it changed meanwhile.
    pub async fn reseal_totp_secret(&self, user_id: &str, old: &str, new: &str) -> Result<bool, StoreError> {
        let done = on_write!(self, |db| {
            sqlx::query(RESEAL_TOTP_SECRET)
                .bind(user_id)
                .bind(old)
                .bind(new)
                .execute(db)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(done == 1)
    }

    pub async fn totp_secret(&self, user_id: &str) -> Result<Option<TotpRow>, StoreError> {
        let row = on_write!(self, |db| {
            sqlx::query_as::<_, TotpRow>(SELECT_TOTP_SECRET).bind(user_id).fetch_optional(db).await
        })?;
        Ok(row)
    }

    /// Confirms the pending secret with the step of a valid code (which is thereby used), and
    /// replaces the recovery codes. False when there is no pending secret or the step was used.
    pub async fn enable_totp(
        &self,
        user_id: &str,
        step: i64,
        recovery_hashes: &[String],
        now: Millis,
        mail: &OutgoingMail,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        tx.lock_user(user_id).await?;
        let enabled = in_tx!(&mut tx, |conn| {
            sqlx::query(ENABLE_TOTP).bind(user_id).bind(now).bind(step).execute(conn).await.map(|r| r.rows_affected())
        })?;
        if enabled != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.delete_of_user(DELETE_RECOVERY_CODES, user_id).await?;
        tx.insert_recovery_codes(user_id, recovery_hashes).await?;
        tx.set_mfa_enabled(user_id, true, now).await?;
        tx.enqueue_mail(mail, now).await?;
        tx.commit().await?;
        self.forget_user(user_id);
        Ok(true)
    }

    /// Spends the proof and removes the TOTP factor (secret, pending logins) and, unless a passkey
    /// remains, the recovery codes, queuing the owner's notice (`mail`) in the same transaction.
    /// False when the proof was already used.
    pub async fn disable_totp(
        &self,
        user_id: &str,
        proof: MfaProof<'_>,
        now: Millis,
        mail: &OutgoingMail,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        tx.lock_user(user_id).await?;
        if !tx.spend_proof(user_id, proof, now).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        // A user who keeps a passkey keeps the codes that get them past its loss.
        for sql in [DELETE_TOTP_SECRET, DELETE_MFA_CHALLENGES] {
            tx.delete_of_user(sql, user_id).await?;
        }
        tx.drop_recovery_codes_without_factor(user_id).await?;
        tx.set_mfa_enabled(user_id, false, now).await?;
        tx.enqueue_mail(mail, now).await?;
        tx.commit().await?;
        self.forget_user(user_id);
        Ok(true)
    }

    /// Removes every second factor of the user, whatever state it is in (enabled or pending
    /// TOTP secret, recovery codes) and ends the logins waiting for one, in one transaction: an
    /// admin's or operator's way back for an owner locked out by a factor they do not hold.
    /// `None` when there is no such user. When a factor in force was removed, the owner's notice
    /// (`mail`, given the owner's address) is queued in the same transaction.
    pub async fn reset_mfa(
        &self,
        user_id: &str,
        now: Millis,
        mail: impl FnOnce(&str) -> Option<OutgoingMail>,
    ) -> Result<Option<MfaReset>, StoreError> {
        let mut tx = self.begin_write().await?;
        tx.lock_user(user_id).await?;
        let in_force = tx.delete_of_user(DELETE_ENABLED_TOTP_SECRET, user_id).await? > 0;
        tx.remove_second_factor(user_id).await?;
        // Passkeys are second factors too (and first ones): the reset removes them as well.
        let in_force = tx.delete_passkeys_of_user(user_id).await? > 0 || in_force;
        let updated = in_tx!(&mut tx, |conn| {
            sqlx::query_as::<_, UserRow>(RESET_MFA_ENABLED)
                .bind(user_id)
                .bind(now)
                .bind(false)
                .fetch_optional(conn)
                .await
        })?;
        let Some(user) = updated else {
            tx.rollback().await?;
            return Ok(None);
        };
        // `None`: the caller could not make the notice (it logs why); the reset stands.
        if in_force && let Some(mail) = mail(&user.email) {
            tx.enqueue_mail(&mail, now).await?;
        }
        tx.commit().await?;
        self.forget_user(user_id);
        Ok(Some(MfaReset { user, removed: in_force }))
    }

    pub async fn insert_mfa_challenge(
        &self,
        token_hash: &str,
        user_id: &str,
        flow: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<(), StoreError> {
        on_write!(self, |db| {
            sqlx::query(INSERT_MFA_CHALLENGE)
                .bind(token_hash)
                .bind(user_id)
                .bind(flow)
                .bind(now)
                .bind(expires_at)
                .execute(db)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// The challenge, if it can still be completed.
    pub async fn mfa_challenge(&self, token_hash: &str, now: Millis) -> Result<Option<ChallengeRow>, StoreError> {
        let row = on_write!(self, |db| {
            sqlx::query_as::<_, ChallengeRow>(SELECT_MFA_CHALLENGE)
                .bind(token_hash)
                .bind(now)
                .bind(MFA_MAX_ATTEMPTS)
                .fetch_optional(db)
                .await
        })?;
        Ok(row)
    }

    /// Counts a wrong code against the challenge.
    pub async fn fail_mfa_challenge(&self, token_hash: &str) -> Result<(), StoreError> {
        on_write!(self, |db| {
            sqlx::query(FAIL_MFA_CHALLENGE).bind(token_hash).execute(db).await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Spends the challenge and the proof together. False (nothing spent) when either was
    /// already used, or the challenge died meanwhile.
    pub async fn complete_mfa(
        &self,
        token_hash: &str,
        user_id: &str,
        proof: MfaProof<'_>,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let spent = in_tx!(&mut tx, |conn| {
            sqlx::query(SPEND_MFA_CHALLENGE)
                .bind(token_hash)
                .bind(user_id)
                .bind(now)
                .bind(MFA_MAX_ATTEMPTS)
                .execute(conn)
                .await
                .map(|r| r.rows_affected())
        })?;
        if spent != 1 || !tx.spend_proof(user_id, proof, now).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Drops challenges that can no longer be completed.
    pub async fn purge_mfa_challenges(&self, now: Millis) -> Result<u64, StoreError> {
        let done = on_write!(self, |db| {
            sqlx::query(PURGE_MFA_CHALLENGES).bind(now).execute(db).await.map(|r| r.rows_affected())
        })?;
        Ok(done)
    }
}

impl WriteTx<'_> {
    /// Uses a TOTP step (only if later than the last one used) or a recovery code (only if
    /// unused); whether it was usable.
    async fn spend_proof(&mut self, user_id: &str, proof: MfaProof<'_>, now: Millis) -> Result<bool, StoreError> {
        let spent = match proof {
            MfaProof::Totp(step) => in_tx!(self, |conn| {
                sqlx::query(SPEND_TOTP_STEP).bind(user_id).bind(step).execute(conn).await.map(|r| r.rows_affected())
            })?,
            MfaProof::Recovery(hash) => in_tx!(self, |conn| {
                sqlx::query(SPEND_RECOVERY_CODE)
                    .bind(user_id)
                    .bind(hash)
                    .bind(now)
                    .execute(conn)
                    .await
                    .map(|r| r.rows_affected())
            })?,
            MfaProof::Passkey(u) => u64::from(self.use_passkey(user_id, u, now).await?),
        };
        Ok(spent == 1)
    }

    async fn set_mfa_enabled(&mut self, user_id: &str, enabled: bool, now: Millis) -> Result<(), StoreError> {
        in_tx!(self, |conn| {
            sqlx::query(SET_MFA_ENABLED)
                .bind(user_id)
                .bind(enabled)
                .bind(now)
                .execute(conn)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Runs one of the `DELETE ... WHERE user_id = $1` statements above; the rows deleted.
    async fn delete_of_user(&mut self, sql: &'static str, user_id: &str) -> Result<u64, StoreError> {
        let deleted =
            in_tx!(self, |conn| sqlx::query(sql).bind(user_id).execute(conn).await.map(|r| r.rows_affected()))?;
        Ok(deleted)
    }

    /// Removes the TOTP secret (enabled or pending), the recovery codes and the logins waiting
    /// for a second factor.
    async fn remove_second_factor(&mut self, user_id: &str) -> Result<(), StoreError> {
        for sql in [DELETE_TOTP_SECRET, DELETE_RECOVERY_CODES, DELETE_MFA_CHALLENGES] {
            self.delete_of_user(sql, user_id).await?;
        }
        Ok(())
    }

    /// Takes the user's row lock until the transaction ends. On PostgreSQL (read committed) two
    /// transactions changing one user's second factors would otherwise both read the state before
    /// either wrote (both issue recovery codes, or both keep them with the last factor gone); with
    /// the lock the second waits, and its reads see the first's commit. On SQLite the single
    /// writer connection serializes every write transaction already.
    pub(crate) async fn lock_user(&mut self, user_id: &str) -> Result<(), StoreError> {
        in_tx!(self, |conn| sqlx::query(LOCK_USER).bind(user_id).execute(conn).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Stores recovery codes (their hashes) of the user, next to any already there.
    pub(crate) async fn insert_recovery_codes(&mut self, user_id: &str, hashes: &[String]) -> Result<(), StoreError> {
        for hash in hashes {
            in_tx!(self, |conn| {
                sqlx::query(INSERT_RECOVERY_CODE)
                    .bind(user_id)
                    .bind(hash)
                    .execute(conn)
                    .await
                    .map(|r| r.rows_affected())
            })?;
        }
        Ok(())
    }

    /// Whether the user holds a recovery code not used yet.
    pub(crate) async fn has_unused_recovery_codes(&mut self, user_id: &str) -> Result<bool, StoreError> {
        let n = in_tx!(self, |conn| {
            sqlx::query_scalar::<_, i64>(COUNT_UNUSED_RECOVERY_CODES).bind(user_id).fetch_one(conn).await
        })?;
        Ok(n > 0)
    }

    /// Deletes the recovery codes once no second factor is left (no passkey, no enabled TOTP),
    /// and the logins waiting for one (nothing could answer them). Kept, codes the owner may
    /// have thrown away with the factor would come back to life with the next factor added,
    /// which issues none while unused ones exist. Whether they were deleted.
    pub(crate) async fn drop_recovery_codes_without_factor(&mut self, user_id: &str) -> Result<bool, StoreError> {
        let left = in_tx!(self, |conn| {
            sqlx::query_scalar::<_, i64>(COUNT_SECOND_FACTORS).bind(user_id).fetch_one(conn).await
        })?;
        if left > 0 {
            return Ok(false);
        }
        for sql in [DELETE_RECOVERY_CODES, DELETE_MFA_CHALLENGES] {
            self.delete_of_user(sql, user_id).await?;
        }
        Ok(true)
    }

    /// Ends the logins waiting for a second factor.
    pub(crate) async fn end_mfa_challenges(&mut self, user_id: &str) -> Result<(), StoreError> {
        self.delete_of_user(DELETE_MFA_CHALLENGES, user_id).await?;
        Ok(())
    }
}

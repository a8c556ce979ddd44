//! Mailed single-use tokens (password reset, email verification) and the password writes.
//!
//! A token is spent by one guarded `UPDATE ... WHERE used_at IS NULL AND expires_at > now`, in
//! the same transaction as what it authorizes: of two requests racing with one token, one wins.

use rampart_core::clock::Millis;

use crate::admin::LOCKED_INDEFINITELY;
use crate::dialect::WriteTx;
use crate::{OutgoingMail, Store, StoreError, UserRow};

statements! {
    /// With `$6`, only if the user got no token of this purpose at or after `$6`.
    INSERT_ACCOUNT_TOKEN = "INSERT INTO account_tokens (token_hash, user_id, purpose, created_at, expires_at) \
         SELECT $1, $2, $3, $4, $5 WHERE CAST($6 AS BIGINT) IS NULL OR NOT EXISTS ( \
             SELECT 1 FROM account_tokens WHERE user_id = $2 AND purpose = $3 AND created_at >= $6)";
    SELECT_ACCOUNT_TOKEN_USER = concat!(
        "SELECT ",
        user_columns!(""),
        " FROM users WHERE id = (SELECT user_id FROM account_tokens \
         WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3)"
    );
    SPEND_ACCOUNT_TOKEN = "UPDATE account_tokens SET used_at = $3 \
         WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3 RETURNING user_id";
    MARK_EMAIL_VERIFIED = "UPDATE users SET email_verified = TRUE, updated_at = $2 WHERE id = $1";
    /// Lifts an automatic lockout, not an admin's lock (`$4`, `LOCKED_INDEFINITELY`).
    RESET_PASSWORD = "UPDATE users SET password_hash = $2, failed_logins = 0, email_verified = TRUE, \
             locked_until = CASE WHEN locked_until = $4 THEN locked_until ELSE NULL END, updated_at = $3 \
         WHERE id = $1";
    CHANGE_PASSWORD = "UPDATE users SET password_hash = $3, updated_at = $4 WHERE id = $1 AND password_hash = $2";
    VOID_ACCOUNT_TOKENS_OF_USER = "UPDATE account_tokens SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL";
    PURGE_ACCOUNT_TOKENS = "DELETE FROM account_tokens WHERE expires_at < $1 OR used_at IS NOT NULL";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    PasswordReset,
    EmailVerify,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::PasswordReset => "password_reset",
            Purpose::EmailVerify => "email_verify",
        }
    }
}

impl Store {
    /// Stores a token and queues the mail that carries it, in one transaction: no token without
    /// its mail, no mail for a token that was not stored. With `not_since`, only if the user got
    /// no token of this purpose at or after that time (a per-account throttle on mail that anyone
    /// can trigger): `false` when throttled, and then nothing is queued.
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_account_token(
        &self,
        token_hash: &str,
        user_id: &str,
        purpose: Purpose,
        now: Millis,
        expires_at: Millis,
        not_since: Option<Millis>,
        mail: &OutgoingMail,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let inserted = in_tx!(&mut tx, |conn| {
            sqlx::query(INSERT_ACCOUNT_TOKEN)
                .bind(token_hash)
                .bind(user_id)
                .bind(purpose.as_str())
                .bind(now)
                .bind(expires_at)
                .bind(not_since)
                .execute(conn)
                .await
                .map(|r| r.rows_affected())
        })?;
        if inserted != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.enqueue_mail(mail, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The user a still-usable token belongs to (the token is not spent).
    pub async fn account_token_user(
        &self,
        token_hash: &str,
        purpose: Purpose,
        now: Millis,
    ) -> Result<Option<UserRow>, StoreError> {
        let row = on_read!(self, |db| {
            sqlx::query_as::<_, UserRow>(SELECT_ACCOUNT_TOKEN_USER)
                .bind(token_hash)
                .bind(purpose.as_str())
                .bind(now)
                .fetch_optional(db)
                .await
        })?;
        Ok(row)
    }

    /// Spends a verification token and marks the address verified. `None`: no usable token.
    pub async fn verify_email(&self, token_hash: &str, now: Millis) -> Result<Option<String>, StoreError> {
        let mut tx = self.begin_write().await?;
        let Some(user_id) = tx.spend_token(token_hash, Purpose::EmailVerify, now).await? else {
            tx.rollback().await?;
            return Ok(None);
        };
        in_tx!(&mut tx, |conn| {
            sqlx::query(MARK_EMAIL_VERIFIED).bind(&user_id).bind(now).execute(conn).await.map(|r| r.rows_affected())
        })?;
        tx.commit().await?;
        self.forget_user(&user_id);
        Ok(Some(user_id))
    }

    /// Spends a reset token of `user_id` and sets the new hash, in one transaction that also ends
    /// every login of the user, voids their other reset tokens and pending MFA logins, and lifts
    /// an automatic lockout (not an admin's lock: a reset proves control of the mailbox, which is
    /// not what an admin lock is about). Following the mailed link proves the address too, so it
    /// is marked verified. `None`: the token was spent or expired meanwhile. Else
    /// the ids of the token logins that were revoked.
    pub async fn reset_password(
        &self,
        token_hash: &str,
        user_id: &str,
        new_hash: &str,
        now: Millis,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let mut tx = self.begin_write().await?;
        match tx.spend_token(token_hash, Purpose::PasswordReset, now).await? {
            Some(owner) if owner == user_id => {}
            _ => {
                tx.rollback().await?;
                return Ok(None);
            }
        }
        in_tx!(&mut tx, |conn| {
            sqlx::query(RESET_PASSWORD)
                .bind(user_id)
                .bind(new_hash)
                .bind(now)
                .bind(LOCKED_INDEFINITELY)
                .execute(conn)
                .await
                .map(|r| r.rows_affected())
        })?;
        let revoked = tx.void_old_password_grants(user_id, None, now).await?;
        tx.commit().await?;
        self.forget_user(user_id);
        Ok(Some(revoked))
    }

    /// Sets a new hash if the stored one is still `old_hash` (no concurrent change), ends every
    /// login of the user but `keep`, and queues the owner's notice (`mail`), in one transaction.
    /// `None`: the password changed meanwhile.
    pub async fn change_password(
        &self,
        user_id: &str,
        old_hash: &str,
        new_hash: &str,
        keep: &str,
        now: Millis,
        mail: &OutgoingMail,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let mut tx = self.begin_write().await?;
        let changed = in_tx!(&mut tx, |conn| {
            sqlx::query(CHANGE_PASSWORD)
                .bind(user_id)
                .bind(old_hash)
                .bind(new_hash)
                .bind(now)
                .execute(conn)
                .await
                .map(|r| r.rows_affected())
        })?;
        if changed != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        let revoked = tx.void_old_password_grants(user_id, Some(keep), now).await?;
        tx.enqueue_mail(mail, now).await?;
        tx.commit().await?;
        self.forget_user(user_id);
        Ok(Some(revoked))
    }

    /// Drops tokens that can no longer be used.
    pub async fn purge_account_tokens(&self, now: Millis) -> Result<u64, StoreError> {
        let done = on_write!(self, |db| {
            sqlx::query(PURGE_ACCOUNT_TOKENS).bind(now).execute(db).await.map(|r| r.rows_affected())
        })?;
        Ok(done)
    }
}

impl WriteTx<'_> {
    /// Spends a usable token of this purpose; its user id, if there was one.
    pub(crate) async fn spend_token(
        &mut self,
        token_hash: &str,
        purpose: Purpose,
        now: Millis,
    ) -> Result<Option<String>, StoreError> {
        let user_id = in_tx!(self, |conn| {
            sqlx::query_scalar::<_, String>(SPEND_ACCOUNT_TOKEN)
                .bind(token_hash)
                .bind(purpose.as_str())
                .bind(now)
                .fetch_optional(conn)
                .await
        })?;
        Ok(user_id)
    }

    /// A new password makes everything issued under the old one worthless: other logins (all
    /// but `keep`), reset links and verification links already mailed, logins waiting for their
    /// second factor. Returns the revoked token logins.
    ///
    /// Verification links are bound to the password they were issued under for the pre-account
    /// hijack: an attacker registers the victim's address first, and the verification mail waits
    /// in the victim's inbox; one click would verify an account whose password the attacker
    /// holds. Once the owner resets the password (the "someone tried to sign up" mail offers it),
    /// that link no longer verifies anything.
    async fn void_old_password_grants(
        &mut self,
        user_id: &str,
        keep: Option<&str>,
        now: Millis,
    ) -> Result<Vec<String>, StoreError> {
        in_tx!(self, |conn| {
            sqlx::query(VOID_ACCOUNT_TOKENS_OF_USER)
                .bind(user_id)
                .bind(now)
                .execute(conn)
                .await
                .map(|r| r.rows_affected())
        })?;
        self.end_mfa_challenges(user_id).await?;
        self.revoke_logins(user_id, keep, now).await
    }
}

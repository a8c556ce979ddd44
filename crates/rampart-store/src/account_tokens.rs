//! Mailed single-use tokens (password reset, email verification) and the password writes.
//!
//! A token is spent by one guarded `UPDATE ... WHERE used_at IS NULL AND expires_at > now`, in
//! the same transaction as what it authorizes: of two requests racing with one token, one wins.

use rampart_core::clock::Millis;

use crate::admin::LOCKED_INDEFINITELY;
use crate::sessions::revoke_logins;
use crate::users::USER_COLUMNS;
use crate::{Store, StoreError, UserRow};

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

/// A new password makes everything issued under the old one worthless: other logins, reset links
/// and verification links already mailed, logins waiting for their second factor. Evaluates to
/// the revoked token logins.
///
/// Verification links are bound to the password they were issued under for the pre-account
/// hijack: an attacker registers the victim's address first, and the verification mail waits in
/// the victim's inbox; one click would verify an account whose password the attacker holds. Once
/// the owner resets the password (the "someone tried to sign up" mail offers it), that link no
/// longer verifies anything.
macro_rules! after_password_write {
    ($tx:expr, $user_id:expr, $keep:expr, $now:expr) => {{
        sqlx::query("UPDATE account_tokens SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL")
            .bind($user_id)
            .bind($now)
            .execute(&mut *$tx)
            .await?;
        sqlx::query("DELETE FROM mfa_challenges WHERE user_id = $1").bind($user_id).execute(&mut *$tx).await?;
        revoke_logins!($tx, $user_id, $keep, $now)
    }};
}

/// Spends a usable token of this purpose; evaluates to its user id, if there was one.
macro_rules! spend {
    ($tx:expr, $token_hash:expr, $purpose:expr, $now:expr) => {
        sqlx::query_scalar::<_, String>(
            "UPDATE account_tokens SET used_at = $3 \
             WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3 RETURNING user_id",
        )
        .bind($token_hash)
        .bind($purpose.as_str())
        .bind($now)
        .fetch_optional(&mut *$tx)
        .await?
    };
}

impl Store {
    /// Stores a token to mail. With `not_since`, only if the user got no token of this purpose
    /// at or after that time (a per-account throttle on mail that anyone can trigger): `false`
    /// when throttled, and then nothing is to be mailed.
    pub async fn insert_account_token(
        &self,
        token_hash: &str,
        user_id: &str,
        purpose: Purpose,
        now: Millis,
        expires_at: Millis,
        not_since: Option<Millis>,
    ) -> Result<bool, StoreError> {
        let inserted = on_write!(self, db => sqlx::query(
            "INSERT INTO account_tokens (token_hash, user_id, purpose, created_at, expires_at) \
             SELECT $1, $2, $3, $4, $5 WHERE $6 IS NULL OR NOT EXISTS ( \
                 SELECT 1 FROM account_tokens WHERE user_id = $2 AND purpose = $3 AND created_at >= $6)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(purpose.as_str())
        .bind(now)
        .bind(expires_at)
        .bind(not_since)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(inserted == 1)
    }

    /// The user a still-usable token belongs to (the token is not spent).
    pub async fn account_token_user(
        &self,
        token_hash: &str,
        purpose: Purpose,
        now: Millis,
    ) -> Result<Option<UserRow>, StoreError> {
        let sql = format!(
            "SELECT {} FROM users WHERE id = (SELECT user_id FROM account_tokens \
             WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3)",
            USER_COLUMNS
        );
        Ok(on_read!(self, db => sqlx::query_as::<_, UserRow>(&sql)
            .bind(token_hash)
            .bind(purpose.as_str())
            .bind(now)
            .fetch_optional(db)
            .await)?)
    }

    /// Spends a verification token and marks the address verified. `None`: no usable token.
    pub async fn verify_email(&self, token_hash: &str, now: Millis) -> Result<Option<String>, StoreError> {
        on_write!(self, db => {
        let mut tx = db.begin().await?;
        let Some(user_id) = spend!(tx, token_hash, Purpose::EmailVerify, now) else {
            tx.rollback().await?;
            return Ok(None);
        };
        sqlx::query("UPDATE users SET email_verified = TRUE, updated_at = $2 WHERE id = $1")
            .bind(&user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.forget_user(&user_id);
        Ok(Some(user_id))
        })
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
        on_write!(self, db => {
        let mut tx = db.begin().await?;
        match spend!(tx, token_hash, Purpose::PasswordReset, now) {
            Some(owner) if owner == user_id => {}
            _ => {
                tx.rollback().await?;
                return Ok(None);
            }
        }
        sqlx::query(
            "UPDATE users SET password_hash = $2, failed_logins = 0, email_verified = TRUE, \
                 locked_until = CASE WHEN locked_until = $4 THEN locked_until ELSE NULL END, updated_at = $3 \
             WHERE id = $1",
        )
        .bind(user_id)
        .bind(new_hash)
        .bind(now)
        .bind(LOCKED_INDEFINITELY)
        .execute(&mut *tx)
        .await?;
        let revoked = after_password_write!(tx, user_id, None, now);
        tx.commit().await?;
        self.forget_user(user_id);
        Ok(Some(revoked))
        })
    }

    /// Sets a new hash if the stored one is still `old_hash` (no concurrent change), and ends every
    /// login of the user but `keep`. `None`: the password changed meanwhile.
    pub async fn change_password(
        &self,
        user_id: &str,
        old_hash: &str,
        new_hash: &str,
        keep: &str,
        now: Millis,
    ) -> Result<Option<Vec<String>>, StoreError> {
        on_write!(self, db => {
        let mut tx = db.begin().await?;
        let done =
            sqlx::query("UPDATE users SET password_hash = $3, updated_at = $4 WHERE id = $1 AND password_hash = $2")
                .bind(user_id)
                .bind(old_hash)
                .bind(new_hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        let revoked = after_password_write!(tx, user_id, Some(keep), now);
        tx.commit().await?;
        self.forget_user(user_id);
        Ok(Some(revoked))
        })
    }

    /// Drops tokens that can no longer be used.
    pub async fn purge_account_tokens(&self, now: Millis) -> Result<u64, StoreError> {
        let done = on_write!(self, db => sqlx::query("DELETE FROM account_tokens WHERE expires_at < $1 OR used_at IS NOT NULL")
            .bind(now)
            .execute(db)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done)
    }
}

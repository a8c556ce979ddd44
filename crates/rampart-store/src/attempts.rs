//! Login attempts, counted before they are made.
//!
//! Every attempt at a secret (a password, a second-factor code, the current password of a
//! signed-in change) first takes a reservation: one guarded statement that refuses it when the
//! account is locked, and otherwise counts it as a failure at once, setting the lock when the
//! count reaches the threshold. Only then is the secret checked. A right secret gives the
//! reservation back ([`Store::release_attempt`]) or, when it completes a login, resets the count
//! (in [`Store::open_login`], with the new login).
//!
//! Why before and not after: checked-then-counted, a burst of attempts released together all pass
//! the "not locked" read before any failure commits, so ten warm connections get ten hashed
//! guesses where the rule allows one, round after round; and the slow answer among the fast
//! refusals marks the guess that was hashed. Counted first, on one row (which both SQLite's single
//! writer and PostgreSQL's row lock serialize, on every instance, since the row is in the shared
//! database), the burst gets exactly what the rule allows and every other attempt is refused
//! without hashing.
//!
//! Emails that have no account are counted by the same rule in `unknown_login_failures`, so that
//! a 423 never tells whether an account exists. Both counters forget a count after
//! [`FAILURE_MEMORY_MS`] without a failure, alike.

use rampart_core::clock::Millis;
use rampart_core::opaque_token::TokenHash;

use crate::dialect::WriteTx;
use crate::{Store, StoreError};

statements! {
    /// In SQLite and PostgreSQL alike, every expression in SET (and in DO UPDATE) sees the row as
    /// it was before the statement; the WHERE is re-checked against the newest row version by
    /// PostgreSQL when a concurrent reservation committed first.
    RESERVE_USER_ATTEMPT = "UPDATE users SET \
             failed_logins = CASE WHEN last_failed_at IS NULL OR last_failed_at < $2 THEN 1 \
                 ELSE failed_logins + 1 END, \
             locked_until = CASE WHEN (CASE WHEN last_failed_at IS NULL OR last_failed_at < $2 THEN 1 \
                 ELSE failed_logins + 1 END) >= $3 THEN $4 ELSE locked_until END, \
             last_failed_at = $5 \
         WHERE id = $1 AND (locked_until IS NULL OR locked_until <= $5) \
         RETURNING failed_logins, locked_until";
    RESERVE_UNKNOWN_ATTEMPT = "INSERT INTO unknown_login_failures \
             (email_hash, failed_logins, locked_until, last_failed_at) \
         VALUES ($1, 1, CASE WHEN 1 >= $3 THEN CAST($4 AS BIGINT) ELSE NULL END, $5) \
         ON CONFLICT (email_hash) DO UPDATE SET \
             failed_logins = CASE WHEN unknown_login_failures.last_failed_at < $2 THEN 1 \
                 ELSE unknown_login_failures.failed_logins + 1 END, \
             locked_until = CASE WHEN (CASE WHEN unknown_login_failures.last_failed_at < $2 THEN 1 \
                 ELSE unknown_login_failures.failed_logins + 1 END) >= $3 THEN $4 \
                 ELSE unknown_login_failures.locked_until END, \
             last_failed_at = $5 \
         WHERE unknown_login_failures.locked_until IS NULL OR unknown_login_failures.locked_until <= $5 \
         RETURNING failed_logins, locked_until";
    SELECT_USER_LOCK = "SELECT locked_until FROM users WHERE id = $1";
    SELECT_UNKNOWN_LOCK = "SELECT locked_until FROM unknown_login_failures WHERE email_hash = $1";
    RELEASE_USER_ATTEMPT = "UPDATE users SET \
             failed_logins = CASE WHEN failed_logins > 0 THEN failed_logins - 1 ELSE 0 END, \
             locked_until = CASE WHEN locked_until = $2 THEN NULL ELSE locked_until END \
         WHERE id = $1";
    RELEASE_UNKNOWN_ATTEMPT = "UPDATE unknown_login_failures SET \
             failed_logins = CASE WHEN failed_logins > 0 THEN failed_logins - 1 ELSE 0 END, \
             locked_until = CASE WHEN locked_until = $2 THEN NULL ELSE locked_until END \
         WHERE email_hash = $1";
    /// Both CASEs test the same thing: the account is free (no lock in force at `$2`, or only the
    /// lock this attempt's own reservation set, `$3`).
    RECORD_LOGIN_SUCCESS = "UPDATE users SET \
             failed_logins = CASE WHEN (locked_until IS NULL OR locked_until <= $2 OR locked_until = $3) \
                 THEN 0 ELSE failed_logins END, \
             locked_until = CASE WHEN (locked_until IS NULL OR locked_until <= $2 OR locked_until = $3) \
                 THEN NULL ELSE locked_until END \
         WHERE id = $1 RETURNING locked_until";
    PURGE_UNKNOWN_LOGIN_FAILURES = "DELETE FROM unknown_login_failures \
         WHERE last_failed_at < $1 AND (locked_until IS NULL OR locked_until <= $2)";
}

/// A failure count is forgotten after this long without another failure, for accounts and
/// unknown emails alike.
pub const FAILURE_MEMORY_MS: Millis = 24 * 60 * 60 * 1000;

/// Whose attempts are counted.
#[derive(Debug, Clone, Copy)]
pub enum AttemptKey<'a> {
    /// An account, by id.
    User(&'a str),
    /// An email that has no account, by its normalized form.
    Unknown(&'a str),
}

/// The lockout rule, as of one attempt.
#[derive(Debug, Clone, Copy)]
pub struct LockRule {
    /// Consecutive failures that lock.
    pub threshold: u32,
    pub now: Millis,
    /// The lock a failure reaching the threshold sets.
    pub lock_until: Millis,
}

/// The answer to a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Counted as a failure. `lock`: the lock this attempt set, if it reached the threshold (a
    /// right secret lifts exactly that lock again, never another).
    Granted { lock: Option<Millis> },
    /// Refused, not counted: locked until then.
    Locked(Millis),
    /// The account no longer exists.
    Gone,
}

impl Store {
    /// Takes a reservation for one attempt (see the module docs).
    pub async fn reserve_attempt(&self, key: AttemptKey<'_>, rule: LockRule) -> Result<Reservation, StoreError> {
        let forget_before = rule.now.saturating_sub(FAILURE_MEMORY_MS);
        let threshold = i64::from(rule.threshold);
        let (sql, row_key) = match key {
            AttemptKey::User(id) => {
                self.forget_user(id);
                (RESERVE_USER_ATTEMPT, id.to_owned())
            }
            AttemptKey::Unknown(email) => (RESERVE_UNKNOWN_ATTEMPT, TokenHash::of(email).as_str().to_owned()),
        };
        let counted: Option<(i64, Option<i64>)> = on_write!(self, |db| {
            sqlx::query_as(sql)
                .bind(row_key.as_str())
                .bind(forget_before)
                .bind(threshold)
                .bind(rule.lock_until)
                .bind(rule.now)
                .fetch_optional(db)
                .await
        })?;
        if let Some((failed, locked_until)) = counted {
            let lock = locked_until.filter(|until| failed >= threshold && *until == rule.lock_until);
            return Ok(Reservation::Granted { lock });
        }
        // Refused: one more read for the lock's end, on both paths alike, so that a 423 costs the
        // same for an account and for an unknown email.
        let sql = match key {
            AttemptKey::User(_) => SELECT_USER_LOCK,
            AttemptKey::Unknown(_) => SELECT_UNKNOWN_LOCK,
        };
        let lock: Option<(Option<i64>,)> =
            on_write!(self, |db| sqlx::query_as(sql).bind(row_key.as_str()).fetch_optional(db).await)?;
        Ok(match lock {
            None => Reservation::Gone,
            // Unlocked between the two statements (an admin's unlock): refuse this one attempt
            // all the same; the next one will be counted.
            Some((until,)) => Reservation::Locked(until.unwrap_or(rule.now)),
        })
    }

    /// Gives back a reservation whose secret was right but that does not complete a login (the
    /// second factor or an email verification is still missing, a re-authentication, or the check
    /// could not run): the count goes back down, and the lock this reservation set (only that
    /// one) is lifted. It does not reset the count: knowing the password must not reset the
    /// lockout of second-factor guesses.
    pub async fn release_attempt(&self, key: AttemptKey<'_>, own_lock: Option<Millis>) -> Result<(), StoreError> {
        let (sql, row_key) = match key {
            AttemptKey::User(id) => {
                self.forget_user(id);
                (RELEASE_USER_ATTEMPT, id.to_owned())
            }
            AttemptKey::Unknown(email) => (RELEASE_UNKNOWN_ATTEMPT, TokenHash::of(email).as_str().to_owned()),
        };
        on_write!(self, |db| {
            sqlx::query(sql).bind(row_key.as_str()).bind(own_lock).execute(db).await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Deletes the counters of unknown emails that are forgotten anyway (no failure within
    /// [`FAILURE_MEMORY_MS`], no lock in force).
    pub async fn purge_unknown_login_failures(&self, now: Millis) -> Result<u64, StoreError> {
        let forget_before = now.saturating_sub(FAILURE_MEMORY_MS);
        let done = on_write!(self, |db| {
            sqlx::query(PURGE_UNKNOWN_LOGIN_FAILURES)
                .bind(forget_before)
                .bind(now)
                .execute(db)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(done)
    }
}

impl WriteTx<'_> {
    /// Every factor is proven: resets the failure count, unless the account is locked by
    /// something other than this attempt's own reservation (an admin, or a concurrent attempt
    /// that reached the threshold first). Returns the lock still in force, if any:
    /// `Some(Some(until))` means "locked, refuse the login". `None`: no such user. Part of
    /// [`Store::open_login`]; the caller forgets the user's cached row.
    pub(crate) async fn record_login_success(
        &mut self,
        id: &str,
        now: Millis,
        own_lock: Option<Millis>,
    ) -> Result<Option<Option<Millis>>, StoreError> {
        let row: Option<(Option<i64>,)> = in_tx!(self, |conn| {
            sqlx::query_as(RECORD_LOGIN_SUCCESS).bind(id).bind(now).bind(own_lock).fetch_optional(conn).await
        })?;
        Ok(row.map(|(locked_until,)| locked_until))
    }
}

//! The durable mail outbox: mail queued in the database, in the transaction of the event that
//! causes it, and sent by a worker in each instance (`rampart_mail::worker`).
//!
//! Claiming is the one delicate part. A worker takes due rows for a lease: one statement sets
//! `claimed_until` and `claimed_by` on rows nobody holds (or whose lease ran out, the claims of a
//! crashed instance) and returns them. On PostgreSQL the rows are chosen by a sub-select
//! `FOR UPDATE SKIP LOCKED`: two instances claiming at once lock disjoint rows, and a row another
//! claim committed meanwhile is re-checked against its new lease and left out. On SQLite every
//! write goes through the instance's single writer connection, and SQLite runs one write
//! statement at a time on the file, so the same statement without the lock clause is atomic.
//!
//! A mail is marked sent only after the relay accepted it: a crash between the two sends that one
//! mail again after the lease (at least once, never zero times).

use rampart_core::clock::Millis;

use crate::dialect::WriteTx;
use crate::{Store, StoreError};

statements! {
    INSERT_MAIL = "INSERT INTO mail_outbox \
             (id, recipient, subject, body, priority, attempts, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, 0, $6, $6)";
    /// `$1` lease end, `$2` worker, `$3` priority, `$4` now, `$5` at most this many rows.
    CLAIM_DUE_MAILS_POSTGRES [Postgres] = "UPDATE mail_outbox \
         SET claimed_until = $1, claimed_by = $2, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM mail_outbox \
             WHERE sent_at IS NULL AND failed_at IS NULL AND priority = $3 AND next_attempt_at <= $4 \
               AND (claimed_until IS NULL OR claimed_until <= $4) \
             ORDER BY next_attempt_at LIMIT $5 FOR UPDATE SKIP LOCKED) \
         RETURNING id, recipient, subject, body, priority, attempts, created_at";
    /// The same claim on SQLite, where the single writer serializes it (see the module docs).
    CLAIM_DUE_MAILS_SQLITE [Sqlite] = "UPDATE mail_outbox \
         SET claimed_until = $1, claimed_by = $2, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM mail_outbox \
             WHERE sent_at IS NULL AND failed_at IS NULL AND priority = $3 AND next_attempt_at <= $4 \
               AND (claimed_until IS NULL OR claimed_until <= $4) \
             ORDER BY next_attempt_at LIMIT $5) \
         RETURNING id, recipient, subject, body, priority, attempts, created_at";
    /// The body (a link with a live token, for some mails) is erased once the mail is out.
    MARK_MAIL_SENT = "UPDATE mail_outbox SET sent_at = $2, body = '', claimed_until = NULL \
         WHERE id = $1 AND sent_at IS NULL";
    /// Gives a claimed row back for a later attempt; only the worker holding it can.
    RETRY_MAIL_AT = "UPDATE mail_outbox SET next_attempt_at = $3, claimed_until = NULL, claimed_by = NULL \
         WHERE id = $1 AND claimed_by = $2 AND sent_at IS NULL AND failed_at IS NULL";
    MARK_MAIL_FAILED = "UPDATE mail_outbox SET failed_at = $2, body = '', claimed_until = NULL \
         WHERE id = $1 AND sent_at IS NULL";
    COUNT_PENDING_MAILS = "SELECT priority, COUNT(*) FROM mail_outbox \
         WHERE sent_at IS NULL AND failed_at IS NULL GROUP BY priority";
    PURGE_FINISHED_MAILS = "DELETE FROM mail_outbox \
         WHERE (sent_at IS NOT NULL OR failed_at IS NOT NULL) AND created_at < $1";
}

/// Which mail gives way when the budget runs short. Anyone can make Rampart send routine mail (a
/// registration, a login to an unverified account); security mail is what lets an owner back in
/// or tells them about an attack, and must never be crowded out by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailPriority {
    /// Password resets, lockout and change notices: claimed first, allowed the whole budget.
    Security,
    /// Verification links and sign-up notices: dropped (and counted) rather than delayed when
    /// their half of the budget is spent.
    Routine,
}

impl MailPriority {
    fn as_i64(self) -> i64 {
        match self {
            MailPriority::Security => 0,
            MailPriority::Routine => 1,
        }
    }

    fn from_i64(v: i64) -> Self {
        if v == 0 { MailPriority::Security } else { MailPriority::Routine }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MailPriority::Security => "security",
            MailPriority::Routine => "routine",
        }
    }
}

/// One plain-text message to queue.
#[derive(Debug, Clone)]
pub struct OutgoingMail {
    pub to: String,
    pub subject: String,
    pub body: String,
    pub priority: MailPriority,
}

/// A row a worker claimed, until `claimed_until`.
#[derive(Debug, Clone)]
pub struct ClaimedMail {
    pub id: String,
    pub mail: OutgoingMail,
    /// Claims so far, this one included.
    pub attempts: i64,
    pub created_at: Millis,
}

/// Pending rows (neither sent nor given up nor dropped), by priority.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PendingMails {
    pub security: i64,
    pub routine: i64,
}

type ClaimedRow = (String, String, String, String, i64, i64, i64);

impl Store {
    /// Queues a mail on its own, for an event whose row was written already (the lockout, set
    /// by the attempt's reservation) or a command that has no transaction of its own.
    pub async fn enqueue_mail(&self, mail: &OutgoingMail, now: Millis) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        tx.enqueue_mail(mail, now).await?;
        tx.commit().await
    }

    /// Claims at most `limit` due mails of `priority` for `worker`, until `lease_until`.
    pub async fn claim_mails(
        &self,
        worker: &str,
        priority: MailPriority,
        now: Millis,
        lease_until: Millis,
        limit: i64,
    ) -> Result<Vec<ClaimedMail>, StoreError> {
        // The same binds on both backends; only the text differs (see the module docs).
        let rows: Vec<ClaimedRow> = match &self.db {
            crate::db::Db::Sqlite { write, .. } => {
                sqlx::query_as(CLAIM_DUE_MAILS_SQLITE)
                    .bind(lease_until)
                    .bind(worker)
                    .bind(priority.as_i64())
                    .bind(now)
                    .bind(limit)
                    .fetch_all(write.lock().await?.conn())
                    .await?
            }
            crate::db::Db::Postgres(pool) => {
                sqlx::query_as(CLAIM_DUE_MAILS_POSTGRES)
                    .bind(lease_until)
                    .bind(worker)
                    .bind(priority.as_i64())
                    .bind(now)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
        };
        Ok(rows
            .into_iter()
            .map(|(id, to, subject, body, priority, attempts, created_at)| ClaimedMail {
                id,
                mail: OutgoingMail { to, subject, body, priority: MailPriority::from_i64(priority) },
                attempts,
                created_at,
            })
            .collect())
    }

    /// The relay accepted the mail: done, and its body erased.
    pub async fn mark_mail_sent(&self, id: &str, now: Millis) -> Result<(), StoreError> {
        self.update_mail(MARK_MAIL_SENT, id, now).await
    }

    /// Given up (too old) or dropped (over budget): done, unsent, and its body erased.
    pub async fn mark_mail_failed(&self, id: &str, now: Millis) -> Result<(), StoreError> {
        self.update_mail(MARK_MAIL_FAILED, id, now).await
    }

    /// Gives a claim of `worker` back, due again at `at`.
    pub async fn retry_mail_at(&self, id: &str, worker: &str, at: Millis) -> Result<(), StoreError> {
        on_write!(self, |db| {
            sqlx::query(RETRY_MAIL_AT).bind(id).bind(worker).bind(at).execute(db).await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    async fn update_mail(&self, sql: &'static str, id: &str, now: Millis) -> Result<(), StoreError> {
        on_write!(self, |db| sqlx::query(sql).bind(id).bind(now).execute(db).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// How many mails wait, by priority (the queue-depth gauge).
    pub async fn pending_mails(&self) -> Result<PendingMails, StoreError> {
        let rows: Vec<(i64, i64)> = on_read!(self, |db| sqlx::query_as(COUNT_PENDING_MAILS).fetch_all(db).await)?;
        let mut pending = PendingMails::default();
        for (priority, n) in rows {
            match MailPriority::from_i64(priority) {
                MailPriority::Security => pending.security += n,
                MailPriority::Routine => pending.routine += n,
            }
        }
        Ok(pending)
    }

    /// Deletes finished rows (sent, given up, dropped) created before `before`.
    pub async fn purge_finished_mails(&self, before: Millis) -> Result<u64, StoreError> {
        let done = on_write!(self, |db| {
            sqlx::query(PURGE_FINISHED_MAILS).bind(before).execute(db).await.map(|r| r.rows_affected())
        })?;
        Ok(done)
    }
}

impl WriteTx<'_> {
    /// Queues a mail in this transaction: it exists if and only if the transaction commits.
    pub(crate) async fn enqueue_mail(&mut self, mail: &OutgoingMail, now: Millis) -> Result<(), StoreError> {
        let id = rampart_core::opaque_token::new_id();
        in_tx!(self, |conn| {
            sqlx::query(INSERT_MAIL)
                .bind(id.as_str())
                .bind(mail.to.as_str())
                .bind(mail.subject.as_str())
                .bind(mail.body.as_str())
                .bind(mail.priority.as_i64())
                .bind(now)
                .execute(conn)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;

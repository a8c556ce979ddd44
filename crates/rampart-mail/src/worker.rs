//! The outbox worker: one per instance, claiming due rows from the shared `mail_outbox` table,
//! sending them, and marking each sent, retried or given up.
//!
//! - Claims are leases ([`LEASE`]): a row is held by one worker at a time (`FOR UPDATE SKIP
//!   LOCKED` on PostgreSQL, the single writer on SQLite), and the claims of an instance that
//!   died run out and are taken again by any instance.
//! - A row is marked sent only after the relay accepted it. A crash between the two sends it once
//!   more after the lease: at least once, which for a reset link or a security notice is the
//!   right side to err on (a duplicate is a nuisance, a lost mail locks someone out).
//! - A failed send is retried after [`retry_delay`] (exponential, capped, with jitter so that
//!   instances recovering together do not hit the relay in step), until `mail.give_up_after`
//!   has passed since the mail was queued: then it is given up with an error log line and
//!   `rampart_mail_given_up_total`.
//! - The budget (`budget`) is this instance's: security mail is claimed first and may use all of
//!   it; routine mail only the upper half, and routine mail that finds it spent is dropped (and
//!   counted), not delayed, as before the outbox: a flood of registrations must neither crowd out
//!   a reset nor pile up behind it.
//! - The worker wakes when a flow of this instance commits a mail ([`crate::Mailer::wake`]) and
//!   polls every [`POLL`] for rows queued by other instances or due for a retry.

use std::sync::Arc;
use std::time::Duration;

use lettre::AsyncTransport;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use rampart_core::auth::data_key::DataKey;
use rampart_core::clock::{Millis, duration_ms, now_ms};
use rampart_store::{ClaimedMail, MailPriority, Store};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::budget::Budget;
use crate::{Policy, Transport};

/// How long a claim holds a row: well beyond one SMTP conversation (15 s timeout), so a live
/// worker never loses a row it is still sending.
const LEASE: Duration = Duration::from_secs(120);
/// Rows claimed (and sent at once) per round: the SMTP conversations in flight.
const BATCH: i64 = 4;
/// How often the worker looks for rows it was not woken for.
const POLL: Duration = Duration::from_secs(2);
/// The first retry comes after about this long, and each one after twice as long as the last...
const FIRST_RETRY: Duration = Duration::from_secs(2);
/// ...up to this.
const MAX_RETRY: Duration = Duration::from_secs(600);
/// A store error pauses the worker this long (the database is down; nothing can be claimed).
const STORE_PAUSE: Duration = Duration::from_secs(5);

/// The wait before the next try of a mail that failed its `attempts`-th try: doubling from
/// [`FIRST_RETRY`], capped at [`MAX_RETRY`], times `jitter` (in `[0.5, 1]`, drawn per retry).
pub fn retry_delay(attempts: i64, jitter: f64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    let base = FIRST_RETRY.saturating_mul(2u32.saturating_pow(doublings)).min(MAX_RETRY);
    base.mul_f64(jitter.clamp(0.5, 1.0))
}

fn jitter() -> f64 {
    use rand::Rng;
    rand::thread_rng().gen_range(0.5..=1.0)
}

pub(crate) async fn run(store: Store, transport: Transport, policy: Policy, wake: Arc<Notify>, key: Arc<DataKey>) {
    let transport = Arc::new(transport);
    // Names this instance's claims (in `claimed_by`): a worker gives back only its own.
    let me = rampart_core::opaque_token::new_id();
    let mut budget = Budget::new(policy.per_minute);
    let give_up_after = duration_ms(policy.give_up_after);
    loop {
        let pause = match round(&store, &transport, &key, &me, &mut budget, give_up_after).await {
            Ok(true) => continue,
            Ok(false) => POLL.min(budget.until_next().max(Duration::from_millis(100))),
            Err(e) => {
                tracing::error!(error = %e, "mail outbox: the database is unavailable; retrying");
                STORE_PAUSE
            }
        };
        report_depth(&store).await;
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// One round: claims what the budget allows, security mail first, and sends it. `true` when it
/// claimed anything (there may be more).
async fn round(
    store: &Store,
    transport: &Arc<Transport>,
    key: &DataKey,
    me: &str,
    budget: &mut Budget,
    give_up_after: Millis,
) -> Result<bool, rampart_store::StoreError> {
    let lease = duration_ms(LEASE);
    let mut batch = Vec::new();
    let room = budget.security_room().min(BATCH);
    if room > 0 {
        let now = now_ms();
        for m in store.claim_mails(me, MailPriority::Security, now, now + lease, room).await? {
            budget.take_security();
            batch.push(m);
        }
    }
    // Routine mail is claimed whatever the budget, and what finds it spent is dropped: see the
    // module docs.
    let room = BATCH - i64::try_from(batch.len()).unwrap_or(BATCH);
    let mut dropped = false;
    if room > 0 {
        let now = now_ms();
        for m in store.claim_mails(me, MailPriority::Routine, now, now + lease, room).await? {
            if budget.take_routine() {
                batch.push(m);
            } else {
                tracing::warn!(mail_id = %m.id, subject = %m.mail.subject, "mail budget spent: routine message dropped");
                store.mark_mail_failed(&m.id, now_ms()).await?;
                count("dropped", m.mail.priority);
                dropped = true;
            }
        }
    }
    if batch.is_empty() {
        return Ok(dropped);
    }
    let mut sending = JoinSet::new();
    for mut m in batch {
        let transport = Arc::clone(transport);
        let Some(body) = crate::open(key, &m.mail.to, &m.mail.body) else {
            store.mark_mail_failed(&m.id, now_ms()).await?;
            tracing::error!(mail_id = %m.id, subject = %m.mail.subject, "mail body does not open with the data key: given up");
            given_up(m.mail.priority);
            continue;
        };
        m.mail.body = body;
        sending.spawn(async move {
            let result = deliver(&transport, &m).await;
            (m, result)
        });
    }
    while let Some(done) = sending.join_next().await {
        let Ok((m, result)) = done else { continue };
        settle(store, me, m, result, give_up_after).await?;
    }
    Ok(true)
}

/// Why a send did not happen.
enum Failure {
    /// The relay refused or could not be reached: worth another try.
    Transient(String),
    /// The message itself is unusable (a recipient lettre cannot parse): no retry helps.
    Permanent(String),
    /// Mail is off: dropped.
    Off,
}

async fn deliver(transport: &Transport, m: &ClaimedMail) -> Result<(), Failure> {
    match transport {
        Transport::Off => Err(Failure::Off),
        Transport::DevLog => {
            // Typed fields: the JSON formatter escapes them, so nothing in a body can forge a line.
            let mail = &m.mail;
            tracing::info!(dev = true, to = %mail.to, subject = %mail.subject, body = %mail.body, "dev_mail");
            Ok(())
        }
        Transport::Smtp(smtp) => {
            let (smtp, from) = &**smtp;
            let email = build(from, m).map_err(Failure::Permanent)?;
            // lettre's errors name the server's reply, never the message or the credentials.
            smtp.send(email).await.map(|_| ()).map_err(|e| Failure::Transient(e.to_string()))
        }
    }
}

/// Records what became of a claimed mail.
async fn settle(
    store: &Store,
    me: &str,
    m: ClaimedMail,
    result: Result<(), Failure>,
    give_up_after: Millis,
) -> Result<(), rampart_store::StoreError> {
    let now = now_ms();
    let subject = &m.mail.subject;
    match result {
        Ok(()) => {
            store.mark_mail_sent(&m.id, now).await?;
            tracing::info!(mail_id = %m.id, subject = %subject, attempt = m.attempts, "mail sent");
            count("sent", m.mail.priority);
        }
        Err(Failure::Off) => {
            store.mark_mail_failed(&m.id, now).await?;
            tracing::warn!(mail_id = %m.id, subject = %subject, "mail is not configured: message dropped");
            count("dropped", m.mail.priority);
        }
        Err(Failure::Permanent(e)) => {
            store.mark_mail_failed(&m.id, now).await?;
            tracing::error!(mail_id = %m.id, subject = %subject, error = %e, "mail could not be built: given up");
            given_up(m.mail.priority);
        }
        Err(Failure::Transient(e)) if now.saturating_sub(m.created_at) >= give_up_after => {
            store.mark_mail_failed(&m.id, now).await?;
            tracing::error!(
                mail_id = %m.id, subject = %subject, attempt = m.attempts, error = %e,
                "mail send failed for longer than mail.give_up_after; giving up"
            );
            count("failed", m.mail.priority);
            given_up(m.mail.priority);
        }
        Err(Failure::Transient(e)) => {
            let wait = retry_delay(m.attempts, jitter());
            store.retry_mail_at(&m.id, me, now + duration_ms(wait)).await?;
            tracing::warn!(
                mail_id = %m.id, subject = %subject, attempt = m.attempts, retry_in_ms = duration_ms(wait), error = %e,
                "mail send failed; will retry"
            );
            count("failed", m.mail.priority);
        }
    }
    Ok(())
}

/// `rampart_mail_total{outcome, priority}`: sent, failed (one failed try), dropped.
fn count(outcome: &'static str, priority: MailPriority) {
    metrics::counter!("rampart_mail_total", "outcome" => outcome, "priority" => priority.as_str()).increment(1);
}

fn given_up(priority: MailPriority) {
    metrics::counter!("rampart_mail_given_up_total", "priority" => priority.as_str()).increment(1);
}

/// `rampart_mail_queue_depth{priority}`: mails waiting in the shared outbox (every instance's).
async fn report_depth(store: &Store) {
    if let Ok(pending) = store.pending_mails().await {
        // Precision loss above 2^53 rows is irrelevant for a gauge.
        #[allow(clippy::cast_precision_loss)]
        {
            metrics::gauge!("rampart_mail_queue_depth", "priority" => "security").set(pending.security as f64);
            metrics::gauge!("rampart_mail_queue_depth", "priority" => "routine").set(pending.routine as f64);
        }
    }
}

fn build(from: &Mailbox, m: &ClaimedMail) -> Result<lettre::Message, String> {
    let mail = &m.mail;
    let to: Mailbox = mail.to.parse().map_err(|e: lettre::address::AddressError| e.to_string())?;
    lettre::Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .header(ContentType::TEXT_PLAIN)
        .body(mail.body.clone())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each retry waits about twice as long as the one before, up to the cap, and the jitter only
    /// ever shortens a wait to half (never to nothing, never beyond the cap).
    #[test]
    fn the_retry_delay_grows_exponentially_up_to_a_cap() {
        let full: Vec<Duration> = (1..=12).map(|a| retry_delay(a, 1.0)).collect();
        assert_eq!(full[0], FIRST_RETRY);
        for pair in full.windows(2) {
            if let [a, b] = pair {
                assert!(b >= a, "{full:?}");
                assert!(*b == MAX_RETRY || *b == *a * 2, "{full:?}");
            }
        }
        assert_eq!(retry_delay(12, 1.0), MAX_RETRY);
        assert_eq!(retry_delay(i64::MAX, 1.0), MAX_RETRY);
        assert_eq!(retry_delay(0, 1.0), FIRST_RETRY);
        assert_eq!(retry_delay(3, 0.5), FIRST_RETRY * 2);
        assert_eq!(retry_delay(3, 0.0), FIRST_RETRY * 2, "jitter below a half is clamped");
        assert_eq!(retry_delay(3, 7.0), FIRST_RETRY * 4, "jitter above one is clamped");
        for _ in 0..100 {
            let j = jitter();
            assert!((0.5..=1.0).contains(&j));
        }
    }
}

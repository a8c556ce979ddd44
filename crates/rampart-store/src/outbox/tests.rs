//! The claim, on both backends: due rows go to one worker at a time, a lease that ran out is
//! taken again, security mail is claimed apart from routine mail, a finished row keeps no body,
//! and a rolled-back event queues nothing.

use super::*;
use crate::test_db::{TempPostgres, TempSqlite, options};
use crate::{NewUser, Purpose, Store, StoreOptions};

const NOW: Millis = 1_700_000_000_000;
const LEASE: Millis = 60_000;

fn mail(to: &str, priority: MailPriority) -> OutgoingMail {
    OutgoingMail { to: to.to_owned(), subject: "subject".into(), body: "secret link".into(), priority }
}

async fn claims_are_exclusive_and_leases_expire(store: &Store) {
    for i in 0..5 {
        store.enqueue_mail(&mail(&format!("r{i}@example.com"), MailPriority::Routine), NOW).await.unwrap();
    }
    store.enqueue_mail(&mail("s@example.com", MailPriority::Security), NOW).await.unwrap();
    // Not due yet for a clock before the rows.
    assert!(store.claim_mails("a", MailPriority::Routine, NOW - 1, NOW + LEASE, 10).await.unwrap().is_empty());

    let security = store.claim_mails("a", MailPriority::Security, NOW, NOW + LEASE, 10).await.unwrap();
    assert_eq!(security.len(), 1);
    assert_eq!(security[0].mail.to, "s@example.com");
    assert_eq!(security[0].attempts, 1);

    // Two workers claiming at once share the rows out: none is held by both.
    let (a, b) = tokio::join!(
        store.claim_mails("a", MailPriority::Routine, NOW, NOW + LEASE, 3),
        store.claim_mails("b", MailPriority::Routine, NOW, NOW + LEASE, 3)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len() + b.len(), 5, "every due row claimed once: {a:?} {b:?}");
    let mut ids: Vec<&str> = a.iter().chain(&b).map(|m| m.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 5, "a row was claimed by both workers");

    // Held rows are not claimed again while the lease runs...
    assert!(
        store.claim_mails("c", MailPriority::Routine, NOW + LEASE - 1, NOW + 2 * LEASE, 10).await.unwrap().is_empty()
    );
    // ...but a crashed worker's lease runs out, and its rows are taken again.
    let sent = &a[0].id;
    store.mark_mail_sent(sent, NOW + 1).await.unwrap();
    let again = store.claim_mails("c", MailPriority::Routine, NOW + LEASE, NOW + 2 * LEASE, 10).await.unwrap();
    assert_eq!(again.len(), 4, "the rows not marked sent come back after the lease");
    assert!(again.iter().all(|m| m.attempts == 2 && &m.id != sent));

    // A claim given back is due again at its retry time, not before; only its holder can.
    let retried = &again[0].id;
    store.retry_mail_at(retried, "someone else", NOW + LEASE + 5).await.unwrap();
    store.retry_mail_at(retried, "c", NOW + 3 * LEASE).await.unwrap();
    assert!(
        store.claim_mails("d", MailPriority::Routine, NOW + 2 * LEASE, NOW + 4 * LEASE, 10).await.unwrap().len() == 3
    );
    let later = store.claim_mails("d", MailPriority::Routine, NOW + 3 * LEASE, NOW + 4 * LEASE, 10).await.unwrap();
    assert_eq!(later.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), vec![retried.as_str()]);

    // Finished rows keep no body and are never claimed again.
    store.mark_mail_failed(retried, NOW).await.unwrap();
    let pending = store.pending_mails().await.unwrap();
    assert_eq!(pending, PendingMails { security: 1, routine: 3 });
    assert!(
        store.claim_mails("e", MailPriority::Routine, NOW + 10 * LEASE, NOW + 11 * LEASE, 10).await.unwrap().len() == 3
    );
    let bodies: Vec<(String,)> = match &store.db {
        crate::db::Db::Sqlite { read, .. } => {
            sqlx::query_as("SELECT body FROM mail_outbox WHERE sent_at IS NOT NULL OR failed_at IS NOT NULL")
                .fetch_all(&mut *read.get().await.unwrap())
                .await
                .unwrap()
        }
        crate::db::Db::Postgres(pool) => {
            sqlx::query_as("SELECT body FROM mail_outbox WHERE sent_at IS NOT NULL OR failed_at IS NOT NULL")
                .fetch_all(pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(bodies.len(), 2);
    assert!(bodies.iter().all(|(b,)| b.is_empty()), "a finished mail kept its body: {bodies:?}");
    assert_eq!(store.purge_finished_mails(NOW + 1).await.unwrap(), 2);
}

/// A token that is not stored (throttled) queues no mail; one that is stored queues exactly one.
async fn a_mail_exists_exactly_when_its_event_committed(store: &Store) {
    let new = NewUser {
        id: "u1",
        email: "u1@example.com",
        email_normalized: "u1@example.com",
        password_hash: "x",
        roles: &["user"],
        now: NOW,
    };
    store.insert_user(&new).await.unwrap();
    let m = mail("u1@example.com", MailPriority::Routine);
    let before = store.pending_mails().await.unwrap().routine;
    assert!(
        store
            .insert_account_token("h1", "u1", Purpose::EmailVerify, NOW, NOW + LEASE, Some(NOW - 1), &m)
            .await
            .unwrap()
    );
    assert_eq!(store.pending_mails().await.unwrap().routine, before + 1);
    // Throttled: the token insert does nothing, so the transaction rolls back its mail.
    assert!(
        !store
            .insert_account_token("h2", "u1", Purpose::EmailVerify, NOW + 1, NOW + LEASE, Some(NOW - 1), &m)
            .await
            .unwrap()
    );
    // A token whose insert fails (the same hash again) takes its mail down with it.
    assert!(store.insert_account_token("h1", "u1", Purpose::PasswordReset, NOW, NOW + LEASE, None, &m).await.is_err());
    assert_eq!(store.pending_mails().await.unwrap().routine, before + 1, "a mail outlived its rolled-back event");
    // A password change that finds the hash changed meanwhile rolls back, notice included; one
    // that commits queues exactly its notice.
    let notice = mail("u1@example.com", MailPriority::Security);
    let security = store.pending_mails().await.unwrap().security;
    assert!(store.change_password("u1", "not the stored hash", "new", "none", NOW, &notice).await.unwrap().is_none());
    assert_eq!(store.pending_mails().await.unwrap().security, security, "a refused change queued its notice");
    assert!(store.change_password("u1", "x", "new", "none", NOW, &notice).await.unwrap().is_some());
    assert_eq!(store.pending_mails().await.unwrap().security, security + 1);
}

#[tokio::test]
async fn outbox_claims_on_sqlite() {
    let db = TempSqlite::migrated().await;
    let store = Store::connect(&options(&db.url)).await.unwrap();
    claims_are_exclusive_and_leases_expire(&store).await;
    a_mail_exists_exactly_when_its_event_committed(&store).await;
    store.close().await;
}

#[tokio::test]
async fn outbox_claims_on_postgres() {
    let Some(db) = TempPostgres::migrated("outbox_claims_on_postgres").await else { return };
    let store = Store::connect(&options(&db.url)).await.unwrap();
    claims_are_exclusive_and_leases_expire(&store).await;
    a_mail_exists_exactly_when_its_event_committed(&store).await;
    store.close().await;
    db.remove().await;
}

/// Many workers racing on PostgreSQL (`FOR UPDATE SKIP LOCKED`): every row is claimed exactly
/// once, however the claims interleave.
#[tokio::test]
async fn racing_claims_on_postgres_never_share_a_row() {
    let Some(db) = TempPostgres::migrated("racing_claims_on_postgres_never_share_a_row").await else { return };
    let store = Store::connect(&StoreOptions { max_connections: 8, ..options(&db.url) }).await.unwrap();
    for i in 0..200 {
        store.enqueue_mail(&mail(&format!("r{i}@example.com"), MailPriority::Security), NOW).await.unwrap();
    }
    let mut workers = Vec::new();
    for w in 0..6 {
        let store = store.clone();
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got =
                    store.claim_mails(&format!("w{w}"), MailPriority::Security, NOW, NOW + LEASE, 7).await.unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|m| m.id));
            }
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let total = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!((total, all.len()), (200, 200), "rows claimed twice or left out");
    store.close().await;
    db.remove().await;
}

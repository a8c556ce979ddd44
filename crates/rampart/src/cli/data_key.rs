//! `rampart data-key rotate`: re-encrypts every sealed TOTP secret (pending or enabled) to the
//! current data key.
//!
//! The order an operator follows (docs/deployment.md): every instance restarted with the new key
//! as `RAMPART_DATA_KEY` and the old one as `RAMPART_DATA_KEY_PREVIOUS`, then this command, then
//! the previous key removed. Each row is rewritten by an `UPDATE` guarded on the value that was
//! read, so the command is safe beside running servers (a secret the user replaced meanwhile is
//! left as the server sealed it) and resumable: interrupted, it is simply run again, and values
//! already under the current key are skipped.

use std::path::Path;

use rampart_core::auth::data_key::DataKey;
use rampart_core::clock::now_ms;
use rampart_store::{AuditEvent, AuditOutcome, NewAuditEvent, Store, StoreError};

use crate::Failure;

/// Rows read and rewritten per page: small enough that no statement holds the SQLite writer for
/// long beside a running server.
const BATCH: i64 = 100;

#[derive(Default)]
struct Tally {
    resealed: u64,
    already_current: u64,
    changed_meanwhile: u64,
    /// Users whose secret opens under no configured key (ids only: no secret, no key).
    unopenable: Vec<String>,
}

pub async fn rotate(path: Option<&Path>) -> Result<(), Failure> {
    let c = &super::load_checked(path)?.settings;
    // Rotating to the dev profile's generated key would only move secrets to a key the operator
    // never chose: the command needs the configured one.
    let key = c.data_key.clone().ok_or_else(|| {
        Failure::config(
            "config key `data_key`: not set; set RAMPART_DATA_KEY to the new key and RAMPART_DATA_KEY_PREVIOUS to the one it replaces",
        )
    })?;
    let store = super::open_store(c).await?;
    let result = reseal_all(&store, &key).await;
    let audited = match &result {
        Ok(t) => audit(&store, t.unopenable.is_empty()).await,
        Err(_) => Ok(()),
    };
    store.close().await;
    let tally = result.map_err(|e| Failure::runtime(format!("database: {e}")))?;
    audited.map_err(|e| {
        Failure::runtime(format!("the secrets were re-encrypted, but the audit event could not be written: {e}"))
    })?;
    if !tally.unopenable.is_empty() {
        return Err(Failure::runtime(format!(
            "{} TOTP secret(s) open under neither data key {} nor the previous key (users {}); configure the key that sealed them as RAMPART_DATA_KEY_PREVIOUS and run again ({} re-encrypted meanwhile)",
            tally.unopenable.len(),
            key.id(),
            tally.unopenable.join(", "),
            tally.resealed
        )));
    }
    println!(
        "re-encrypted {} TOTP secret(s) to data key {} ({} already under it, {} replaced meanwhile by their owner)",
        tally.resealed,
        key.id(),
        tally.already_current,
        tally.changed_meanwhile
    );
    Ok(())
}

async fn reseal_all(store: &Store, key: &DataKey) -> Result<Tally, StoreError> {
    let mut tally = Tally::default();
    // User ids are never empty, so "" sorts before every one of them.
    let mut after = String::new();
    loop {
        let page = store.sealed_totp_page(&after, BATCH).await?;
        let Some((last, _)) = page.last() else {
            return Ok(tally);
        };
        after = last.clone();
        for (user_id, sealed) in &page {
            if key.is_current(sealed) {
                tally.already_current += 1;
                continue;
            }
            let Ok(resealed) = key.reseal(sealed, user_id) else {
                tally.unopenable.push(user_id.clone());
                continue;
            };
            if store.reseal_totp_secret(user_id, sealed, &resealed).await? {
                tally.resealed += 1;
            } else {
                tally.changed_meanwhile += 1;
            }
        }
    }
}

/// One event for the whole run (no actor: the operator is no user; no target: it is every
/// sealed secret), a failure when some secret could not be re-encrypted.
async fn audit(store: &Store, complete: bool) -> Result<(), StoreError> {
    let event = NewAuditEvent {
        action: AuditEvent::DataKeyRotated,
        actor_id: None,
        target: None,
        ip: None,
        request_id: None,
        user_agent: None,
        outcome: if complete { AuditOutcome::Success } else { AuditOutcome::Failure },
        now: now_ms(),
    };
    store.append_audit(&event).await
}

//! `authz_denied` audit events: coalesced per (actor, action, target), and written off the
//! response path.
//!
//! Why not one synchronous row per denial: a signed-in caller can be denied as often as the rate
//! limit lets them (600 a minute by default), into an append-only table the runtime can never
//! prune; and the write sat on exactly the path that must cost what a missing record costs (an
//! existing record of someone else answers 404 like a missing id, and a slower 404 would tell which
//! ids exist).
//!
//! So a denial only takes a mutex and, at most, pushes onto a bounded queue:
//! - the first denial of a key is queued for writing at once (count 1), so the log shows it
//!   without waiting for a window to close;
//! - further denials of that key within `limits.denial_audit_window` only add to a counter;
//! - when the window closes, the denials it counted are written as one row with that `count` (and
//!   the last one's time, IP and request id), and the window starts again, so a steady flood
//!   writes one row a window; a window that counted nothing is forgotten.
//!
//! One background task writes the queued rows; another closes windows. Each instance coalesces
//! on its own (N instances: at most N rows a window for one key). At shutdown, [`DenialAudit::flush`]
//! writes the open windows' counts; a crash loses them, never the first denial of a key.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rampart_core::clock::{Millis, now_ms};
use rampart_store::{AuditEvent, AuditOutcome, NewAuditEvent, Store};
use tokio::sync::{mpsc, oneshot};

use crate::extract::RequestContext;

/// Keys tracked at once. Denials are only audited on records that exist and on role checks, and
/// every caller is rate limited, so this is far above what a flood can reach in one window; past
/// it a denial is queued alone, uncoalesced, rather than growing memory.
const MAX_WINDOWS: usize = 100_000;
/// Rows waiting for the writer. When full, the first denial of a key waits in its window's count
/// instead, and an uncoalesced one is dropped (counted in `rampart_audit_dropped_total`).
const QUEUE: usize = 4096;

#[derive(Clone, Hash, PartialEq, Eq)]
struct Key {
    actor: Option<String>,
    /// What was attempted (`read`, `update`, `delete`, `role`, ...): different attempts on one
    /// target are different events.
    action: &'static str,
    target: String,
}

/// The last denial of a key: where the row that stands for a window says it came from.
#[derive(Clone)]
struct Seen {
    at: Millis,
    ip: String,
    request_id: String,
    user_agent: Option<String>,
}

struct Window {
    opened: Instant,
    /// Denials counted and not written yet.
    pending: i64,
    last: Seen,
}

struct Row {
    key: Key,
    count: i64,
    seen: Seen,
}

/// What the writer is asked to do: write a row, or say when everything queued before is written.
enum Job {
    Write(Row),
    Barrier(oneshot::Sender<()>),
}

pub struct DenialAudit {
    windows: Arc<Mutex<HashMap<Key, Window>>>,
    queue: mpsc::Sender<Job>,
    dropped: Arc<AtomicU64>,
}

impl DenialAudit {
    /// Starts the writer and the window closer on the current Tokio runtime.
    pub fn start(store: Store, window: Duration) -> Self {
        let (queue, rows) = mpsc::channel(QUEUE);
        let this = Self { windows: Arc::default(), queue, dropped: Arc::default() };
        tokio::spawn(write_rows(store, rows));
        tokio::spawn(close_windows(Arc::clone(&this.windows), this.queue.clone(), window, Arc::clone(&this.dropped)));
        this
    }

    /// Records one denial of `action` on `target` by `actor`. Never waits on the database.
    pub fn note(&self, ctx: &RequestContext, actor: Option<&str>, action: &'static str, target: String) {
        // The metric counts every denial, coalesced or not (action and outcome: fixed sets).
        metrics::counter!("rampart_audit_events_total", "action" => AuditEvent::AuthzDenied.as_str(), "outcome" => "denied")
            .increment(1);
        let key = Key { actor: actor.map(str::to_owned), action, target };
        let seen = Seen {
            at: now_ms(),
            ip: ctx.ip.to_string(),
            request_id: ctx.request_id.to_string(),
            user_agent: ctx.user_agent.as_deref().map(str::to_owned),
        };
        let mut windows = lock(&self.windows);
        if let Some(w) = windows.get_mut(&key) {
            w.pending += 1;
            w.last = seen;
            return;
        }
        if windows.len() >= MAX_WINDOWS {
            drop(windows);
            if self.queue.try_send(Job::Write(Row { key, count: 1, seen })).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        // The first denial of a key is written at once; if the queue is full it is counted in
        // the window instead and written when the window closes.
        let row = Row { key: key.clone(), count: 1, seen: seen.clone() };
        let pending = i64::from(self.queue.try_send(Job::Write(row)).is_err());
        windows.insert(key, Window { opened: Instant::now(), pending, last: seen });
    }

    /// At shutdown: writes what the open windows counted, and waits (up to `patience`) until
    /// every queued row is in the database.
    pub async fn flush(&self, patience: Duration) {
        let rows: Vec<Row> = lock(&self.windows)
            .drain()
            .filter(|(_, w)| w.pending > 0)
            .map(|(key, w)| Row { key, count: w.pending, seen: w.last })
            .collect();
        let (done, written) = oneshot::channel();
        let queued = async {
            for row in rows {
                self.queue.send(Job::Write(row)).await.ok()?;
            }
            self.queue.send(Job::Barrier(done)).await.ok()?;
            written.await.ok()
        };
        if tokio::time::timeout(patience, queued).await.ok().flatten().is_none() {
            tracing::error!("authz_denied audit rows may be lost: the writer did not finish before shutdown");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain counters behind: still usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn write_rows(store: Store, mut jobs: mpsc::Receiver<Job>) {
    while let Some(job) = jobs.recv().await {
        let row = match job {
            Job::Write(row) => row,
            Job::Barrier(done) => {
                let _ = done.send(());
                continue;
            }
        };
        let event = NewAuditEvent {
            action: AuditEvent::AuthzDenied,
            actor_id: row.key.actor.as_deref(),
            target: Some(&row.key.target),
            ip: Some(&row.seen.ip),
            request_id: Some(&row.seen.request_id),
            user_agent: row.seen.user_agent.as_deref(),
            outcome: AuditOutcome::Denied,
            now: row.seen.at,
        };
        if let Err(e) = store.append_audit_repeated(&event, row.count).await {
            tracing::error!(action = "authz_denied", count = row.count, error = %e, "audit write failed");
        }
    }
}

/// Every quarter window (at most every 5 s): writes and restarts the windows that are over and
/// counted something, forgets the ones that counted nothing.
async fn close_windows(
    windows: Arc<Mutex<HashMap<Key, Window>>>,
    queue: mpsc::Sender<Job>,
    window: Duration,
    dropped: Arc<AtomicU64>,
) {
    let mut tick = tokio::time::interval((window / 4).clamp(Duration::from_millis(250), Duration::from_secs(5)));
    loop {
        tick.tick().await;
        let now = Instant::now();
        let mut due = Vec::new();
        lock(&windows).retain(|key, w| {
            if now.duration_since(w.opened) < window {
                return true;
            }
            if w.pending == 0 {
                return false;
            }
            due.push(Row { key: key.clone(), count: w.pending, seen: w.last.clone() });
            w.pending = 0;
            w.opened = now;
            true
        });
        for row in due {
            // Off the request path: waiting for room in the queue only delays this task.
            if queue.send(Job::Write(row)).await.is_err() {
                return;
            }
        }
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            metrics::counter!("rampart_audit_dropped_total").increment(lost);
            tracing::error!(dropped = lost, "authz_denied audit events dropped: the audit queue is full");
        }
    }
}

//! `serve`'s revocation feed: every [`POLL_EVERY`], this instance reads the logins revoked in the
//! database (`sessions.revoked_at`) into its own revocation set.
//!
//! Why: the revocation set shared through Redis is written once, by the instance that ends the
//! login. When that `SET` fails (Redis paused, restarting, unreachable), the instance keeps the
//! revocation locally and writes it back when Redis answers again; but if it dies first, no other
//! instance ever learns of it, and their Redis check answers "not revoked" until the token
//! expires. Without Redis there is no shared set at all. The database is the record (every writer
//! marks the login revoked there before touching the set), so reading it closes both gaps: a
//! revocation reaches every instance within about a second, whatever happens to Redis or to the
//! instance that made it. Redis stays the instant path.
//!
//! Cost: one range query on the `sessions_revoked_at` index per second per instance, returning
//! the logins revoked in the last [`OVERLAP`] plus a second.

use std::time::Duration;

use rampart_core::clock::{Millis, now_ms};

/// How often the database is read.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// How far before the previous read each read starts again. `revoked_at` is the revoking
/// instance's clock, taken before its transaction commits, so a row can become visible later than
/// its time says (a slow commit, that instance's clock a little behind ours). Reading a row again
/// costs a map lookup: a login already known is skipped.
const OVERLAP: Millis = 30_000;

/// Starts the feed. `covered_until`: the start-up rebuild already read everything revoked before
/// this time.
pub fn spawn(state: rampart_http::AppState, covered_until: Millis) {
    tokio::spawn(async move {
        let mut since = covered_until - OVERLAP;
        let mut tick = tokio::time::interval(POLL_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tick.tick().await;
            let now = now_ms();
            match state.store.revoked_since(since).await {
                Ok(rows) => {
                    for (sid, at) in rows {
                        state.revocations.note_revoked(&sid, state.revocation_horizon(at));
                    }
                    since = now - OVERLAP;
                    if std::mem::take(&mut failing) {
                        tracing::info!("revocation feed reads the database again");
                    }
                }
                // Once per failing spell, not every second. `since` stays put, so the next read
                // that succeeds covers the whole gap. Meanwhile revocations still reach this
                // instance through Redis, and a database outage stops far more than this.
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "revocation feed cannot read the database; retrying every second");
                }
                Err(_) => {}
            }
        }
    });
}

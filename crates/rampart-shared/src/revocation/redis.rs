//! The revocation set in Redis: `rampart:revoked:{sid}`, set with `PXAT` the moment its last
//! token expires, so Redis forgets it by itself. Needs Redis 6.2 or later (`PXAT`).
//!
//! Every revocation made here is also kept in a local [`MemoryRevocations`]:
//! - A login this instance revoked is answered from there without asking Redis (a revocation is
//!   never undone), and so still answers [`Revoked::Yes`] while Redis is down. For any other
//!   login, a Redis that does not answer (250 ms per call, see `crate::redis_link`) gives
//!   [`Revoked::Unknown`], and the caller asks the database.
//! - When Redis answers again after failing, this instance writes its whole local set back
//!   into it: a revocation whose `SET` failed during the outage reaches the other instances after
//!   all, and so do the ones a restarted Redis without persistence has lost.
//! - That write-back cannot help when the instance whose `SET` failed dies first. So every
//!   instance also reads the logins revoked in the database every second into this local set
//!   ([`RedisRevocations::note_revoked`]; the poll is `rampart serve`'s revocation feed): Redis
//!   is the instant path, the database the one that cannot lose a revocation.

use std::sync::Arc;

use rampart_core::clock::{Millis, now_ms};
use redis::Pipeline;

use super::{MemoryRevocations, Revoked};
use crate::redis_link::{Backend, Link, Unanswered};

pub struct RedisRevocations {
    /// Shared with the rate limiter (see `crate::redis_link`).
    link: Arc<Link>,
    local: MemoryRevocations,
}

impl RedisRevocations {
    pub(crate) fn new(link: Arc<Link>) -> Self {
        Self { link, local: MemoryRevocations::default() }
    }

    /// Records the revocation locally, then in Redis. If Redis does not take it now, it is
    /// written there when Redis answers again (module comment).
    pub async fn revoke(&self, sid: &str, until: Millis) {
        self.local.revoke(sid, until);
        if until <= now_ms() {
            return; // Every token of this login has expired already.
        }
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.link.key(&key(sid))).arg(1).arg("PXAT").arg(until);
        if self.link.call(|mut conn| async move { cmd.query_async::<()>(&mut conn).await }).await.is_some() {
            self.replay_if_recovered().await;
        }
    }

    /// A revocation read from the database: kept locally (so answered without Redis, and
    /// written back into Redis after an outage like this instance's own), not written to Redis
    /// now (see [`super::Revocations::note_revoked`]).
    pub fn note_revoked(&self, sid: &str, until: Millis) {
        self.local.note(sid, until);
    }

    pub async fn is_revoked(&self, sid: &str) -> Revoked {
        if self.local.is_revoked(sid, now_ms()) == Revoked::Yes {
            return Revoked::Yes;
        }
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(self.link.key(&key(sid)));
        let answer = match self.link.call(|mut conn| async move { cmd.query_async::<bool>(&mut conn).await }).await {
            Some(true) => Revoked::Yes,
            Some(false) => Revoked::No,
            None => return Revoked::Unknown,
        };
        self.replay_if_recovered().await;
        answer
    }

    /// Revoked as far as this instance knows by itself (no Redis call).
    pub fn known_revoked(&self, sid: &str) -> bool {
        self.local.is_revoked(sid, now_ms()) == Revoked::Yes
    }

    /// The full Redis key of a login in the set, for a script that checks it together with
    /// something else.
    pub fn key_for(&self, sid: &str) -> String {
        self.link.key(&key(sid))
    }

    pub fn degraded(&self) -> bool {
        self.link.degraded()
    }

    pub async fn ping(&self) -> Result<(), Unanswered> {
        self.link.ping().await.map_err(|reason| Unanswered { backend: Backend::Revocations, reason })?;
        self.replay_if_recovered().await;
        Ok(())
    }

    /// After an outage, writes every local revocation still in force back into Redis, in one
    /// pipeline. Should that fail, the link is degraded again and the next recovery retries.
    /// The outage may have been ended by a call of the rate limiter, which shares the link: the
    /// link keeps the news until a call of this set reads it here.
    pub(crate) async fn replay_if_recovered(&self) {
        if !self.link.take_recovered() {
            return;
        }
        let live = self.local.live(now_ms());
        if live.is_empty() {
            return;
        }
        let mut pipe = Pipeline::new();
        for (sid, until) in &live {
            pipe.cmd("SET").arg(self.link.key(&key(sid))).arg(1).arg("PXAT").arg(*until).ignore();
        }
        self.link.call(|mut conn| async move { pipe.query_async::<()>(&mut conn).await }).await;
    }
}

fn key(sid: &str) -> String {
    format!("revoked:{sid}")
}

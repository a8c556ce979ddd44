//! The readiness verdict, cached for one second per instance.
//!
//! `/readyz` is public and exempt from rate limits (an orchestrator must always reach it), so
//! without a cache every probe would be a database (and Redis) round trip that anyone could
//! multiply at will. With it, the dependencies see at most one check a second from this
//! instance, however many probes arrive; an outage still shows within about a second.

use std::future::Future;
use std::time::{Duration, Instant};

/// `Ok`: the checks that passed, for the body. `Err`: which dependency failed and why, for the
/// log only (the 503 body never carries it).
pub type Verdict = Result<serde_json::Value, String>;

/// How long one verdict is served.
pub const READINESS_TTL: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct ReadinessCache {
    /// Held during a check, so that a burst of probes waits for the one check in flight instead
    /// of starting its own.
    last: tokio::sync::Mutex<Option<(Instant, Verdict)>>,
}

impl ReadinessCache {
    /// The cached verdict while it is younger than [`READINESS_TTL`], else a fresh one from
    /// `check`. Failures are cached like successes: a dead database is not asked faster.
    pub async fn get_or_check<F, Fut>(&self, check: F) -> Verdict
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Verdict>,
    {
        let mut last = self.last.lock().await;
        if let Some((at, verdict)) = last.as_ref()
            && at.elapsed() < READINESS_TTL
        {
            return verdict.clone();
        }
        let verdict = check().await;
        // Timed from the end of the check: a slow check does not make the next one sooner.
        *last = Some((Instant::now(), verdict.clone()));
        verdict
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn one_check_a_second_whatever_the_number_of_probes() {
        let cache = ReadinessCache::default();
        let checks = AtomicUsize::new(0);
        let check = || async {
            checks.fetch_add(1, Ordering::SeqCst);
            Err("down".to_owned())
        };
        for _ in 0..50 {
            assert!(cache.get_or_check(check).await.is_err());
        }
        assert_eq!(checks.load(Ordering::SeqCst), 1);
        tokio::time::sleep(READINESS_TTL + Duration::from_millis(50)).await;
        assert!(cache.get_or_check(check).await.is_err());
        assert_eq!(checks.load(Ordering::SeqCst), 2);
    }
}

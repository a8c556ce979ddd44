//! The deployment-wide brake on outgoing mail, per instance: `per_minute` messages a minute,
//! refilled continuously. Routine mail may only use the upper half, so that security mail always
//! finds the lower half.

use tokio::time::Instant;

pub(crate) struct Budget {
    per_minute: f64,
    tokens: f64,
    at: Instant,
}

impl Budget {
    pub(crate) fn new(per_minute: u32) -> Self {
        let per_minute = f64::from(per_minute.max(1));
        Self { per_minute, tokens: per_minute, at: Instant::now() }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let earned = now.duration_since(self.at).as_secs_f64() * self.per_minute / 60.0;
        self.tokens = (self.tokens + earned).min(self.per_minute);
        self.at = now;
    }

    /// How many security messages may go out now (the whole budget is theirs).
    pub(crate) fn security_room(&mut self) -> i64 {
        self.refill();
        // Truncation is intended: whole messages; the budget is at most `u32::MAX`.
        #[allow(clippy::cast_possible_truncation)]
        let room = self.tokens.floor() as i64;
        room.max(0)
    }

    /// Takes one token for a security message (`security_room` said there was one).
    pub(crate) fn take_security(&mut self) {
        self.tokens -= 1.0;
    }

    /// Takes one token for a routine message, or refuses when only the security half is left.
    pub(crate) fn take_routine(&mut self) -> bool {
        self.refill();
        if self.tokens < self.per_minute / 2.0 + 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }

    /// How long until one more token (for the worker's sleep when security mail waits).
    pub(crate) fn until_next(&self) -> std::time::Duration {
        let missing = (1.0 - self.tokens).max(0.0);
        std::time::Duration::from_secs_f64(missing * 60.0 / self.per_minute)
    }
}

//! nginx `limit_req` with no burst, per key: a request less than `1/rate` after
//! the key's previous accepted request is rejected, and a rejection changes nothing.
//!
//! nginx keeps an "excess" that drains at `rate` and rejects when one more request
//! would push it above `burst`; with `burst` 0 that is exactly the gap rule above.

use super::keys::PerKey;
use super::{since_epoch, Verdict};
use std::num::NonZeroU32;
use std::time::{Duration, SystemTime};

/// Per-key times of the last accepted request.
#[derive(Debug)]
pub(crate) struct LeakyBucket {
    rate: NonZeroU32,
    /// The shortest gap between two accepted requests of one key.
    interval: Duration,
    /// key -> time of its last accepted request, since the epoch.
    last: PerKey<Option<Duration>>,
}

impl LeakyBucket {
    /// A leaky bucket draining `rate` requests per second per key, no burst.
    pub(crate) fn new(rate: NonZeroU32) -> Self {
        LeakyBucket {
            rate,
            interval: Duration::from_secs(1) / rate.get(),
            // After one interval (at most a second) an old entry rejects nothing.
            last: PerKey::new(2),
        }
    }

    /// Accept a request for `key` arriving at `now` if the key's last accepted one
    /// is at least an interval old, else refuse it.
    pub(crate) fn check(&mut self, key: &str, now: SystemTime) -> Verdict {
        let since = since_epoch(now);
        let limit = self.rate.get();
        let last = self.last.entry(key, since.as_secs(), || None);
        // A clock that went back counts as no time passed, as nginx does.
        let too_soon = last.is_some_and(|last| {
            since
                .checked_sub(last)
                .is_none_or(|gap| gap < self.interval)
        });
        if too_soon {
            return Verdict::Limited {
                limit,
                retry_after: 1,
            };
        }
        *last = Some(since);
        Verdict::Accepted {
            limit,
            remaining: 0,
            reset: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    fn accepted(v: Verdict) -> bool {
        matches!(v, Verdict::Accepted { .. })
    }

    #[test]
    fn a_request_within_one_interval_of_the_last_accepted_is_refused() {
        let mut b = LeakyBucket::new(NonZeroU32::new(4).unwrap());
        assert!(accepted(b.check("k", at(1_000))));
        assert!(!accepted(b.check("k", at(1_010))));
        assert!(!accepted(b.check("k", at(1_249))));
        // Refusals did not move the reference point: 250 ms after the accepted one passes.
        assert!(accepted(b.check("k", at(1_250))));
        assert!(!accepted(b.check("k", at(1_499))));
        assert!(accepted(b.check("other", at(1_499))));
        // Nothing is saved up for later: a long pause allows one, not a burst.
        assert!(accepted(b.check("k", at(9_000))));
        assert!(!accepted(b.check("k", at(9_001))));
    }

    #[test]
    fn even_spacing_at_the_rate_passes_and_a_clock_going_back_is_refused() {
        let mut b = LeakyBucket::new(NonZeroU32::new(20).unwrap());
        for i in 0..100 {
            assert!(accepted(b.check("k", at(5_000 + i * 50))), "request {i}");
        }
        assert!(!accepted(b.check("k", at(4_000))));
    }
}

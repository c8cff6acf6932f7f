//! A sliding-window rate limit that counts rejected requests too, as some proxies
//! do: the count over the last second is estimated from the current and previous
//! wall-clock windows, the previous one weighted by how much of it the last second
//! still covers; a request is let through while that estimate (without it) is
//! below the limit. A client that keeps retrying while blocked keeps itself blocked.

use super::keys::PerKey;
use super::{secs_until_next_window, since_epoch, Verdict};
use std::num::NonZeroU32;
use std::time::SystemTime;

/// Nanoseconds per second: the estimate is kept in requests x 10^9 so it is exact.
const NANOS: u128 = 1_000_000_000;

/// One key's two windows.
#[derive(Debug, Clone, Copy)]
struct Counts {
    /// The current window, whole seconds since the epoch.
    window: u64,
    /// Requests (accepted or not) in the window before it.
    previous: u32,
    /// Requests (accepted or not) in the current window.
    current: u32,
}

impl Counts {
    /// Move to `window`, shifting or clearing the counts.
    fn roll(&mut self, window: u64) {
        if window == self.window {
            return;
        }
        self.previous = if window == self.window + 1 {
            self.current
        } else {
            0
        };
        self.current = 0;
        self.window = window;
    }
}

/// Per-key sliding windows of one second.
#[derive(Debug)]
pub(crate) struct SlidingWindow {
    limit: NonZeroU32,
    keys: PerKey<Counts>,
}

impl SlidingWindow {
    /// A limiter allowing an estimated `limit` requests per key over any second.
    pub(crate) fn new(limit: NonZeroU32) -> Self {
        SlidingWindow {
            limit,
            // After two quiet windows both counts are zero.
            keys: PerKey::new(2),
        }
    }

    /// Count a request for `key` arriving at `now` (whatever the verdict), and judge it.
    pub(crate) fn check(&mut self, key: &str, now: SystemTime) -> Verdict {
        let since = since_epoch(now);
        let window = since.as_secs();
        let counts = self.keys.entry(key, window, || Counts {
            window,
            previous: 0,
            current: 0,
        });
        counts.roll(window);
        let left_of_previous = NANOS - u128::from(since.subsec_nanos());
        let estimate =
            u128::from(counts.previous) * left_of_previous + u128::from(counts.current) * NANOS;
        // Rejected requests are counted too: that is what keeps a retrying client out.
        counts.current = counts.current.saturating_add(1);
        let limit = self.limit.get();
        let reset = secs_until_next_window(since);
        let allowed = u128::from(limit) * NANOS;
        if estimate >= allowed {
            return Verdict::Limited {
                limit,
                retry_after: reset,
            };
        }
        let after = estimate + NANOS;
        let remaining = u32::try_from(allowed.saturating_sub(after) / NANOS).unwrap_or(limit);
        Verdict::Accepted {
            limit,
            remaining,
            reset,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    fn sliding(limit: u32) -> SlidingWindow {
        SlidingWindow::new(NonZeroU32::new(limit).unwrap())
    }

    fn accepted(v: Verdict) -> bool {
        matches!(v, Verdict::Accepted { .. })
    }

    #[test]
    fn a_burst_at_a_window_start_is_held_against_the_next_window() {
        let mut w = sliding(4);
        for _ in 0..4 {
            assert!(accepted(w.check("k", at(10_000))));
        }
        assert!(!accepted(w.check("k", at(10_001))));
        // 250 ms into the next window 5 x 0.75 = 3.75 of the previous window (the
        // refused request counted too) still count: a fixed window would let a new
        // burst of 4 through here, the sliding one lets one.
        let passed = (0..4)
            .filter(|_| accepted(w.check("k", at(11_250))))
            .count();
        assert_eq!(passed, 1);
    }

    #[test]
    fn even_spacing_at_the_limit_passes() {
        let mut w = sliding(4);
        for i in 0..40 {
            let v = w.check("k", at(20_010 + i * 250));
            assert!(accepted(v), "request {i}: {v:?}");
        }
    }

    #[test]
    fn a_client_retrying_while_blocked_stays_blocked() {
        let mut w = sliding(4);
        for _ in 0..4 {
            assert!(accepted(w.check("k", at(30_000))));
        }
        // Retrying every 50 ms at 20/s: every retry is refused and counted.
        let refused = (1..60)
            .filter(|i| !accepted(w.check("k", at(30_000 + i * 50))))
            .count();
        assert_eq!(refused, 59);
        // After two quiet seconds the key is free again.
        assert!(accepted(w.check("k", at(35_000))));
    }

    #[test]
    fn remaining_comes_from_the_estimate() {
        let mut w = sliding(10);
        for _ in 0..6 {
            w.check("k", at(40_000));
        }
        // Half way through the next window 6 x 0.5 = 3 still count: 10 - 3 - 1 = 6 left.
        assert_eq!(
            w.check("k", at(41_500)),
            Verdict::Accepted {
                limit: 10,
                remaining: 6,
                reset: 1
            }
        );
        assert!(accepted(w.check("other", at(41_500))));
    }
}

//! Kong's fixed-window rate limit: windows aligned to the wall-clock second,
//! counted per client key, rejected requests not counted.
//!
//! The clock is a parameter so tests need no sleeping.

use super::{secs_until_next_window, since_epoch, Verdict};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::SystemTime;

/// Keys kept before windows of past seconds are dropped (bounds memory when many keys come and go).
const PRUNE_ABOVE: usize = 4096;

/// Per-key counters for one-second windows.
#[derive(Debug)]
pub(crate) struct FixedWindow {
    limit: NonZeroU32,
    /// key -> (window start in whole seconds since the epoch, requests counted in it).
    counts: HashMap<String, (u64, u32)>,
}

impl FixedWindow {
    /// A limiter allowing `limit` requests per key per wall-clock second.
    pub(crate) fn new(limit: NonZeroU32) -> Self {
        FixedWindow {
            limit,
            counts: HashMap::new(),
        }
    }

    /// Count a request for `key` arriving at `now`, or refuse it.
    pub(crate) fn check(&mut self, key: &str, now: SystemTime) -> Verdict {
        let since = since_epoch(now);
        let window = since.as_secs();
        let reset = secs_until_next_window(since);
        let limit = self.limit.get();

        if self.counts.len() > PRUNE_ABOVE {
            self.counts.retain(|_, (w, _)| *w == window);
        }
        let entry = match self.counts.get_mut(key) {
            Some(entry) => entry,
            None => self.counts.entry(key.to_string()).or_insert((window, 0)),
        };
        if entry.0 != window {
            *entry = (window, 0);
        }
        if entry.1 >= limit {
            return Verdict::Limited {
                limit,
                retry_after: reset,
            };
        }
        entry.1 += 1;
        Verdict::Accepted {
            limit,
            remaining: limit - entry.1,
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

    fn window(limit: u32) -> FixedWindow {
        FixedWindow::new(NonZeroU32::new(limit).unwrap())
    }

    fn accepted(v: Verdict) -> bool {
        matches!(v, Verdict::Accepted { .. })
    }

    #[test]
    fn counts_within_one_second_then_refuses() {
        let mut w = window(2);
        let base = 1_700_000_000_000;
        assert_eq!(
            w.check("k", at(base + 10)),
            Verdict::Accepted {
                limit: 2,
                remaining: 1,
                reset: 1
            }
        );
        assert_eq!(
            w.check("k", at(base + 500)),
            Verdict::Accepted {
                limit: 2,
                remaining: 0,
                reset: 1
            }
        );
        for ms in [501, 900, 999] {
            assert_eq!(
                w.check("k", at(base + ms)),
                Verdict::Limited {
                    limit: 2,
                    retry_after: 1
                }
            );
        }
    }

    #[test]
    fn a_new_second_opens_a_new_window() {
        let mut w = window(1);
        assert!(accepted(w.check("k", at(5_999))));
        assert!(!accepted(w.check("k", at(5_999))));
        // 1 ms later is the next wall-clock second: a fresh window, whatever the gap.
        assert!(accepted(w.check("k", at(6_000))));
        assert!(!accepted(w.check("k", at(6_001))));
        assert!(accepted(w.check("k", at(60_000))));
    }

    #[test]
    fn rejected_requests_are_not_counted() {
        let mut w = window(3);
        for _ in 0..3 {
            assert!(accepted(w.check("k", at(1_000))));
        }
        for _ in 0..100 {
            assert!(!accepted(w.check("k", at(1_100))));
        }
        // Next window: the 100 refusals did not eat into it.
        for _ in 0..3 {
            assert!(accepted(w.check("k", at(2_000))));
        }
    }

    #[test]
    fn keys_have_separate_windows() {
        let mut w = window(1);
        assert!(accepted(w.check("a", at(1_000))));
        assert!(accepted(w.check("b", at(1_000))));
        assert!(!accepted(w.check("a", at(1_000))));
    }

    #[test]
    fn at_most_limit_per_window_whatever_the_arrivals() {
        // Invariant: per key and window, accepted <= limit, and all of the first `limit` pass.
        let mut rng = fastrand::Rng::with_seed(7);
        let mut w = window(4);
        let mut per_window: HashMap<(u8, u64), u32> = HashMap::new();
        let mut ms = 0;
        for _ in 0..5_000 {
            ms += rng.u64(0..40);
            let key = rng.u8(0..3);
            let v = w.check(&key.to_string(), at(ms));
            let n = per_window.entry((key, ms / 1000)).or_default();
            assert_eq!(accepted(v), *n < 4);
            if accepted(v) {
                *n += 1;
            }
        }
    }

    #[test]
    fn old_keys_are_pruned() {
        let mut w = window(1);
        for i in 0..=PRUNE_ABOVE {
            w.check(&i.to_string(), at(1_000));
        }
        w.check("late", at(2_000));
        assert_eq!(w.counts.len(), 1);
    }

    #[test]
    fn clock_before_epoch_is_the_epoch() {
        let mut w = window(1);
        let before = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(
            w.check("k", before),
            Verdict::Accepted {
                limit: 1,
                remaining: 0,
                reset: 1
            }
        );
    }
}

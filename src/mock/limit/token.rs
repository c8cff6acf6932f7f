//! A token bucket per key, as cloud API gateways limit: `burst` tokens, refilled at
//! `rate` per second; a request takes a token or is rejected (taking none). Short
//! bursts pass; sustained excess does not.

use super::keys::PerKey;
use super::{since_epoch, Verdict};
use std::num::NonZeroU32;
use std::time::{Duration, SystemTime};

/// Nanoseconds per second: tokens are kept in units of 10^-9 so refills are exact.
const NANOS: u128 = 1_000_000_000;

/// One key's bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Tokens x 10^9.
    tokens: u128,
    /// When `tokens` was last brought up to date, since the epoch.
    at: Duration,
}

/// Per-key token buckets.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    rate: NonZeroU32,
    /// Bucket size x 10^9.
    capacity: u128,
    buckets: PerKey<Bucket>,
}

impl TokenBucket {
    /// Buckets of `burst` tokens refilled at `rate` per second; a new key's bucket is full.
    pub(crate) fn new(rate: NonZeroU32, burst: NonZeroU32) -> Self {
        // Once quiet for burst / rate seconds a bucket is full, as a fresh one is.
        let refill_secs = u64::from(burst.get().div_ceil(rate.get()));
        TokenBucket {
            rate,
            capacity: u128::from(burst.get()) * NANOS,
            buckets: PerKey::new(refill_secs + 1),
        }
    }

    /// Take a token for `key` at `now`, or refuse the request.
    pub(crate) fn check(&mut self, key: &str, now: SystemTime) -> Verdict {
        let since = since_epoch(now);
        let (rate, capacity) = (self.rate.get(), self.capacity);
        let bucket = self.buckets.entry(key, since.as_secs(), || Bucket {
            tokens: capacity,
            at: since,
        });
        // A clock that went back refills nothing.
        let elapsed = since.saturating_sub(bucket.at);
        bucket.tokens = (bucket.tokens + elapsed.as_nanos() * u128::from(rate)).min(capacity);
        bucket.at = bucket.at.max(since);
        if bucket.tokens < NANOS {
            let missing = NANOS - bucket.tokens;
            let wait_nanos = missing.div_ceil(u128::from(rate));
            let retry_after = u64::try_from(wait_nanos.div_ceil(NANOS)).unwrap_or(u64::MAX);
            return Verdict::Limited {
                limit: rate,
                retry_after: retry_after.max(1),
            };
        }
        bucket.tokens -= NANOS;
        Verdict::Accepted {
            limit: rate,
            remaining: u32::try_from(bucket.tokens / NANOS).unwrap_or(u32::MAX),
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

    fn bucket(rate: u32, burst: u32) -> TokenBucket {
        TokenBucket::new(
            NonZeroU32::new(rate).unwrap(),
            NonZeroU32::new(burst).unwrap(),
        )
    }

    fn accepted(v: Verdict) -> bool {
        matches!(v, Verdict::Accepted { .. })
    }

    #[test]
    fn a_burst_passes_then_the_refill_rate_rules() {
        let mut b = bucket(4, 3);
        let burst = (0..5).filter(|_| accepted(b.check("k", at(1_000)))).count();
        assert_eq!(burst, 3);
        // One token per 250 ms.
        assert!(!accepted(b.check("k", at(1_200))));
        assert!(accepted(b.check("k", at(1_250))));
        assert!(!accepted(b.check("k", at(1_260))));
        assert!(accepted(b.check("other", at(1_260))));
    }

    #[test]
    fn sustained_excess_is_refused_at_the_refill_rate() {
        // 40/s offered for 10 s against 10/s with a burst of 5: 5 + 10 x 10 pass.
        let mut b = bucket(10, 5);
        let passed = (0..400)
            .filter(|i| accepted(b.check("k", at(10_000 + i * 25))))
            .count();
        assert!((100..=106).contains(&passed), "{passed}");
    }

    #[test]
    fn the_bucket_never_holds_more_than_the_burst() {
        let mut b = bucket(100, 2);
        assert!(accepted(b.check("k", at(1_000))));
        let burst = (0..5)
            .filter(|_| accepted(b.check("k", at(60_000))))
            .count();
        assert_eq!(burst, 2);
        assert_eq!(
            b.check("k", at(60_000)),
            Verdict::Limited {
                limit: 100,
                retry_after: 1
            }
        );
    }
}

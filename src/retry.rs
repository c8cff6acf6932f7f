//! Retry policy: which failures are tried again, how often, and after how long.

use std::num::NonZeroU32;
use std::time::Duration;

/// Bounds and backoff for retries of one job.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts per job that may end in a transient failure (5xx, network
    /// errors, timeouts) before the job is recorded as failed. Defaults to 5.
    pub max_attempts: NonZeroU32,
    /// Rate-limit replies one job may get before it is recorded as failed;
    /// the tutorial retried them forever. Defaults to 30.
    pub max_rate_limited: u32,
    /// Backoff before the first retry; doubles each time. Defaults to 500 ms.
    pub base_delay: Duration,
    /// Longest backoff. Defaults to 30 s.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: NonZeroU32::new(5).expect("5 is not zero"),
            max_rate_limited: 30,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Whether a job that has had `transient_failures` may be tried again.
    pub fn may_retry(&self, transient_failures: u32) -> bool {
        transient_failures < self.max_attempts.get()
    }

    /// The wait before the next try after `transient_failures` failures
    /// (at least 1): exponential, capped, with "equal jitter" (half fixed,
    /// half random) so retries of many jobs spread out instead of colliding.
    pub fn backoff(&self, transient_failures: u32, rng: &mut fastrand::Rng) -> Duration {
        let doublings = transient_failures.saturating_sub(1).min(31);
        let full = self
            .base_delay
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        let half = full / 2;
        half + half.mul_f64(rng.f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        let policy = RetryPolicy::default();
        let mut rng = fastrand::Rng::with_seed(7);
        for failures in 1..40 {
            let nominal = Duration::from_millis(500)
                .saturating_mul(1u32 << (failures - 1).min(31))
                .min(Duration::from_secs(30));
            let wait = policy.backoff(failures, &mut rng);
            assert!(
                wait >= nominal / 2 && wait <= nominal,
                "{failures}: {wait:?}"
            );
        }
    }

    #[test]
    fn attempts_are_capped() {
        let policy = RetryPolicy {
            max_attempts: NonZeroU32::new(3).unwrap(),
            ..RetryPolicy::default()
        };
        assert!(policy.may_retry(1));
        assert!(policy.may_retry(2));
        assert!(!policy.may_retry(3));
    }
}

//! The allotted rate of request starts, with the burst allowed on top.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

/// A rate of request starts, with the burst allowed on top of even spacing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    interval: Duration,
    burst: NonZeroU32,
}

impl Rate {
    /// `per_second` starts per second, evenly spaced (burst 1).
    /// `None` unless the rate is between [`Rate::MIN_PER_SECOND`] and
    /// [`Rate::MAX_PER_SECOND`].
    pub fn per_second(per_second: f64) -> Option<Rate> {
        if !(Rate::MIN_PER_SECOND..=Rate::MAX_PER_SECOND).contains(&per_second) {
            return None;
        }
        Some(Rate {
            interval: Duration::try_from_secs_f64(1.0 / per_second).ok()?,
            burst: NonZeroU32::MIN,
        })
    }

    /// The slowest rate: one request a day.
    pub const MIN_PER_SECOND: f64 = 1.0 / 86_400.0;
    /// The fastest rate.
    pub const MAX_PER_SECOND: f64 = 1e6;

    /// The same rate, letting `burst` requests start at once after a quiet spell.
    pub fn with_burst(self, burst: NonZeroU32) -> Rate {
        Rate { burst, ..self }
    }

    /// Time between two starts at the steady rate.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Starts allowed at once after a quiet spell.
    pub fn burst(&self) -> NonZeroU32 {
        self.burst
    }

    /// Requests per second.
    pub fn per_second_f64(&self) -> f64 {
        1.0 / self.interval.as_secs_f64()
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2}/s", self.per_second_f64())
    }
}

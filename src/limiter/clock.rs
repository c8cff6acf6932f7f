//! The limiter's clock, injectable: the system's in use, a fake one that a
//! test advances by hand in tests (as `governor`'s `clock.rs` does), so the
//! limiter's waiting is tested without sleeping.
//!
//! A moment is read on two clocks at once ([`Now`]): the monotonic one to
//! wait on, and the wall clock because gateways count in wall-clock seconds.

use crate::stop::Stop;
use parking_lot::{Condvar, Mutex, MutexGuard};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A moment on both clocks: `Instant` to sleep on, wall time because
/// gateways count in wall-clock seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// The monotonic clock.
    pub instant: Instant,
    /// The wall clock.
    pub wall: SystemTime,
}

impl Now {
    /// The current moment on the system's clocks.
    pub fn system() -> Now {
        Now {
            instant: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    /// Wall time since the UNIX epoch (zero for a clock before 1970).
    pub(super) fn since_epoch(&self) -> Duration {
        self.wall.duration_since(UNIX_EPOCH).unwrap_or_default()
    }

    /// The instant at which the wall clock shows `since_epoch`.
    pub(super) fn instant_of(&self, since_epoch: Duration) -> Instant {
        let now = self.since_epoch();
        if since_epoch >= now {
            later(self.instant, since_epoch - now)
        } else {
            self.instant
                .checked_sub(now - since_epoch)
                .unwrap_or(self.instant)
        }
    }

    /// The wall time (since the epoch) at `instant`.
    pub(super) fn since_epoch_at(&self, instant: Instant) -> Duration {
        let now = self.since_epoch();
        if instant >= self.instant {
            now + (instant - self.instant)
        } else {
            now.saturating_sub(self.instant - instant)
        }
    }
}

/// `instant + wait`, or about a year later where that overflows.
pub(crate) fn later(instant: Instant, wait: Duration) -> Instant {
    instant
        .checked_add(wait)
        .or_else(|| instant.checked_add(Duration::from_secs(365 * 86_400)))
        .unwrap_or(instant)
}

/// Where the limiter reads the time and lets it pass.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current moment.
    fn now(&self) -> Now;

    /// Blocks until `deadline` or until `wake` is notified, whichever comes
    /// first, releasing `guard` meanwhile.
    fn wait_until<T>(&self, wake: &Condvar, guard: &mut MutexGuard<'_, T>, deadline: Instant);

    /// Busy-waits until `deadline`: a timed sleep wakes up to ~100 us late
    /// and unevenly, so the last microseconds of a wait are spun.
    fn spin_until(&self, deadline: Instant);

    /// Sleeps until `deadline` unless `stop` is given first; `false` if stopped.
    fn sleep_until(&self, stop: &Stop, deadline: Instant) -> bool;
}

/// The system's clocks; the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Now {
        Now::system()
    }

    fn wait_until<T>(&self, wake: &Condvar, guard: &mut MutexGuard<'_, T>, deadline: Instant) {
        let _ = wake.wait_until(guard, deadline);
    }

    fn spin_until(&self, deadline: Instant) {
        while Instant::now() < deadline {
            std::hint::spin_loop();
        }
    }

    fn sleep_until(&self, stop: &Stop, deadline: Instant) -> bool {
        stop.sleep_until(deadline)
    }
}

/// A clock that moves only when told to: by [`FakeClock::advance`], or by a
/// caller that waits on it (the wait ends at once, the clock having moved to
/// its deadline, or past it by the lateness set). Clones share one time. The
/// wall clock can be stepped on its own, as NTP or a resumed VM steps it.
#[derive(Debug, Clone)]
pub struct FakeClock {
    now: Arc<Mutex<Now>>,
    lateness: Arc<Mutex<Duration>>,
}

impl FakeClock {
    /// A clock that starts at `wall` (on the monotonic clock: the real present).
    pub fn starting_at(wall: SystemTime) -> FakeClock {
        FakeClock {
            now: Arc::new(Mutex::new(Now {
                instant: Instant::now(),
                wall,
            })),
            lateness: Arc::default(),
        }
    }

    /// From now on every timed wait ends `lateness` after its deadline, as
    /// on a busy machine (spins stay exact).
    pub fn set_lateness(&self, lateness: Duration) {
        *self.lateness.lock() = lateness;
    }

    fn oversleep_to(&self, deadline: Instant) {
        let lateness = *self.lateness.lock();
        self.advance_to(later(deadline, lateness));
    }

    /// Moves both clocks forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock();
        now.instant = later(now.instant, by);
        now.wall += by;
    }

    /// Moves both clocks forward to `instant` (no-op if it has passed).
    pub fn advance_to(&self, instant: Instant) {
        let gap = instant.saturating_duration_since(self.now.lock().instant);
        self.advance(gap);
    }

    /// Steps the wall clock back by `by`; the monotonic clock does not move.
    pub fn step_wall_back(&self, by: Duration) {
        let mut now = self.now.lock();
        now.wall = now.wall.checked_sub(by).unwrap_or(UNIX_EPOCH);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Now {
        *self.now.lock()
    }

    fn wait_until<T>(&self, _wake: &Condvar, _guard: &mut MutexGuard<'_, T>, deadline: Instant) {
        self.oversleep_to(deadline);
    }

    fn spin_until(&self, deadline: Instant) {
        self.advance_to(deadline);
    }

    fn sleep_until(&self, stop: &Stop, deadline: Instant) -> bool {
        if stop.is_stopped() {
            return false;
        }
        self.oversleep_to(deadline);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fake_clock_moves_only_when_told() {
        let clock = FakeClock::starting_at(UNIX_EPOCH + Duration::from_secs(100));
        let t0 = clock.now();
        assert_eq!(clock.now(), t0);
        clock.advance(Duration::from_millis(250));
        assert_eq!(clock.now().instant - t0.instant, Duration::from_millis(250));
        assert_eq!(clock.now().since_epoch(), Duration::from_millis(100_250));
        clock.step_wall_back(Duration::from_secs(2));
        assert_eq!(clock.now().since_epoch(), Duration::from_millis(98_250));
        assert_eq!(clock.now().instant - t0.instant, Duration::from_millis(250));
        let stop = Stop::new();
        assert!(clock.sleep_until(&stop, t0.instant + Duration::from_secs(1)));
        assert_eq!(clock.now().instant - t0.instant, Duration::from_secs(1));
        stop.stop();
        assert!(!clock.sleep_until(&stop, t0.instant + Duration::from_secs(9)));
    }

    #[test]
    fn wall_and_monotonic_times_convert_both_ways() {
        let now = Now {
            instant: Instant::now(),
            wall: UNIX_EPOCH + Duration::from_millis(10_300),
        };
        let boundary = now.instant_of(Duration::from_secs(11));
        assert_eq!(boundary - now.instant, Duration::from_millis(700));
        assert_eq!(now.since_epoch_at(boundary), Duration::from_secs(11));
        let before = now.instant_of(Duration::from_secs(10));
        assert_eq!(now.instant - before, Duration::from_millis(300));
    }
}

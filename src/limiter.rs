//! The pacing limiter shared by all workers: when may the next request start?
//!
//! A GCRA (generic cell rate algorithm) that hands out start *reservations*:
//! each caller gets its own slot, so N waiting threads start one interval apart
//! instead of waking together and racing. A 429 anywhere pauses everybody: the
//! pause moves the schedule, and sleepers holding older slots re-reserve.
//!
//! The arithmetic takes `now` as a parameter ([`Limiter::reserve_at`]) so it is
//! tested with made-up instants, without sleeping.

use crate::stop::Stop;
use parking_lot::Mutex;
use std::fmt;
use std::num::NonZeroU32;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A rate of request starts, with the burst allowed on top of even spacing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    interval: Duration,
    burst: NonZeroU32,
}

impl Rate {
    /// `per_second` starts per second, evenly spaced (burst 1).
    /// `None` unless the rate is finite, positive and at most 10^6.
    pub fn per_second(per_second: f64) -> Option<Rate> {
        if !per_second.is_finite() || per_second <= 0.0 || per_second > 1e6 {
            return None;
        }
        Some(Rate {
            interval: Duration::from_secs_f64(1.0 / per_second),
            burst: NonZeroU32::MIN,
        })
    }

    /// The same rate, letting `burst` requests start at once after a quiet spell.
    pub fn with_burst(self, burst: NonZeroU32) -> Rate {
        Rate { burst, ..self }
    }

    /// Time between two starts at the steady rate.
    pub fn interval(&self) -> Duration {
        self.interval
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

/// A start slot handed out by [`Limiter::reserve_at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// When the request may start.
    pub start: Instant,
    /// The pause generation the slot belongs to; a newer pause voids it.
    generation: u64,
}

/// The limiter was stopped while a caller waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

/// Shared pacing for every worker. `rate: None` paces nothing but still
/// honours pauses (the concurrency mode).
#[derive(Debug)]
pub struct Limiter {
    rate: Option<Rate>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// GCRA's theoretical arrival time: when the schedule is next free.
    /// `None` until the first request, so the first one starts at once.
    next_free: Option<Instant>,
    paused_until: Option<Instant>,
    generation: u64,
}

impl Limiter {
    /// A limiter pacing at `rate`, or only pausing when `rate` is `None`.
    pub fn new(rate: Option<Rate>) -> Limiter {
        Limiter {
            rate,
            state: Mutex::new(State {
                next_free: None,
                paused_until: None,
                generation: 0,
            }),
        }
    }

    /// The pacing rate, if any.
    pub fn rate(&self) -> Option<Rate> {
        self.rate
    }

    /// Books the earliest start slot at or after `now`.
    pub fn reserve_at(&self, now: Instant) -> Reservation {
        let mut state = self.state.lock();
        let mut start = now;
        if let Some(paused_until) = state.paused_until {
            start = start.max(paused_until);
        }
        if let (Some(rate), Some(next_free)) = (self.rate, state.next_free) {
            let tolerance = rate.interval * (rate.burst.get() - 1);
            start = start.max(next_free.checked_sub(tolerance).unwrap_or(next_free));
        }
        if let Some(rate) = self.rate {
            let base = state.next_free.map_or(start, |free| free.max(start));
            state.next_free = Some(base + rate.interval);
        }
        Reservation {
            start,
            generation: state.generation,
        }
    }

    /// Whether a pause has voided `reservation` since it was made.
    pub fn is_void(&self, reservation: &Reservation) -> bool {
        self.state.lock().generation != reservation.generation
    }

    /// Holds back every start until `until`, and restarts even pacing from there.
    pub fn pause_until(&self, until: Instant) {
        let mut state = self.state.lock();
        let until = state.paused_until.map_or(until, |p| p.max(until));
        state.paused_until = Some(until);
        if self.rate.is_some() {
            // Slots booked before the pause were spread over a schedule that
            // no longer holds; their holders must book again after it.
            state.next_free = Some(until);
        }
        state.generation += 1;
    }

    /// Blocks until the caller may start a request, or `stop` is given.
    ///
    /// # Errors
    /// [`Stopped`] when the stop signal was given while waiting.
    pub fn acquire(&self, stop: &Stop) -> Result<(), Stopped> {
        loop {
            if stop.is_stopped() {
                return Err(Stopped);
            }
            let reservation = self.reserve_at(Instant::now());
            if !stop.sleep_until(reservation.start) {
                return Err(Stopped);
            }
            if !self.is_void(&reservation) {
                return Ok(());
            }
        }
    }
}

/// How long until the next fixed window of a gateway that counts per
/// wall-clock second (Kong), plus a margin for clock skew between us and it.
pub fn until_next_window(now: SystemTime, margin: Duration) -> Duration {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let into_second = Duration::from_nanos(u64::from(since_epoch.subsec_nanos()));
    Duration::from_secs(1) - into_second + margin
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn rates_out_of_range_are_refused() {
        assert!(Rate::per_second(0.0).is_none());
        assert!(Rate::per_second(-1.0).is_none());
        assert!(Rate::per_second(f64::NAN).is_none());
        assert!(Rate::per_second(f64::INFINITY).is_none());
        assert_eq!(Rate::per_second(4.0).unwrap().interval(), ms(250));
    }

    #[test]
    fn waiting_callers_get_evenly_spaced_slots() {
        let limiter = Limiter::new(Rate::per_second(4.0));
        let t0 = Instant::now();
        let starts: Vec<Duration> = (0..5).map(|_| limiter.reserve_at(t0).start - t0).collect();
        assert_eq!(starts, vec![ms(0), ms(250), ms(500), ms(750), ms(1000)]);
    }

    #[test]
    fn idle_time_does_not_bank_a_burst() {
        let limiter = Limiter::new(Rate::per_second(4.0));
        let t0 = Instant::now();
        limiter.reserve_at(t0);
        let later = t0 + Duration::from_secs(10);
        assert_eq!(limiter.reserve_at(later).start, later);
        assert_eq!(limiter.reserve_at(later).start, later + ms(250));
    }

    #[test]
    fn a_burst_lets_that_many_start_at_once_then_paces() {
        let rate = Rate::per_second(4.0)
            .unwrap()
            .with_burst(NonZeroU32::new(3).unwrap());
        let limiter = Limiter::new(Some(rate));
        let t0 = Instant::now();
        let starts: Vec<Duration> = (0..5).map(|_| limiter.reserve_at(t0).start - t0).collect();
        assert_eq!(starts, vec![ms(0), ms(0), ms(0), ms(250), ms(500)]);
    }

    #[test]
    fn a_pause_holds_everyone_and_voids_older_slots() {
        let limiter = Limiter::new(Rate::per_second(4.0));
        let t0 = Instant::now();
        limiter.reserve_at(t0);
        let booked = limiter.reserve_at(t0);
        limiter.pause_until(t0 + Duration::from_secs(2));
        assert!(limiter.is_void(&booked));
        let after = limiter.reserve_at(t0 + ms(300));
        assert!(!limiter.is_void(&after));
        assert_eq!(after.start - t0, Duration::from_secs(2));
        assert_eq!(limiter.reserve_at(t0 + ms(300)).start - t0, ms(2250));
    }

    #[test]
    fn a_shorter_pause_does_not_shorten_a_longer_one() {
        let limiter = Limiter::new(None);
        let t0 = Instant::now();
        limiter.pause_until(t0 + Duration::from_secs(3));
        limiter.pause_until(t0 + Duration::from_secs(1));
        assert_eq!(limiter.reserve_at(t0).start - t0, Duration::from_secs(3));
    }

    #[test]
    fn without_a_rate_only_pauses_hold_starts() {
        let limiter = Limiter::new(None);
        let t0 = Instant::now();
        for _ in 0..100 {
            assert_eq!(limiter.reserve_at(t0).start, t0);
        }
    }

    #[test]
    fn never_more_than_rate_starts_in_any_window() {
        // Invariant at burst 1: any window of length W holds at most
        // floor(W / interval) + 1 starts, whatever the arrival pattern.
        let limiter = Limiter::new(Rate::per_second(20.0));
        let t0 = Instant::now();
        let mut seed = 0x2545_f491_u64;
        let mut now = t0;
        let mut starts = Vec::new();
        for _ in 0..2000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            now += Duration::from_micros((seed >> 33) % 120_000);
            starts.push(limiter.reserve_at(now).start);
        }
        starts.sort();
        let window = Duration::from_secs(1);
        for (i, first) in starts.iter().enumerate() {
            let inside = starts[i..]
                .iter()
                .take_while(|s| **s - *first < window)
                .count();
            assert!(inside <= 20, "{inside} starts within one second");
        }
    }

    #[test]
    fn acquire_returns_at_once_when_stopped() {
        let limiter = Limiter::new(Rate::per_second(0.001));
        let stop = Stop::new();
        assert_eq!(limiter.acquire(&stop), Ok(()));
        stop.stop();
        assert_eq!(limiter.acquire(&stop), Err(Stopped));
    }

    #[test]
    fn next_window_is_the_next_whole_second() {
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        assert_eq!(until_next_window(at, ms(20)), ms(770));
        let on_edge = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(until_next_window(on_edge, ms(0)), ms(1000));
    }
}

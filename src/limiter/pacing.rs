//! Even pacing (GCRA) with a safety margin learned from rejections.
//!
//! A leaky-bucket gateway (nginx `limit_req` without burst) rejects a request
//! that comes even a little less than one interval after the previous one, so
//! network jitter turns exact pacing into rejections. Each rejection that the
//! gateway does not explain widens the interval a little; every accepted
//! request narrows it again, so the margin settles just above what the
//! jitter needs and is won back when rejections stop.

use super::gcra::Gcra;
use std::time::{Duration, Instant};

/// The smallest margin: 1 ms of the interval (the jitter of a first
/// connection, or of a loaded machine, is about that), at most 0.2 %.
const FLOOR_ABSOLUTE: Duration = Duration::from_millis(1);
const FLOOR_SHARE: f64 = 0.002;
/// The largest margin: 25 % slower than the allotted rate.
const MAX_MARGIN: f64 = 0.25;
/// Each unexplained rejection episode: margin x 1.25 + 0.1 %.
const GROWTH: f64 = 1.25;
const STEP: f64 = 0.001;
/// Each accepted request gives back 1/512 of the margin. Measured against
/// nginx on a loaded 2-core machine, most rejections come from the gateway
/// stalling (two requests read in one event-loop turn), which no margin
/// prevents; a margin that lingers only costs rate (scripts/pacing.sh).
const DECAY: f64 = 1.0 / 512.0;
/// Rejections closer together than this many accepted requests are one
/// episode (a gateway that stalled and then saw requests bunched up, which
/// no margin prevents), and widen the margin once.
const EPISODE: u32 = 100;

/// The first bookings of a run get a start-up allowance on their spacing:
/// a tenth of the interval, at most 5 ms.
const STARTUP_BOOKINGS: u32 = 8;
const STARTUP_SHARE: u32 = 10;
const STARTUP_ALLOWANCE: Duration = Duration::from_millis(5);

/// Even pacing: the GCRA schedule, and the learned margin on its interval.
#[derive(Debug, Clone)]
pub(super) struct EvenPacing {
    interval: Duration,
    margin: f64,
    floor: f64,
    /// The share of the allotted rate in force (AIMD).
    share: f64,
    gcra: Gcra,
    accepted_since_widened: u32,
    /// Bookings that still get the start-up allowance.
    startup_left: u32,
}

impl EvenPacing {
    /// Pacing at one start per `interval`, `burst` at once after a quiet
    /// spell. The burst tolerance is counted in whole allotted intervals
    /// (not widened ones), so any span of k intervals holds at most
    /// `k + burst - 1` starts whatever the margin does.
    pub(super) fn new(interval: Duration, burst: u32) -> EvenPacing {
        let floor = (FLOOR_ABSOLUTE.as_secs_f64() / interval.as_secs_f64()).min(FLOOR_SHARE);
        EvenPacing {
            interval,
            margin: floor,
            floor,
            share: 1.0,
            gcra: Gcra::new(interval.saturating_mul(burst.saturating_sub(1))),
            accepted_since_widened: EPISODE,
            // A burst lets requests bunch anyway.
            startup_left: if burst > 1 { 0 } else { STARTUP_BOOKINGS },
        }
    }

    /// The interval with the margin and the share in force applied.
    pub(super) fn effective_interval(&self) -> Duration {
        self.interval.mul_f64((1.0 + self.margin) / self.share)
    }

    /// The spacing of the next booking: the effective interval, plus a
    /// start-up allowance for the first few. The first requests of a run
    /// each open a connection (and the first pays one-time costs while the
    /// pool spawns its threads), so they reach the gateway later after
    /// their start than the ones that reuse a connection: without room for
    /// that, a leaky bucket sees the second or third come too soon.
    pub(super) fn next_increment(&mut self) -> Duration {
        let mut increment = self.effective_interval();
        if self.startup_left > 0 {
            self.startup_left -= 1;
            increment += (self.interval / STARTUP_SHARE).min(STARTUP_ALLOWANCE);
        }
        increment
    }

    /// Paces at `share` (0 < share <= 1) of the allotted rate.
    pub(super) fn set_share(&mut self, share: f64) {
        self.share = share.clamp(f64::MIN_POSITIVE, 1.0);
    }

    /// Moves the schedule `by` later.
    pub(super) fn delay(&mut self, by: Duration) {
        let tat = self.gcra.tat().map(|tat| tat + by);
        self.gcra.set_tat(tat);
    }

    pub(super) fn margin(&self) -> f64 {
        self.margin
    }

    /// Books the first slot at or after `earliest`; returns it, when the
    /// schedule is next free after it, and the spacing it was booked with.
    pub(super) fn book(&mut self, earliest: Instant) -> (Instant, Instant, Duration) {
        let increment = self.next_increment();
        let start = self.gcra.reserve(earliest, increment);
        let free = self
            .gcra
            .tat()
            .expect("a reservation always sets the arrival time");
        (start, free, increment)
    }

    /// After a pause: the schedule goes on from `free` (where the bookings
    /// that still stand left it; `None` if none do), and not before `until`.
    pub(super) fn restart(&mut self, free: Option<Instant>, until: Instant) {
        self.gcra
            .set_tat(Some(free.map_or(until, |free| free.max(until))));
    }

    pub(super) fn widen(&mut self) {
        if self.accepted_since_widened >= EPISODE {
            self.margin = (self.margin * GROWTH + STEP).min(MAX_MARGIN);
            self.accepted_since_widened = 0;
        }
    }

    pub(super) fn narrow(&mut self) {
        self.accepted_since_widened = self.accepted_since_widened.saturating_add(1);
        self.margin = (self.margin * (1.0 - DECAY)).max(self.floor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_widen_the_interval_and_acceptances_win_it_back() {
        let mut pacing = EvenPacing::new(Duration::from_secs(10), 1);
        assert!((pacing.margin() - 0.0001).abs() < 1e-9, "1 ms of 10 s");
        pacing.widen();
        assert!((pacing.margin() - 0.001125).abs() < 1e-9);
        pacing.widen();
        assert!(
            (pacing.margin() - 0.001125).abs() < 1e-9,
            "one episode widens once"
        );
        for _ in 0..EPISODE {
            pacing.narrow();
        }
        pacing.widen();
        let expected = 0.001125 * (1.0 - DECAY).powi(EPISODE as i32) * GROWTH + STEP;
        assert!((pacing.margin() - expected).abs() < 1e-9);
        for _ in 0..10_000 {
            pacing.narrow();
        }
        assert_eq!(pacing.margin(), 0.0001, "down to the floor");
        assert_eq!(
            EvenPacing::new(Duration::from_millis(2), 1).margin(),
            FLOOR_SHARE
        );
        for _ in 0..100 {
            pacing.accepted_since_widened = EPISODE;
            pacing.widen();
        }
        assert_eq!(pacing.margin(), MAX_MARGIN);
    }

    #[test]
    fn slots_follow_the_widened_interval() {
        let mut pacing = EvenPacing::new(Duration::from_millis(100), 1);
        pacing.startup_left = 0;
        let t0 = Instant::now();
        assert_eq!(pacing.book(t0).0, t0);
        for _ in 0..5 {
            pacing.accepted_since_widened = EPISODE;
            pacing.widen();
        }
        let (second, _, _) = pacing.book(t0);
        assert_eq!(
            second,
            t0 + Duration::from_micros(100_200),
            "the floor: 0.2 %"
        );
        let (third, _, _) = pacing.book(t0);
        assert!(third - second > Duration::from_micros(100_200));
    }
}

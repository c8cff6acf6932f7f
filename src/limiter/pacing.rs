//! Even pacing (GCRA) with a safety margin learned from rejections.
//!
//! A leaky-bucket gateway (nginx `limit_req` without burst) rejects a request
//! that comes even a little less than one interval after the previous one, so
//! network jitter turns exact pacing into rejections. Each rejection that the
//! gateway does not explain widens the interval a little; every accepted
//! request narrows it again, so the margin settles just above what the
//! jitter needs and is won back when rejections stop.

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

/// GCRA state: when the schedule is next free, and the learned margin.
#[derive(Debug, Clone)]
pub(super) struct Pacing {
    interval: Duration,
    /// Starts allowed at once beyond the first (GCRA's burst - 1).
    extra_burst: u32,
    margin: f64,
    floor: f64,
    next_free: Option<Instant>,
    accepted_since_widened: u32,
}

impl Pacing {
    pub(super) fn new(interval: Duration, burst: u32) -> Pacing {
        let floor = (FLOOR_ABSOLUTE.as_secs_f64() / interval.as_secs_f64()).min(FLOOR_SHARE);
        Pacing {
            interval,
            extra_burst: burst.saturating_sub(1),
            margin: floor,
            floor,
            next_free: None,
            accepted_since_widened: EPISODE,
        }
    }

    /// The interval with the margin applied.
    pub(super) fn effective_interval(&self) -> Duration {
        self.interval.mul_f64(1.0 + self.margin)
    }

    pub(super) fn margin(&self) -> f64 {
        self.margin
    }

    /// Books the first slot at or after `earliest`.
    pub(super) fn book(&mut self, earliest: Instant) -> Instant {
        let tolerance = self.effective_interval() * self.extra_burst;
        let start = match self.next_free {
            Some(free) => earliest.max(free.checked_sub(tolerance).unwrap_or(free)),
            None => earliest,
        };
        let base = self.next_free.map_or(start, |free| free.max(start));
        self.next_free = Some(base + self.effective_interval());
        start
    }

    /// Restarts the schedule at `at` (after a pause).
    pub(super) fn restart_at(&mut self, at: Instant) {
        self.next_free = Some(at);
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
        let mut pacing = Pacing::new(Duration::from_secs(10), 1);
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
            Pacing::new(Duration::from_millis(2), 1).margin(),
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
        let mut pacing = Pacing::new(Duration::from_millis(100), 1);
        let t0 = Instant::now();
        assert_eq!(pacing.book(t0), t0);
        for _ in 0..5 {
            pacing.accepted_since_widened = EPISODE;
            pacing.widen();
        }
        let second = pacing.book(t0);
        assert_eq!(
            second,
            t0 + Duration::from_micros(100_200),
            "the floor: 0.2 %"
        );
        let third = pacing.book(t0);
        assert!(third - second > Duration::from_micros(100_200));
    }
}

//! Even pacing (GCRA) with a safety margin learned from rejections.
//!
//! A leaky-bucket gateway (nginx `limit_req` without burst) rejects a request
//! that comes even a little less than one interval after the previous one, so
//! network jitter turns exact pacing into rejections. Each rejection that the
//! gateway does not explain widens the interval a little; every accepted
//! request narrows it again, so the margin settles just above what the
//! jitter needs and is won back when rejections stop.

use std::time::{Duration, Instant};

/// The largest margin: 25 % slower than the allotted rate.
const MAX_MARGIN: f64 = 0.25;
/// Each unexplained rejection: margin x 1.5 + 0.2 %.
const GROWTH: f64 = 1.5;
const STEP: f64 = 0.002;
/// Each accepted request gives back 1/1024 of the margin: after a rejection
/// it takes about a thousand clean requests to return most of it, so
/// rejections stay well under one in a thousand.
const DECAY: f64 = 1.0 / 1024.0;
/// Rejections closer together than this many accepted requests are one
/// episode (a gateway that stalled and then saw requests bunched up, which
/// no margin prevents), and widen the margin once.
const EPISODE: u32 = 100;

/// GCRA state: when the schedule is next free, and the learned margin.
#[derive(Debug, Clone)]
pub(super) struct Pacing {
    interval: Duration,
    tolerance: Duration,
    margin: f64,
    next_free: Option<Instant>,
    accepted_since_widened: u32,
}

impl Pacing {
    pub(super) fn new(interval: Duration, burst: u32) -> Pacing {
        Pacing {
            interval,
            tolerance: interval * burst.saturating_sub(1),
            margin: 0.0,
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
        let start = match self.next_free {
            Some(free) => earliest.max(free.checked_sub(self.tolerance).unwrap_or(free)),
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
        self.margin *= 1.0 - DECAY;
        if self.margin < 1e-5 {
            self.margin = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_widen_the_interval_and_acceptances_win_it_back() {
        let mut pacing = Pacing::new(Duration::from_millis(100), 1);
        pacing.widen();
        assert!((pacing.margin() - 0.002).abs() < 1e-9);
        pacing.widen();
        assert!(
            (pacing.margin() - 0.002).abs() < 1e-9,
            "one episode widens once"
        );
        for _ in 0..EPISODE {
            pacing.narrow();
        }
        pacing.widen();
        let expected = 0.002 * (1.0 - DECAY).powi(EPISODE as i32) * GROWTH + STEP;
        assert!((pacing.margin() - expected).abs() < 1e-9);
        for _ in 0..10_000 {
            pacing.narrow();
        }
        assert_eq!(pacing.margin(), 0.0);
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
        assert_eq!(second, t0 + Duration::from_millis(100));
        let third = pacing.book(t0);
        assert!(third - second > Duration::from_millis(100));
    }
}

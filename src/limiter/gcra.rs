//! The slot-reservation core: GCRA's one "theoretical arrival time" (TAT).
//!
//! A start may be booked at `TAT - tolerance` at the earliest; each booking
//! moves the TAT on by one increment. This is all the state a shared
//! schedule needs to hold (one value per key, e.g. in Redis under an atomic
//! script), so it stays a small piece on its own that another store can
//! replace.

use super::clock::later;
use std::time::{Duration, Instant};

/// GCRA state: the theoretical arrival time and the burst tolerance.
#[derive(Debug, Clone)]
pub(super) struct Gcra {
    /// How far ahead of the TAT a start may come: `(burst - 1)` intervals.
    tolerance: Duration,
    tat: Option<Instant>,
}

impl Gcra {
    pub(super) fn new(tolerance: Duration) -> Gcra {
        Gcra {
            tolerance,
            tat: None,
        }
    }

    /// Books the first start at or after `earliest`; the schedule then moves
    /// on by `increment` (the interval, with any safety margin).
    pub(super) fn reserve(&mut self, earliest: Instant, increment: Duration) -> Instant {
        let start = match self.tat {
            Some(tat) => earliest.max(tat.checked_sub(self.tolerance).unwrap_or(tat)),
            None => earliest,
        };
        let base = self.tat.map_or(start, |tat| tat.max(start));
        self.tat = Some(later(base, increment));
        start
    }

    /// The theoretical arrival time: when the schedule is next free.
    pub(super) fn tat(&self) -> Option<Instant> {
        self.tat
    }

    /// Sets the TAT (after a pause voided the bookings made after it).
    pub(super) fn set_tat(&mut self, tat: Option<Instant>) {
        self.tat = tat;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_per_increment() {
        let t0 = Instant::now();
        let interval = Duration::from_millis(100);
        let mut gcra = Gcra::new(interval * 2);
        let starts: Vec<Duration> = (0..5).map(|_| gcra.reserve(t0, interval) - t0).collect();
        let ms = Duration::from_millis;
        assert_eq!(starts, vec![ms(0), ms(0), ms(0), ms(100), ms(200)]);
        assert_eq!(gcra.tat(), Some(t0 + ms(500)));
    }

    #[test]
    fn idle_time_banks_no_more_than_the_burst() {
        let t0 = Instant::now();
        let interval = Duration::from_millis(100);
        let mut gcra = Gcra::new(Duration::ZERO);
        gcra.reserve(t0, interval);
        let later = t0 + Duration::from_secs(10);
        assert_eq!(gcra.reserve(later, interval), later);
        assert_eq!(gcra.reserve(later, interval), later + interval);
    }
}

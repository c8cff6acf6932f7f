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
/// The largest margin: 25 % slower than the allotted rate, and at most
/// 1 ms of the interval. Jitter on the way to the gateway is well under a
/// millisecond here even under load; rejections that a wider margin does
/// not prevent (stalls) must not cost more of the rate than that.
const MAX_MARGIN: f64 = 0.25;
const MAX_ABSOLUTE: Duration = Duration::from_millis(1);
/// Each unexplained rejection round: margin x 1.5 + 0.1 %. From the floor,
/// three rounds reach 1 %, six reach 4 %: the jitter of a loaded machine.
const GROWTH: f64 = 1.5;
const STEP: f64 = 0.001;
/// Each accepted request gives back 1/400 of the margin. A margin that
/// grows by `ln GROWTH` per rejection round and shrinks by `DECAY` per
/// acceptance settles where rejection rounds are `DECAY / ln GROWTH` of
/// the replies: about one in 160, so the margin stays just wide enough
/// for the jitter that the machine and the gateway show. Rejections that
/// no margin prevents (a stalled machine or gateway delaying one request,
/// so the next on-time one lands too close behind it) come rarer than that
/// on this machine, and so do not drive the margin up without end.
const DECAY: f64 = 1.0 / 400.0;
/// On a schedule shared with other processes, half that: one rejection
/// round in about 320 replies. A 429 there costs more than its own job:
/// the next in a row pauses every process on the key (the pause goes to
/// the shared schedule), and the other processes' slots are spaced by
/// this one's margin too. There every process widens for every round on
/// the schedule (see [`EvenPacing::widen_heard`]) but narrows only for its
/// own acceptances, so this is per acceptance of all the holders: each
/// narrows by it times their number.
const SHARED_DECAY: f64 = DECAY / 2.0;
/// The most one acceptance gives back, however many holders share.
const MAX_DECAY: f64 = 0.05;

/// The first bookings of a run get a start-up allowance on their spacing:
/// a tenth of the interval, at most 5 ms.
const STARTUP_BOOKINGS: u32 = 8;
const STARTUP_SHARE: u32 = 10;
const STARTUP_ALLOWANCE: Duration = Duration::from_millis(5);

/// The start-up allowance on a spacing of `interval`.
pub(super) fn startup_allowance(interval: Duration) -> Duration {
    (interval / STARTUP_SHARE).min(STARTUP_ALLOWANCE)
}

/// The smallest and the largest margin on `interval`.
fn margin_bounds(interval: Duration) -> (f64, f64) {
    let floor = (FLOOR_ABSOLUTE.as_secs_f64() / interval.as_secs_f64()).min(FLOOR_SHARE);
    let ceiling = (MAX_ABSOLUTE.as_secs_f64() / interval.as_secs_f64()).clamp(floor, MAX_MARGIN);
    (floor, ceiling)
}

/// Even pacing: the GCRA schedule, and the learned margin on its interval.
#[derive(Debug, Clone)]
pub(super) struct EvenPacing {
    interval: Duration,
    margin: f64,
    floor: f64,
    ceiling: f64,
    /// The share of the allotted rate in force (AIMD).
    share: f64,
    gcra: Gcra,
    /// When the margin last widened: a rejected request that started
    /// before then was spaced by the narrower margin, and is the same
    /// round of rejections.
    widened_at: Option<Instant>,
    /// Bookings that still get the start-up allowance.
    startup_left: u32,
    /// The share of the margin each accepted request gives back.
    decay: f64,
}

impl EvenPacing {
    /// Pacing at one start per `interval`, `burst` at once after a quiet
    /// spell. The burst tolerance is counted in whole allotted intervals
    /// (not widened ones), so any span of k intervals holds at most
    /// `k + burst - 1` starts whatever the margin does.
    pub(super) fn new(interval: Duration, burst: u32) -> EvenPacing {
        let (floor, ceiling) = margin_bounds(interval);
        EvenPacing {
            interval,
            margin: floor,
            floor,
            ceiling,
            share: 1.0,
            gcra: Gcra::new(interval.saturating_mul(burst.saturating_sub(1))),
            widened_at: None,
            // A burst lets requests bunch anyway.
            startup_left: if burst > 1 { 0 } else { STARTUP_BOOKINGS },
            decay: DECAY,
        }
    }

    /// Paces at one start per `interval` at most (the allotted interval
    /// if longer): a gateway's window that allows fewer a second than the
    /// allotted rate. Returns whether it slowed.
    pub(super) fn slow_to(&mut self, interval: Duration) -> bool {
        if interval <= self.interval {
            return false;
        }
        self.interval = interval;
        (self.floor, self.ceiling) = margin_bounds(interval);
        self.margin = self.margin.clamp(self.floor, self.ceiling);
        true
    }

    /// The schedule is shared with other processes on the key: the margin
    /// aims at half as many rejection rounds (see `SHARED_DECAY`), and the
    /// first bookings get no start-up allowance. There every process paid
    /// it for its own first eight, on everyone's schedule; a request that
    /// opened a connection is told late by all its delay anyway
    /// (`departure.rs`), and a start after a slot not yet heard keeps an
    /// allowance of its own (`wait.rs`). Measured on nginx: 8 processes
    /// at 20/s, six pairs, 99.4 % of the allotment on average against 98.8
    /// %, 2 429s in all against 5; at 100/s and with 2 or 4 processes, the
    /// same within the spread (docs/measurements.md).
    pub(super) fn share_schedule(&mut self) {
        self.decay = SHARED_DECAY;
        self.startup_left = 0;
    }

    /// Joining a shared schedule whose holders pace with `margin`: start
    /// from it (within our floor and ceiling) if it is wider than ours.
    pub(super) fn start_from(&mut self, margin: f64) {
        if margin.is_finite() {
            self.margin = margin.clamp(self.floor, self.ceiling).max(self.margin);
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
            increment += startup_allowance(self.interval);
        }
        increment
    }

    /// Paces at `share` (0 < share <= 1) of the allotted rate. A cut means
    /// the rejections were too high a rate, not jitter: the margin they
    /// widened goes back to the floor.
    pub(super) fn set_share(&mut self, share: f64) {
        let share = share.clamp(f64::MIN_POSITIVE, 1.0);
        if share < self.share {
            self.margin = self.floor;
        }
        self.share = share;
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

    /// A request that started at `started` was rejected for its spacing
    /// (seen at `now`): widen the margin, once per round of rejections.
    /// Returns whether this was a new round.
    pub(super) fn widen(&mut self, started: Instant, now: Instant) -> bool {
        if self.widened_at.is_some_and(|widened| started <= widened) {
            return false;
        }
        self.grow();
        self.round_until(now);
        true
    }

    fn grow(&mut self) {
        self.margin = (self.margin * GROWTH + STEP).min(self.ceiling);
    }

    /// Requests that start up to `now` belong to the round of rejections
    /// just counted.
    fn round_until(&mut self, now: Instant) {
        self.widened_at = Some(self.widened_at.map_or(now, |at| at.max(now)));
    }

    /// Another holder of a shared schedule had a round of rejections: the
    /// jitter that drew it spaces our starts too, so widen as for our own.
    /// Our requests that start up to `now` were spaced by the narrower
    /// margin, and are the same round. Below the full share (AIMD) the
    /// rejections are the rate's, not jitter's: the margin stays, as for
    /// our own.
    pub(super) fn widen_heard(&mut self, now: Instant) {
        if self.share >= 1.0 {
            self.grow();
        }
        self.round_until(now);
    }

    /// An accepted request; `holders` processes share the schedule (1 when
    /// it is not shared), see [`SHARED_DECAY`].
    pub(super) fn narrow(&mut self, holders: u32) {
        let decay = (self.decay * f64::from(holders.max(1))).min(MAX_DECAY);
        self.margin = (self.margin * (1.0 - decay)).max(self.floor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_round_of_rejections_widens_once_and_acceptances_win_it_back() {
        let t0 = Instant::now();
        let mut pacing = EvenPacing::new(ms(10), 1);
        assert_eq!(pacing.margin(), FLOOR_SHARE);
        pacing.widen(t0, t0 + ms(100));
        let once = FLOOR_SHARE * GROWTH + STEP;
        assert!((pacing.margin() - once).abs() < 1e-12);
        pacing.widen(t0 + ms(50), t0 + ms(150));
        assert!(
            (pacing.margin() - once).abs() < 1e-12,
            "started before the widening: the same round"
        );
        pacing.widen(t0 + ms(101), t0 + ms(200));
        let twice = once * GROWTH + STEP;
        assert!((pacing.margin() - twice).abs() < 1e-12, "a new round");
        for _ in 0..100 {
            pacing.narrow(1);
        }
        let expected = twice * (1.0 - DECAY).powi(100);
        assert!((pacing.margin() - expected).abs() < 1e-12);
        for _ in 0..100_000 {
            pacing.narrow(1);
        }
        assert_eq!(pacing.margin(), FLOOR_SHARE, "down to the floor");
        assert!(
            (EvenPacing::new(ms(10_000), 1).margin() - 0.0001).abs() < 1e-12,
            "1 ms of 10 s"
        );
    }

    #[test]
    fn the_margin_is_at_most_a_quarter_and_at_most_a_millisecond() {
        let t0 = Instant::now();
        let widened = |interval: Duration| {
            let mut pacing = EvenPacing::new(interval, 1);
            for i in 0..100 {
                pacing.widen(t0 + ms(1000 * i), t0 + ms(1000 * i + 1));
            }
            pacing.margin()
        };
        assert!((widened(ms(10)) - 0.1).abs() < 1e-9, "1 ms of 10 ms");
        assert!((widened(ms(250)) - 0.004).abs() < 1e-9, "1 ms of 250 ms");
        assert_eq!(widened(ms(2)), MAX_MARGIN, "a quarter of 2 ms");
        assert!(
            (widened(ms(10_000)) - 0.0001).abs() < 1e-12,
            "the floor is the ceiling"
        );
    }

    /// The margin after 20,000 replies of which one in `every` is a
    /// rejection round.
    fn settle(mut pacing: EvenPacing, every: u32) -> f64 {
        let t0 = Instant::now();
        for i in 0..20_000u32 {
            let at = t0 + ms(50) * i;
            if i % every == 0 {
                pacing.widen(at, at + ms(50));
            } else {
                pacing.narrow(1);
            }
        }
        pacing.margin()
    }

    /// At a steady rejection rate `p` per reply, the margin grows while
    /// `p` is above `DECAY / ln GROWTH` and shrinks below it.
    #[test]
    fn the_margin_settles_where_rejections_are_rare() {
        let pacing = || EvenPacing::new(ms(5), 1);
        assert_eq!(settle(pacing(), 500), FLOOR_SHARE, "one in 500: the floor");
        assert!(settle(pacing(), 60) > 0.05, "one in 60 keeps widening");
    }

    #[test]
    fn on_a_shared_schedule_the_margin_settles_at_half_the_rejections() {
        let shared = || {
            let mut pacing = EvenPacing::new(ms(5), 1);
            pacing.share_schedule();
            pacing
        };
        // One in 250: rarer than one in 160, more often than one in 320.
        let own = settle(EvenPacing::new(ms(5), 1), 250);
        assert!(own < 0.003, "one in 250 holds its own margin: {own}");
        assert!(settle(shared(), 250) > 0.05, "one in 250 keeps widening");
        assert_eq!(
            settle(shared(), 1000),
            FLOOR_SHARE,
            "one in 1000: the floor"
        );
    }

    #[test]
    fn a_cut_of_the_share_puts_the_margin_back_to_the_floor() {
        let t0 = Instant::now();
        let mut pacing = EvenPacing::new(ms(50), 1);
        pacing.widen(t0, t0);
        let widened = pacing.margin();
        pacing.set_share(1.0);
        assert_eq!(pacing.margin(), widened, "no cut, no change");
        pacing.set_share(0.8);
        assert_eq!(pacing.margin(), FLOOR_SHARE);
        pacing.widen(t0 + ms(1), t0 + ms(1));
        pacing.set_share(0.9);
        assert!(pacing.margin() > FLOOR_SHARE, "a raise keeps the margin");
    }

    #[test]
    fn a_round_heard_below_the_full_share_leaves_the_margin() {
        let t0 = Instant::now();
        let mut pacing = EvenPacing::new(ms(10), 1);
        pacing.set_share(0.8);
        pacing.widen_heard(t0);
        assert_eq!(
            pacing.margin(),
            FLOOR_SHARE,
            "the rate's 429s, not jitter's"
        );
        assert!(!pacing.widen(t0, t0 + ms(1)), "still that round");
        pacing.set_share(1.0);
        pacing.widen_heard(t0 + ms(2));
        assert!(pacing.margin() > FLOOR_SHARE);
    }

    #[test]
    fn slots_follow_the_widened_interval() {
        let mut pacing = EvenPacing::new(ms(100), 1);
        pacing.startup_left = 0;
        let t0 = Instant::now();
        assert_eq!(pacing.book(t0).0, t0);
        let (second, _, _) = pacing.book(t0);
        assert_eq!(
            second,
            t0 + Duration::from_micros(100_200),
            "the floor: 0.2 %"
        );
        pacing.widen(t0, t0);
        // The third was booked when the second was: the widened spacing
        // counts from the fourth.
        let (third, _, _) = pacing.book(t0);
        let (fourth, _, _) = pacing.book(t0);
        assert_eq!(third - second, Duration::from_micros(100_200));
        let widened = 100_000.0 * (1.0 + FLOOR_SHARE * GROWTH + STEP);
        assert_eq!(
            fourth - third,
            Duration::from_micros(widened.round() as u64)
        );
    }
}

//! The share of the allotted rate in force: cut multiplicatively when 429s
//! persist at the paced rate, raised additively while requests pass (AIMD,
//! as TCP does). Persisting 429s mean the allotment is smaller than `--rps`
//! or shared with other clients on the key; uncoordinated clients that all
//! follow this rule share the key instead of collapsing (fairly only where
//! the 429s reach them all: a leaky bucket rejects whoever comes second in
//! an interval, and the other never hears of it).
//!
//! What makes a cut:
//! - 429s in a row by start (nothing started after the first of them was
//!   accepted), at least three over at least a tenth of a second: the rate
//!   is far above what the key has left, and the cut is TCP's, to half;
//!   not again while nothing got through since the last cut (a leaky
//!   bucket's loser, whose 429s no rate of its own ends);
//! - a fifth of the recent replies rejected: a cut by a fifth;
//! - once cut, two 429s in a row after a second of successes: the key is
//!   shared and the clients on it just went over together (a gateway
//!   counting over a window rejects nothing below its limit and everything
//!   above it), a cut by a fifth. A lone 429 among successes is not: a
//!   leaky bucket rejects uncoordinated clients' requests that land too
//!   close together whatever their rates, and cutting on each starves them.
//!
//! Lone 429s at the full share (a gateway stalling, network jitter) are not
//! persistence. One cut per round: replies to requests that started before
//! the last cut, or while it settled (half a second after it, while a
//! gateway that counts over a window still holds the excess), do not count.
//!
//! The climb back borrows from TCP CUBIC: fast far below the share at which
//! the last cut came, slow near it (where the 429s were), and whatever the
//! share, faster and faster the longer since the cut: the others on the key
//! may have gone, and the whole allotment should come back in seconds.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A cut keeps this share of the rate. Not less, even when nearly every
/// reply is a 429: a client that loses the race for a leaky bucket's slots
/// to another sees that whatever its rate, and must be ready to take the
/// whole allotment back the moment the other has gone.
const DECREASE: f64 = 0.8;
/// The share is never cut below this.
const MIN_SHARE: f64 = 0.05;
/// Each second at the rate in force raises the share by this much of the
/// allotment, times a factor: up to four times this just after a cut (far
/// below the share of the last cut), a quarter of it near that share...
const INCREASE_PER_SECOND: f64 = 0.02;
const FASTEST_APPROACH: f64 = 4.0;
const SLOWEST_APPROACH: f64 = 0.25;
/// ...and, whatever the share, at least a quarter of it doubled for every
/// this many seconds since the last cut, at most `MAX_SPEEDUP` times: once
/// the other clients on the key have gone, half the allotment comes back
/// in about 6 s.
const SPEEDUP_EVERY_SECONDS: f64 = 1.0;
const MAX_SPEEDUP: f64 = 64.0;
/// Rejections among the recent replies that make a persistence: at least
/// this many, and at least this share of them.
const MIN_REJECTIONS: usize = 5;
const MIN_REJECTED_SHARE: f64 = 0.2;
/// The fewest recent replies looked at.
const MIN_WINDOW: usize = 50;
/// Rejections in a row (by start: nothing that started after the first
/// of them was accepted), over starts at least this far apart, that make
/// a persistence whatever their share. A stall (of the machine, or of a
/// gateway that keeps its clock by its event loop) bunches a few requests
/// that it then rejects in a row, within milliseconds.
const STREAK: u32 = 3;
const STREAK_SPAN: Duration = Duration::from_millis(100);
/// Nothing accepted in a row of rejections: the rate is far above what the
/// key has left, so the cut is TCP's, to half.
const STREAK_DECREASE: f64 = 0.5;
/// Once a cut has shown that the key is shared, any 429 is a rate's: the
/// next cut needs no persistence, only a request started this long after
/// the last cut (a gateway that counts over a one-second window still
/// holds the excess that drew the last one for a while).
const SETTLE: Duration = Duration::from_millis(500);

/// AIMD state; see the module docs.
#[derive(Debug, Clone)]
pub(super) struct Aimd {
    /// The allotted starts per second.
    allotted: f64,
    share: f64,
    /// Replies to requests started since the last cut: `true` = rejected.
    recent: VecDeque<bool>,
    /// Requests that started before this moment were paced at an older rate.
    round_began: Option<Instant>,
    /// The share in force when the last cut came.
    last_max: f64,
    /// Rejections in a row this round, and the start of the first of them.
    streak: u32,
    streak_from: Option<Instant>,
    /// Replies accepted this round since the last rejection.
    clean: u32,
    /// Whether the current row of rejections came after a second of
    /// successes.
    row_after_clean: bool,
}

impl Aimd {
    pub(super) fn new(allotted_per_second: f64) -> Aimd {
        Aimd {
            allotted: allotted_per_second,
            share: 1.0,
            recent: VecDeque::new(),
            round_began: None,
            last_max: 1.0,
            streak: 0,
            streak_from: None,
            clean: 0,
            row_after_clean: false,
        }
    }

    /// The share of the allotted rate in force (1.0 = all of it).
    pub(super) fn share(&self) -> f64 {
        self.share
    }

    /// Replies remembered: about two seconds' worth.
    fn window(&self) -> usize {
        ((2.0 * self.allotted).ceil() as usize).max(MIN_WINDOW)
    }

    fn remember(&mut self, rejected: bool) {
        self.recent.push_back(rejected);
        while self.recent.len() > self.window() {
            self.recent.pop_front();
        }
    }

    /// A request that started at `started` passed.
    pub(super) fn accepted(&mut self, started: Instant) {
        if self.round_began.is_some_and(|began| started < began) {
            return;
        }
        self.remember(false);
        self.clean += 1;
        if self.streak_from.is_none_or(|from| started >= from) {
            self.streak = 0;
            self.streak_from = None;
        }
        if self.share < 1.0 {
            // One step per second at the rate in force.
            let per_reply =
                INCREASE_PER_SECOND * self.pace(started) / (self.allotted * self.share).max(1.0);
            self.share = (self.share + per_reply).min(1.0);
        }
    }

    /// How fast the share climbs now, in steps per second: see the module
    /// docs. The speed-up since the last cut also ends a plateau at a share
    /// that meant nothing (a client that lost the race for a leaky bucket's
    /// slots is cut for it, whatever its rate).
    fn pace(&self, now: Instant) -> f64 {
        let shaped = if self.share < self.last_max {
            let below = (self.last_max - self.share) / (self.last_max * (1.0 - DECREASE));
            (SLOWEST_APPROACH + (FASTEST_APPROACH - SLOWEST_APPROACH) * below).min(FASTEST_APPROACH)
        } else {
            SLOWEST_APPROACH
        };
        let since_cut = self
            .round_began
            .map_or(0.0, |cut| now.saturating_duration_since(cut).as_secs_f64());
        let speedup = (since_cut / SPEEDUP_EVERY_SECONDS).exp2().min(MAX_SPEEDUP);
        shaped.max(SLOWEST_APPROACH * speedup)
    }

    /// A request that started at `started` was rejected, as seen at `now`.
    /// Returns whether this cut the rate.
    pub(super) fn rejected(&mut self, started: Instant, now: Instant) -> bool {
        if self.round_began.is_some_and(|began| started < began) {
            return false;
        }
        self.remember(true);
        self.streak += 1;
        let from = self.streak_from.map_or(started, |from| from.min(started));
        self.streak_from = Some(from);
        let long_row =
            self.streak >= STREAK && started.saturating_duration_since(from) >= STREAK_SPAN;
        let rejections = self.recent.iter().filter(|r| **r).count();
        // A halving that let nothing through (a leaky bucket's loser,
        // whatever its rate) is not repeated: the share stays for the climb
        // back, cut only as 429s persist.
        let helped = self.round_began.is_none() || self.recent.contains(&false);
        // Two 429s in a row after a second of successes: the clients on
        // the key just went over together. Not a lone 429 among successes:
        // a leaky bucket rejects uncoordinated clients' requests that land
        // too close together, whatever their rate, and cutting on each
        // would starve them.
        if self.streak == 1 {
            self.row_after_clean = f64::from(self.clean) >= self.allotted * self.share;
        }
        let over_together = self.row_after_clean && self.streak >= 2;
        self.clean = 0;
        let decrease = if long_row && helped {
            STREAK_DECREASE
        } else if self.share < 1.0 && over_together
            || rejections >= MIN_REJECTIONS
                && rejections as f64 >= MIN_REJECTED_SHARE * self.window() as f64
        {
            DECREASE
        } else {
            return false;
        };
        self.last_max = self.share;
        self.share = (self.share * decrease).max(MIN_SHARE);
        self.recent.clear();
        self.streak = 0;
        self.streak_from = None;
        self.clean = 0;
        self.round_began = Some(now + SETTLE);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_rejections_do_not_cut() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        for i in 0..1000u32 {
            let at = t0 + Duration::from_millis(50) * i;
            if i % 100 == 0 {
                assert!(!aimd.rejected(at, at));
            } else {
                aimd.accepted(at);
            }
        }
        assert_eq!(aimd.share(), 1.0);
    }

    /// Replies at 20/s from `from`: every `every`th rejected, the rest
    /// accepted, until a cut (returns its reply's start) or `replies` ran out.
    fn replies(aimd: &mut Aimd, from: Instant, every: u32, replies: u32) -> Option<Instant> {
        (1..=replies).find_map(|i| {
            let at = from + Duration::from_millis(50) * i;
            if i % every == 0 {
                aimd.rejected(at, at).then_some(at)
            } else {
                aimd.accepted(at);
                None
            }
        })
    }

    #[test]
    fn scattered_rejections_cut_by_a_fifth_once_they_are_a_fifth_of_the_replies() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        let cut = replies(&mut aimd, t0, 5, 100).expect("a cut");
        assert_eq!(
            cut,
            t0 + Duration::from_millis(50) * 50,
            "the tenth of fifty"
        );
        assert!((aimd.share() - DECREASE).abs() < 1e-9);
        let in_flight = cut + SETTLE / 2;
        assert!(
            !aimd.rejected(in_flight, in_flight),
            "sent before it settled"
        );
        assert!((aimd.share() - DECREASE).abs() < 1e-9);
        for i in 0..10_000u32 {
            aimd.accepted(cut + SETTLE + Duration::from_millis(50) * i);
        }
        assert_eq!(aimd.share(), 1.0);
    }

    #[test]
    fn three_rejections_in_a_row_by_start_halve_the_share() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        let ms = Duration::from_millis;
        aimd.accepted(t0);
        assert!(!aimd.rejected(t0 + ms(50), t0 + ms(50)));
        assert!(!aimd.rejected(t0 + ms(100), t0 + ms(100)));
        // A 429 comes back at once, a success after the latency: this
        // one started before the row, and does not break it.
        aimd.accepted(t0 + ms(40));
        assert!(aimd.rejected(t0 + ms(150), t0 + ms(150)));
        assert!((aimd.share() - STREAK_DECREASE).abs() < 1e-9);
    }

    #[test]
    fn a_row_bunched_within_milliseconds_is_a_stall_not_a_rate() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(500.0);
        for i in 0..6u32 {
            let at = t0 + Duration::from_millis(2) * i;
            assert!(!aimd.rejected(at, at));
        }
        assert_eq!(aimd.share(), 1.0);
    }

    #[test]
    fn a_success_started_within_the_row_breaks_it() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        let ms = Duration::from_millis;
        // Six 429s of nine replies: too few for a fifth of fifty.
        for i in 0..3u32 {
            let at = t0 + ms(50) * (3 * i);
            assert!(!aimd.rejected(at, at));
            assert!(!aimd.rejected(at + ms(50), at + ms(50)));
            aimd.accepted(at + ms(25));
        }
        assert_eq!(aimd.share(), 1.0);
    }

    #[test]
    fn once_cut_two_rejections_in_a_row_after_a_second_of_successes_cut_again() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut aimd = Aimd::new(20.0);
        let cut = replies(&mut aimd, t0, 1, 3).expect("halved");
        let settling = cut + SETTLE - ms(1);
        assert!(!aimd.rejected(settling, settling), "sent while it settled");
        // Half a second of successes at half the rate: not yet a second.
        let mut at = cut + SETTLE;
        for _ in 0..5 {
            aimd.accepted(at);
            at += ms(100);
        }
        assert!(!aimd.rejected(at, at));
        assert!(
            !aimd.rejected(at + ms(100), at + ms(100)),
            "no second of successes before"
        );
        at += ms(200);
        while f64::from(aimd.clean) < 20.0 * aimd.share() {
            aimd.accepted(at);
            at += ms(100);
        }
        let share = aimd.share();
        assert!(
            !aimd.rejected(at, at),
            "a lone 429 among successes is a collision"
        );
        assert!(
            aimd.rejected(at + ms(100), at + ms(100)),
            "two: the clients went over"
        );
        assert!((aimd.share() - share * DECREASE).abs() < 1e-9);
    }

    #[test]
    fn a_halving_that_let_nothing_through_is_not_repeated() {
        // The loser of a leaky bucket: whatever its rate, the other client
        // takes every slot. Halving on would only slow its climb once the
        // other has gone; the 429s that persist still cut by a fifth.
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        let cut = replies(&mut aimd, t0, 1, 3).expect("halved");
        assert!(replies(&mut aimd, cut + SETTLE, 1, 9).is_none());
        assert!(replies(&mut aimd, cut + SETTLE + Duration::from_millis(450), 1, 1).is_some());
        assert!((aimd.share() - STREAK_DECREASE * DECREASE).abs() < 1e-9);
    }

    /// Replies to requests paced at the share in force for `seconds` from
    /// `from`, none rejected; the share gained.
    fn climb(aimd: &mut Aimd, from: Instant, seconds: f64) -> f64 {
        let before = aimd.share();
        let mut at = from;
        while at < from + Duration::from_secs_f64(seconds) {
            aimd.accepted(at);
            at += Duration::from_secs_f64(1.0 / (20.0 * aimd.share()));
        }
        aimd.share() - before
    }

    #[test]
    fn the_share_climbs_fast_after_a_cut_and_faster_the_longer_since() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        for _ in 0..100 {
            aimd.accepted(t0);
        }
        // Two clients on the key: a cut at half the allotment.
        aimd.share = 0.5;
        while !aimd.rejected(t0, t0) {}
        assert!((aimd.share() - 0.4).abs() < 1e-9);
        // Replies to requests sent while it settled do not count.
        let settled = t0 + SETTLE;
        let first = climb(&mut aimd, settled, 1.0);
        assert!(
            first > 0.05 && first < 0.08,
            "up to four base steps: {first}"
        );
        // The other client has gone: nothing rejected from now on.
        climb(&mut aimd, settled + Duration::from_secs(1), 7.0);
        assert!(aimd.share() > 0.9, "8 s after it settled: {}", aimd.share());
    }

    #[test]
    fn the_share_has_a_floor() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(4.0);
        // Halved once, then a fifth off for every round of 429s.
        for i in 0..30_000u32 {
            let at = t0 + Duration::from_millis(u64::from(i));
            aimd.rejected(at, at);
        }
        assert_eq!(aimd.share(), MIN_SHARE);
    }
}

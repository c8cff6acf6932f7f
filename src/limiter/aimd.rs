//! The share of the allotted rate in force: cut multiplicatively when 429s
//! persist at the paced rate, raised additively while requests pass (AIMD,
//! as TCP does). Persisting 429s mean the allotment is smaller than `--rps`
//! or shared with other clients on the key; uncoordinated clients that all
//! follow this rule share the key instead of collapsing (fairly only where
//! the 429s reach them all: a leaky bucket rejects whoever comes second in
//! an interval, and the other never hears of it).
//!
//! Lone 429s (a gateway stalling, network jitter) are not persistence: a cut
//! needs several rejections among the recent replies, and one cut per round
//! (replies to requests that started before the last cut do not count).
//!
//! The climb back borrows from TCP CUBIC: fast far below the share at which
//! the last cut came, slow near it (where the 429s were), and whatever the
//! share, faster and faster the longer since the cut: the others on the key
//! may have gone, and the whole allotment should come back in seconds.

use std::collections::VecDeque;
use std::time::Instant;

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
/// this many, and at least this share of the replies the window holds at
/// the *allotted* rate (20 % of two seconds of the allotment: 40 at
/// 100/s), not of the client's own replies. On a leaky bucket without
/// burst, the share of a client's requests rejected is about the share of
/// the allotment the *others* hold, whatever the total: a rule on the
/// client's own share of 429s cuts every client on the key until the
/// others hold less than that share, far below the allotment. Tried with
/// 4 processes at 100/s on the mock's leaky bucket: 36-56 % of the
/// allotment together, against 85-91 % with this rule.
const MIN_REJECTIONS: usize = 5;
const MIN_REJECTED_SHARE: f64 = 0.2;
/// The fewest recent replies looked at.
const MIN_WINDOW: usize = 50;

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
    /// Cuts so far.
    cuts: u32,
}

impl Aimd {
    pub(super) fn new(allotted_per_second: f64) -> Aimd {
        Aimd {
            allotted: allotted_per_second,
            share: 1.0,
            recent: VecDeque::new(),
            round_began: None,
            last_max: 1.0,
            cuts: 0,
        }
    }

    /// The share of the allotted rate in force (1.0 = all of it).
    pub(super) fn share(&self) -> f64 {
        self.share
    }

    /// How many times persisting 429s cut the share.
    pub(super) fn cuts(&self) -> u32 {
        self.cuts
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
        let rejections = self.recent.iter().filter(|r| **r).count();
        let persistent = rejections >= MIN_REJECTIONS
            && rejections as f64 >= MIN_REJECTED_SHARE * self.window() as f64;
        if !persistent {
            return false;
        }
        self.last_max = self.share;
        self.share = (self.share * DECREASE).max(MIN_SHARE);
        self.cuts += 1;
        self.recent.clear();
        self.round_began = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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

    #[test]
    fn persisting_rejections_cut_once_per_round_then_the_share_climbs_back() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        let later = t0 + Duration::from_millis(1);
        for _ in 0..40 {
            aimd.accepted(t0);
        }
        for _ in 0..9 {
            assert!(!aimd.rejected(t0, later));
        }
        assert!(aimd.rejected(t0, later), "a fifth of the last fifty");
        assert!((aimd.share() - DECREASE).abs() < 1e-9);
        for _ in 0..5 {
            assert!(!aimd.rejected(t0, later), "sent before the cut");
        }
        assert!((aimd.share() - DECREASE).abs() < 1e-9);
        for _ in 0..10_000 {
            aimd.accepted(later);
        }
        assert_eq!(aimd.share(), 1.0);
    }

    #[test]
    fn a_gateway_rejecting_everything_still_cuts_by_a_fifth() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        for _ in 0..9 {
            assert!(!aimd.rejected(t0, t0));
        }
        assert!(
            aimd.rejected(t0, t0),
            "a fifth of the fewest replies looked at"
        );
        assert!((aimd.share() - DECREASE).abs() < 1e-9);
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
        let second = Duration::from_secs(1);
        let first = climb(&mut aimd, t0, 1.0);
        assert!(
            first > 0.05 && first < 0.08,
            "up to four base steps: {first}"
        );
        // The other client has gone: nothing rejected from now on.
        climb(&mut aimd, t0 + second, 7.0);
        assert!(aimd.share() > 0.9, "8 s after the cut: {}", aimd.share());
    }

    #[test]
    fn lone_rejections_do_not_slow_the_climb() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        aimd.share = 0.3;
        while !aimd.rejected(t0, t0) {}
        let mut at = t0;
        let mut replies = 0u32;
        while at < t0 + Duration::from_secs(8) {
            replies += 1;
            if replies % 40 == 0 {
                assert!(!aimd.rejected(at, at), "too few to cut");
            } else {
                aimd.accepted(at);
            }
            at += Duration::from_secs_f64(1.0 / (20.0 * aimd.share()));
        }
        assert!(aimd.share() > 0.9, "{}", aimd.share());
    }

    #[test]
    fn the_share_has_a_floor() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(4.0);
        for i in 0..1000u32 {
            let at = t0 + Duration::from_millis(u64::from(i));
            aimd.rejected(at, at);
        }
        assert_eq!(aimd.share(), MIN_SHARE);
    }
}

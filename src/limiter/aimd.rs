//! The share of the allotted rate in force: cut multiplicatively when 429s
//! persist at the paced rate, raised additively while requests pass (AIMD,
//! as TCP does). Persisting 429s mean the allotment is smaller than `--rps`
//! or shared with other clients on the key; uncoordinated clients that all
//! follow this rule converge to fair shares instead of collapsing.
//!
//! Lone 429s (a gateway stalling, network jitter) are not persistence: a cut
//! needs several rejections among the recent replies, and one cut per round
//! (replies to requests that started before the last cut do not count).

use std::collections::VecDeque;
use std::time::Instant;

/// A cut keeps this share of the rate.
const DECREASE: f64 = 0.8;
/// The share is never cut below this.
const MIN_SHARE: f64 = 0.05;
/// Each second at the rate in force raises the share by this much of the
/// allotment (a cut to 80 % is won back in about 10 s).
const INCREASE_PER_SECOND: f64 = 0.02;
/// Rejections among the recent replies that make a persistence: at least
/// this many, and at least this share of them.
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
}

impl Aimd {
    pub(super) fn new(allotted_per_second: f64) -> Aimd {
        Aimd {
            allotted: allotted_per_second,
            share: 1.0,
            recent: VecDeque::new(),
            round_began: None,
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
        if self.share < 1.0 {
            // One share step per second at the rate in force.
            let per_reply = INCREASE_PER_SECOND / (self.allotted * self.share).max(1.0);
            self.share = (self.share + per_reply).min(1.0);
        }
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
        self.share = (self.share * DECREASE).max(MIN_SHARE);
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
        assert!((aimd.share() - 0.8).abs() < 1e-9);
        for _ in 0..5 {
            assert!(!aimd.rejected(t0, later), "sent before the cut");
        }
        assert!((aimd.share() - 0.8).abs() < 1e-9);
        // 16 per second at 80 %: one second of replies adds 2 %.
        for _ in 0..16 {
            aimd.accepted(later);
        }
        assert!((aimd.share() - 0.82).abs() < 1e-3, "{}", aimd.share());
        for _ in 0..10_000 {
            aimd.accepted(later);
        }
        assert_eq!(aimd.share(), 1.0);
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

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
/// allotment (a cut to 80 % is won back in about 10 s while 429s go on)...
const INCREASE_PER_SECOND: f64 = 0.02;
/// ...and twice as much for every this many seconds without a 429, at most
/// `MAX_SPEEDUP` times: once the other clients on the key have gone, the
/// rate comes back in seconds, not minutes.
const SPEEDUP_EVERY_SECONDS: f64 = 2.0;
const MAX_SPEEDUP: f64 = 16.0;
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
    /// When the last rejected request started.
    last_rejected: Option<Instant>,
}

impl Aimd {
    pub(super) fn new(allotted_per_second: f64) -> Aimd {
        Aimd {
            allotted: allotted_per_second,
            share: 1.0,
            recent: VecDeque::new(),
            round_began: None,
            last_rejected: None,
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
            // One share step per second at the rate in force, faster the
            // longer nothing was rejected.
            let quiet = self.last_rejected.map_or(0.0, |last| {
                started.saturating_duration_since(last).as_secs_f64()
            });
            let speedup = (quiet / SPEEDUP_EVERY_SECONDS).exp2().min(MAX_SPEEDUP);
            let per_reply = INCREASE_PER_SECOND * speedup / (self.allotted * self.share).max(1.0);
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
        self.last_rejected = Some(self.last_rejected.map_or(started, |last| last.max(started)));
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

    /// Replies at the rate in force for `seconds`, one rejection (too few to
    /// cut) every `rejection_every` replies; the share reached.
    fn climb(seconds: u32, rejection_every: u32) -> f64 {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        for _ in 0..MIN_WINDOW {
            if aimd.rejected(t0, t0) {
                break;
            }
        }
        assert!((aimd.share() - DECREASE).abs() < 1e-9, "cut once");
        let mut at = t0 + Duration::from_millis(1);
        let mut replies = 0;
        while at < t0 + Duration::from_secs(u64::from(seconds)) {
            replies += 1;
            if replies % rejection_every == 0 {
                aimd.rejected(at, at);
            } else {
                aimd.accepted(at);
            }
            at += Duration::from_secs_f64(1.0 / (20.0 * aimd.share()));
        }
        aimd.share()
    }

    #[test]
    fn the_share_climbs_back_faster_the_longer_nothing_is_rejected() {
        // 429s now and then (one in 20): about 2 % a second.
        let slow = climb(5, 20);
        assert!(slow > 0.85 && slow < 0.93, "{slow}");
        // None at all: the step doubles every 2 s; all of it back within 5 s.
        assert_eq!(climb(5, u32::MAX), 1.0);
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

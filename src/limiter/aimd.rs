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
//! One pattern is persistence at once: everything passed, then everything is
//! rejected for a tenth of a second. That is a window the gateway counts
//! over, spent by its clients together; this client's part of it is what it
//! had accepted in the last second (see `SPENT_RUN`).
//!
//! A cut goes to just under the rate the gateway let through (the most
//! requests accepted in one second lately), not merely a fixed share lower:
//! a leaky bucket or a sliding window that counts rejections is a cliff, and
//! a rate above it, however little, keeps drawing 429s.
//!
//! The share a cut leaves is known to pass. It holds there for a moment,
//! then climbs back, borrowing from TCP CUBIC: fast far below the share at
//! which the last cut came, slow near it (where the 429s were), and
//! whatever the share, faster and faster the longer the climb goes on:
//! the others on the key may have gone, and the whole allotment should
//! come back in seconds. The climb is a probe: the first 429 to a request it
//! sent takes the share straight back to the one known to pass, without a
//! cut or a pause (on a cliff, waiting for the 429s to persist costs a
//! second of rejections per probe), and holds it there a little longer each
//! time (the BBR-like probe-and-return that keeps a client just under a
//! limit it cannot see).
//!
//! Where the gateway counts gaps (a leaky bucket: no window counts in its
//! replies, no window seen spent) and the schedule is this client's own,
//! the probe's first 429 also says where the cliff is: at or a
//! little above the rate of the last gap that passed. The share known to pass
//! goes to just under it, on trial until the next probe (see
//! `FIRST_UNDER_CLIFF`). Where it counts over a window, a rate that passed
//! for an instant says nothing of a second.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A cut keeps at most this share of the rate. Not less, even when nearly every
/// reply is a 429: a client that loses the race for a leaky bucket's slots
/// to another sees that whatever its rate, and must be ready to take the
/// whole allotment back the moment the other has gone.
const DECREASE: f64 = 0.8;
/// A cut to the rate that passed goes this far under it...
const UNDER_WHAT_PASSED: f64 = 0.03;
/// ...and keeps at least this share of the rate (one cut; a spent window's
/// cut, measured in full, may go deeper).
const DEEPEST_CUT: f64 = 0.3;
/// What passed is the most requests accepted in one second of this span,
/// counted once the accepted replies in it span `MEASURED_SPAN`.
const PASSED_SPAN: Duration = Duration::from_secs(3);
const MEASURED_SPAN: Duration = Duration::from_millis(900);
/// The share is never cut below this.
const MIN_SHARE: f64 = 0.05;
/// After a cut the share holds this long before the climb; after each
/// probe that drew a 429, twice as long as the last time, at most
/// `LONGEST_HOLD`. Every probe round of clients sharing a key costs each
/// a 429 or two, and where rejections count (a sliding window) the others'
/// too: with at most 4 s, two processes at 20/s on one key drew 10 429s in
/// three probe rounds of a 15 s run (3 % of their requests). A client whose
/// peers left waits one hold at most before its climb takes the allotment
/// back.
const HOLD_AFTER_CUT: Duration = Duration::from_secs(2);
const LONGEST_HOLD: Duration = Duration::from_secs(8);
/// Each second at the rate in force raises the share by this much of the
/// allotment, times a factor: up to four times this just after a cut (far
/// below the share of the last cut), a quarter of it near that share...
const INCREASE_PER_SECOND: f64 = 0.02;
const FASTEST_APPROACH: f64 = 4.0;
const SLOWEST_APPROACH: f64 = 0.25;
/// ...and, whatever the share, at least a quarter of it doubled for every
/// this many seconds since the climb began (the hold's end), at most
/// `MAX_SPEEDUP` times: once the other clients on the key have gone, half
/// the allotment comes back in seconds. Counted from the cut or failed
/// probe instead, the hold of 4-8 s after a failed probe started the next
/// climb at 4-16 steps a second, straight back into the cliff it found
/// (4 uncoordinated processes at 20/s on a sliding window, 8 runs each:
/// 26 429s on average against 30, docs/measurements.md).
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
/// `SPENT_RUN` 429s in a row or more, nothing accepted between, whose
/// starts span `SPENT_RUN_SPAN`, right after a clean stretch of
/// `CLEAN_STRETCH` of the rate in force (at least `SPENT_RUN`) accepted in
/// a row: a window the gateway counts over is spent, by all its clients
/// together (a sliding window that counts rejections passes everything,
/// then rejects everything until the excess leaves it). Jitter on a leaky
/// bucket rejects a request here and there, not a run; a client losing a
/// leaky bucket's race to another has its rejections broken by lucky
/// successes, seldom a clean stretch of a fifth of a second before them.
/// (Not a run of a tenth of a second's worth: as the excess leaves a
/// sliding window, a success slips through now and then.) The window held
/// what this client had accepted in its last second beside the others',
/// so that is its part: a cut straight to it, without waiting for the
/// rejections to make a fifth of two seconds' replies (a second of
/// rejections for everyone at the start of a run shared with others).
const SPENT_RUN: u32 = 3;
const SPENT_RUN_SPAN: Duration = Duration::from_millis(100);
const CLEAN_STRETCH: Duration = Duration::from_millis(200);
/// What the slowest success lately counts for at each new one.
const SUCCESS_DELAY_DECAY: f64 = 0.95;
/// A share raised to just under a cliff found by a probe is on trial until
/// the next probe (the hold, 4-8 s): a 429 to a request started at it takes
/// the share back to the one known before (a leaky bucket rejects a rate
/// above it at once; a burst hides it for a while), and the next cliff read
/// goes twice as far under it (a trial passed: half as far), from this far
/// under the cliff up to this far: past it no cliff is read again (the
/// gateway rejects what passed for an instant: it counts over a window, or
/// the spacing lied). Nginx, whose clock is its event loop's in
/// milliseconds, failed one trial of a second in four at 100/s (with a gap
/// read one climb step too high, then).
const FIRST_UNDER_CLIFF: f64 = UNDER_WHAT_PASSED;
const MAX_UNDER_CLIFF: f64 = 0.12;

/// A share raised to just under a cliff, on trial (see `FIRST_UNDER_CLIFF`).
#[derive(Debug, Clone, Copy)]
struct CliffTrial {
    since: Instant,
    /// The share known to pass before the raise.
    before: f64,
    /// The next probe began (a 429 to a request started before it may
    /// still come, and fail the trial after all).
    passed: bool,
}

/// 429s with nothing accepted between.
#[derive(Debug, Clone, Copy)]
struct RejectedRun {
    count: u32,
    /// The earliest start and the latest among them (replies overtake
    /// each other).
    began: Instant,
    latest: Instant,
    /// Whether a clean stretch (see `SPENT_RUN`) came before it.
    after_clean_stretch: bool,
    /// Whether a cut or a failed probe answered it already.
    answered: bool,
}

/// What a 429 did to the share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RateChange {
    /// Nothing (not yet persistence, or paced at an older rate).
    None,
    /// 429s persisted: a cut.
    Cut,
    /// A run of 429s said a window the gateway counts over is spent: a cut
    /// to this client's part of it. The run's first rejected request
    /// started at `run_began`: the excess leaves the window a window later.
    SpentWindowCut { run_began: Instant },
    /// A probe above the share known to pass drew it: back to that share.
    ProbeFailed,
}

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
    /// Starts of the accepted requests of the last `PASSED_SPAN`, oldest
    /// first; `None` where this client's own count is not the rate that
    /// passed (a schedule shared with other processes).
    passed: Option<VecDeque<Instant>>,
    /// The share known to pass (the last cut's); above it the climb is a probe.
    base: Option<f64>,
    /// The start of the first request the current probe sent.
    probe_began: Option<Instant>,
    /// No climb for requests started before this.
    hold_until: Option<Instant>,
    hold: Duration,
    /// Accepted replies since the last 429.
    accepted_in_a_row: u32,
    /// The 429s since the last accepted reply.
    run: Option<RejectedRun>,
    /// How long successes take to answer lately (a slowly decaying
    /// maximum): a run is judged only once the successes that may have
    /// started inside it would have answered.
    success_delay: Duration,
    /// A window was seen spent (see `SPENT_RUN`): the gateway counts over
    /// a window, and the requests it rejects count there too.
    counts_windows: bool,
    /// A raise to a cliff on trial.
    cliff_trial: Option<CliffTrial>,
    /// How far under a cliff the next raise goes (see `FIRST_UNDER_CLIFF`).
    under_cliff: f64,
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
            passed: Some(VecDeque::new()),
            base: None,
            probe_began: None,
            hold_until: None,
            hold: HOLD_AFTER_CUT,
            accepted_in_a_row: 0,
            run: None,
            success_delay: Duration::ZERO,
            counts_windows: false,
            cliff_trial: None,
            under_cliff: FIRST_UNDER_CLIFF,
        }
    }

    /// The schedule is shared with other processes: what this one sees
    /// accepted is its part of the rate that passed, not all of it, so a
    /// cut is by `DECREASE`.
    pub(super) fn share_schedule(&mut self) {
        self.passed = None;
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

    /// A success to a request that started at `started` answered at `now`
    /// (called before [`Aimd::accepted`]).
    pub(super) fn answered_after(&mut self, started: Instant, now: Instant) {
        let delay = now.saturating_duration_since(started);
        self.success_delay = delay.max(self.success_delay.mul_f64(SUCCESS_DELAY_DECAY));
    }

    /// A request that started at `started` passed.
    pub(super) fn accepted(&mut self, started: Instant) {
        // Replies overtake each other: one to a request older than the
        // run does not break it.
        if self.run.is_none_or(|run| started >= run.began) {
            self.run = None;
            self.accepted_in_a_row = self.accepted_in_a_row.saturating_add(1);
        }
        if self.round_began.is_some_and(|began| started < began) {
            return;
        }
        self.remember(false);
        if let Some(passed) = self.passed.as_mut() {
            passed.push_back(started);
            while passed
                .front()
                .is_some_and(|first| started.saturating_duration_since(*first) > PASSED_SPAN)
            {
                passed.pop_front();
            }
        }
        let holding = self.hold_until.is_some_and(|until| started < until);
        if self.share >= 1.0 || holding {
            return;
        }
        // One step per second at the rate in force.
        let per_reply =
            INCREASE_PER_SECOND * self.pace(started) / (self.allotted * self.share).max(1.0);
        self.share = (self.share + per_reply).min(1.0);
        if self.share >= 1.0 {
            // The whole allotment passes again: nothing left to probe, and
            // a later 429 is a lone one (jitter), or persistence.
            self.base = None;
            self.probe_began = None;
            self.hold_until = None;
            self.cliff_passed();
        } else if self.base.is_some_and(|base| self.share > base) && self.probe_began.is_none() {
            self.probe_began = Some(started);
            self.cliff_passed();
        }
    }

    /// The share a cliff read raised passed its trial (the next probe
    /// began, or the whole allotment passes): the next read goes half as
    /// far under the cliff, no nearer than the first.
    fn cliff_passed(&mut self) {
        if let Some(trial) = self.cliff_trial.as_mut().filter(|trial| !trial.passed) {
            trial.passed = true;
            self.under_cliff = (self.under_cliff / 2.0).max(FIRST_UNDER_CLIFF);
        }
        if self.share >= 1.0 {
            self.cliff_trial = None;
        }
    }

    /// How fast the share climbs now, in steps per second: see the module
    /// docs. The speed-up as the climb goes on also ends a plateau at a
    /// share that meant nothing (a client that lost the race for a leaky
    /// bucket's slots is cut for it, whatever its rate).
    fn pace(&self, now: Instant) -> f64 {
        let shaped = if self.share < self.last_max {
            let below = (self.last_max - self.share) / (self.last_max * (1.0 - DECREASE));
            (SLOWEST_APPROACH + (FASTEST_APPROACH - SLOWEST_APPROACH) * below).min(FASTEST_APPROACH)
        } else {
            SLOWEST_APPROACH
        };
        let climbing_for = self
            .hold_until
            .map_or(0.0, |end| now.saturating_duration_since(end).as_secs_f64());
        let speedup = (climbing_for / SPEEDUP_EVERY_SECONDS)
            .exp2()
            .min(MAX_SPEEDUP);
        shaped.max(SLOWEST_APPROACH * speedup)
    }

    /// A request that started at `started` was rejected, as seen at `now`;
    /// `passed_gap`: the gap kept before the request before it, which
    /// passed (even pacing on a gateway counting gaps).
    pub(super) fn rejected(
        &mut self,
        started: Instant,
        passed_gap: Option<Duration>,
        now: Instant,
    ) -> RateChange {
        let run = self.extend_run(started);
        if self.round_began.is_some_and(|began| started < began) {
            return RateChange::None;
        }
        // Until the next probe began (replies overtake each other).
        let probing = self.probe_began.is_some_and(|began| started >= began);
        let in_trial = |trial: &CliffTrial| started >= trial.since && !probing;
        if let Some(trial) = self.cliff_trial.filter(in_trial) {
            self.under_cliff *= 2.0;
            self.share = trial.before;
            self.settle(now);
            return RateChange::ProbeFailed;
        }
        if probing {
            return self.probe_failed(passed_gap, now);
        }
        self.remember(true);
        let rejections = self.recent.iter().filter(|r| **r).count();
        let persistent = rejections >= MIN_REJECTIONS
            && rejections as f64 >= MIN_REJECTED_SHARE * self.window() as f64;
        let spent_share = self
            .spends_window(&run, now)
            .then(|| self.part_of_spent_window())
            .flatten();
        if !persistent && spent_share.is_none() {
            return RateChange::None;
        }
        self.last_max = self.share;
        self.share = spent_share.unwrap_or_else(|| self.after_cut());
        self.cuts += 1;
        self.hold = HOLD_AFTER_CUT;
        self.settle(now);
        if spent_share.is_none() {
            return RateChange::Cut;
        }
        self.counts_windows = true;
        RateChange::SpentWindowCut {
            run_began: run.began,
        }
    }

    /// One more 429 since the last accepted reply, to a request started at
    /// `started`: the run it extends.
    fn extend_run(&mut self, started: Instant) -> RejectedRun {
        // Rounded first: a rate read back from its interval is a hair high.
        let stretch = CLEAN_STRETCH.as_secs_f64() * self.pace_in_force();
        let clean_stretch = ((stretch * 1e6).round() / 1e6).ceil() as u32;
        let after_clean_stretch = self.accepted_in_a_row >= clean_stretch.max(SPENT_RUN);
        self.accepted_in_a_row = 0;
        let run = self.run.get_or_insert(RejectedRun {
            count: 0,
            began: started,
            latest: started,
            after_clean_stretch,
            answered: false,
        });
        run.count += 1;
        run.began = run.began.min(started);
        run.latest = run.latest.max(started);
        *run
    }

    /// Starts per second at the share in force.
    fn pace_in_force(&self) -> f64 {
        self.allotted * self.share
    }

    /// Whether `run` says a window is spent (see `SPENT_RUN`), and no cut
    /// or failed probe answered it yet.
    fn spends_window(&self, run: &RejectedRun, now: Instant) -> bool {
        run.after_clean_stretch
            // A success started inside the run may be on its way still
            // (successes can answer far slower than 429s).
            && now.saturating_duration_since(run.began) >= self.success_delay
            && !run.answered
            // A run of an older round is that round's, which a cut answered.
            && self.round_began.is_none_or(|began| run.began >= began)
            && run.count >= SPENT_RUN
            && run.latest.saturating_duration_since(run.began) >= SPENT_RUN_SPAN
    }

    /// The share a spent window leaves this client: just under what it had
    /// accepted in the second before its latest accepted start (the last
    /// second whose replies are all in: successes may take far longer to
    /// answer than 429s), and no more than the share in force (a window
    /// another client's probe spent costs little); `None` on a shared
    /// schedule (what passed here is not all ours to measure by).
    fn part_of_spent_window(&self) -> Option<f64> {
        let passed = self.passed.as_ref()?;
        // Replies overtake each other: the latest start, not the last in.
        let latest = passed.iter().max().copied();
        let in_window = latest.map_or(0, |latest| {
            passed
                .iter()
                .filter(|start| latest.saturating_duration_since(**start) < Duration::from_secs(1))
                .count()
        });
        let part = in_window as f64 / self.allotted * (1.0 - UNDER_WHAT_PASSED);
        Some(part.min(self.share).max(MIN_SHARE))
    }

    /// The share a cut leaves: just under what passed, within
    /// `DEEPEST_CUT`..`DECREASE` of the share in force.
    fn after_cut(&self) -> f64 {
        let by_factor = self.share * DECREASE;
        let under_passed = self
            .passed_share()
            .map_or(by_factor, |passed| passed * (1.0 - UNDER_WHAT_PASSED));
        under_passed
            .clamp(self.share * DEEPEST_CUT, by_factor)
            .max(MIN_SHARE)
    }

    /// The most requests accepted in one second lately, as a share of the
    /// allotment; `None` until the accepted replies span `MEASURED_SPAN`.
    fn passed_share(&self) -> Option<f64> {
        let passed = self.passed.as_ref()?;
        let (first, last) = (passed.front()?, passed.back()?);
        if last.saturating_duration_since(*first) < MEASURED_SPAN {
            return None;
        }
        let mut most = 0;
        let mut from = 0;
        for (to, start) in passed.iter().enumerate() {
            while start.saturating_duration_since(passed[from]) >= Duration::from_secs(1) {
                from += 1;
            }
            most = most.max(to - from + 1);
        }
        Some(most as f64 / self.allotted)
    }

    /// A probe drew a 429 (after a request that passed `passed_gap` after
    /// the one before it): back to the share known to pass, or to just under
    /// the cliff that gap marks (see the module docs), held a little longer
    /// than last time.
    fn probe_failed(&mut self, passed_gap: Option<Duration>, now: Instant) -> RateChange {
        let mut trial = None;
        if let Some(base) = self.base {
            let under_cliff = self
                .share_under_cliff(passed_gap)
                .filter(|share| *share > base);
            trial = under_cliff.map(|_| CliffTrial {
                since: now,
                before: base,
                passed: false,
            });
            self.share = under_cliff.unwrap_or(base);
        }
        self.hold = (self.hold * 2).min(LONGEST_HOLD);
        self.settle(now);
        self.cliff_trial = trial;
        RateChange::ProbeFailed
    }

    /// Just under the rate of a gap that passed right before a probe's first
    /// 429 (the cliff is at that rate or a little above), no higher than
    /// the share in force; `None` where a cliff says nothing (see the module
    /// docs) or this client's own spacing is not the gateway's (a schedule
    /// shared with other processes).
    fn share_under_cliff(&self, passed_gap: Option<Duration>) -> Option<f64> {
        let misled = self.under_cliff > MAX_UNDER_CLIFF;
        if self.counts_windows || misled || self.passed.is_none() {
            return None;
        }
        let gap = passed_gap.filter(|gap| !gap.is_zero())?.as_secs_f64();
        let cliff = 1.0 / gap / self.allotted;
        Some((cliff * (1.0 - self.under_cliff)).min(self.share))
    }

    /// A new round at the share just set, known to pass: it holds there
    /// for `hold`, then probes.
    fn settle(&mut self, now: Instant) {
        if let Some(run) = self.run.as_mut() {
            run.answered = true;
        }
        self.base = Some(self.share);
        self.cliff_trial = None;
        self.probe_began = None;
        self.hold_until = Some(now + self.hold);
        self.recent.clear();
        self.round_began = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn cut(change: RateChange) -> bool {
        change == RateChange::Cut
    }

    #[test]
    fn lone_rejections_do_not_cut() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        for i in 0..1000u32 {
            let at = t0 + ms(50) * i;
            if i % 100 == 0 {
                assert_eq!(aimd.rejected(at, None, at), RateChange::None);
            } else {
                aimd.accepted(at);
            }
        }
        assert_eq!(aimd.share(), 1.0);
    }

    #[test]
    fn persisting_rejections_cut_once_per_round_then_the_share_holds_and_climbs_back() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        let later = t0 + ms(1);
        for _ in 0..40 {
            aimd.accepted(t0);
        }
        for _ in 0..9 {
            assert_eq!(aimd.rejected(t0, None, later), RateChange::None);
        }
        assert!(
            cut(aimd.rejected(t0, None, later)),
            "a fifth of the last fifty"
        );
        // The accepted replies span no time: nothing measured, a cut by a fifth.
        assert!((aimd.share() - DECREASE).abs() < 1e-9);
        for _ in 0..5 {
            assert_eq!(
                aimd.rejected(t0, None, later),
                RateChange::None,
                "sent before the cut"
            );
        }
        assert!((aimd.share() - DECREASE).abs() < 1e-9);
        for _ in 0..1000 {
            aimd.accepted(later + ms(100));
        }
        assert!((aimd.share() - DECREASE).abs() < 1e-9, "held after the cut");
        for _ in 0..10_000 {
            aimd.accepted(later + HOLD_AFTER_CUT);
        }
        assert_eq!(aimd.share(), 1.0);
    }

    /// A client at 20/s whose first ten requests, 50 ms apart, passed; the
    /// start of the next.
    fn half_a_second_accepted(aimd: &mut Aimd, t0: Instant) -> Instant {
        for i in 0..10u32 {
            aimd.accepted(t0 + ms(50) * i);
        }
        t0 + ms(500)
    }

    #[test]
    fn a_run_of_429s_over_a_tenth_of_a_second_cuts_to_what_passed_in_the_last_second() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        let run = half_a_second_accepted(&mut aimd, t0);
        // A sliding window spent by two clients together: everything rejected.
        for i in 0..2u32 {
            let at = run + ms(50) * i;
            assert_eq!(
                aimd.rejected(at, None, at),
                RateChange::None,
                "too short a run"
            );
        }
        let third = run + ms(100);
        assert_eq!(
            aimd.rejected(third, None, third),
            RateChange::SpentWindowCut { run_began: run }
        );
        let part = 10.0 / 20.0 * (1.0 - UNDER_WHAT_PASSED);
        assert!((aimd.share() - part).abs() < 1e-9, "{}", aimd.share());
        // The same run goes on, past the cut: no second cut for it.
        for i in 3..10u32 {
            let at = run + ms(50) * i;
            assert_eq!(aimd.rejected(at, None, at), RateChange::None);
        }
        assert_eq!(aimd.cuts(), 1);
    }

    #[test]
    fn a_run_of_429s_within_a_tenth_of_a_second_or_broken_by_a_success_is_no_spent_window() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        let run = half_a_second_accepted(&mut aimd, t0);
        // A gateway stall: four requests rejected together.
        for i in 0..4u32 {
            let at = run + ms(20) * i;
            assert_eq!(aimd.rejected(at, None, at), RateChange::None);
        }
        // Rejections with a success between them: no run.
        let mut at = run + ms(100);
        for _ in 0..3 {
            aimd.accepted(at);
            at += ms(50);
            assert_eq!(aimd.rejected(at, None, at), RateChange::None);
            at += ms(50);
        }
        assert_eq!(aimd.share(), 1.0);
    }

    #[test]
    fn a_run_without_a_clean_stretch_before_it_is_a_lost_race_not_a_spent_window() {
        // Another client takes a leaky bucket's slots: this one's requests
        // are rejected, but for a lucky one now and then.
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        let mut at = t0;
        for i in 0..20u32 {
            if i % 5 == 0 {
                aimd.accepted(at);
            } else {
                let change = aimd.rejected(at, None, at);
                assert!(
                    !matches!(change, RateChange::SpentWindowCut { .. }),
                    "a run of four over 150 ms, after one success"
                );
            }
            at += ms(50);
        }
    }

    #[test]
    fn three_successes_then_three_429s_at_random_are_no_spent_window() {
        // Review: a client losing half its requests to a leaky bucket's race
        // sees AAARRR now and then; a clean stretch is a fifth of a second.
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        let mut at = t0;
        for rejected in [false, false, false, true, true, true] {
            if rejected {
                let change = aimd.rejected(at, None, at);
                assert!(!matches!(change, RateChange::SpentWindowCut { .. }));
            } else {
                aimd.accepted(at);
            }
            at += ms(50);
        }
    }

    #[test]
    fn the_part_of_a_spent_window_is_measured_where_every_reply_is_in() {
        // Review: successes answered a second after they start, 429s at once:
        // the last second's successes are still on their way.
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        for i in 0..40u32 {
            aimd.accepted(t0 + ms(50) * i);
        }
        let run = t0 + Duration::from_secs(3);
        let change = (0..3u32)
            .map(|i| aimd.rejected(run + ms(50) * i, None, run + ms(50) * i))
            .last();
        assert_eq!(change, Some(RateChange::SpentWindowCut { run_began: run }));
        assert!(
            (aimd.share() - (1.0 - UNDER_WHAT_PASSED)).abs() < 1e-9,
            "{}",
            aimd.share()
        );
    }

    #[test]
    fn a_run_a_cut_or_a_failed_probe_answered_cuts_no_more() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        // Every fifth rejected: the ordinary rule cuts in the middle of
        // the run that follows, after a clean stretch.
        let mut at = t0;
        for i in 0..40u32 {
            if i % 5 == 4 {
                aimd.rejected(at, None, at);
            } else {
                aimd.accepted(at);
            }
            at += ms(50);
        }
        let mut changes = Vec::new();
        for _ in 0..6 {
            changes.push(aimd.rejected(at, None, at));
            at += ms(50);
        }
        assert_eq!(aimd.cuts(), 1, "{changes:?}");
        // A probe's 429 opens a run of a window its probe spent: back to
        // the share that passed, and nothing more for that run.
        let mut aimd = Aimd::new(20.0);
        aimd.share = 0.5;
        while !cut(aimd.rejected(t0, None, t0)) {}
        let base = aimd.share();
        let mut at = t0 + Duration::from_secs(10);
        while aimd.probe_began.is_none() {
            aimd.accepted(at);
            at += ms(50);
        }
        for _ in 0..10 {
            aimd.accepted(at);
            at += ms(50);
        }
        assert_eq!(aimd.rejected(at, None, at), RateChange::ProbeFailed);
        for _ in 0..5 {
            at += ms(50);
            assert_eq!(aimd.rejected(at, None, at), RateChange::None);
        }
        assert_eq!((aimd.share(), aimd.cuts()), (base, 1));
    }

    #[test]
    fn a_run_of_an_older_round_and_one_429_after_the_cut_are_no_spent_window() {
        // Review: replies to requests sent before a cut come in after it.
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        aimd.share = 0.5;
        let rejected = t0 + Duration::from_secs(1);
        let cut_at = rejected + ms(500);
        while !cut(aimd.rejected(rejected, None, cut_at)) {}
        let mut sent = rejected;
        for _ in 0..4 {
            sent += ms(50);
            aimd.accepted(sent);
        }
        for _ in 0..3 {
            sent += ms(50);
            assert_eq!(aimd.rejected(sent, None, cut_at), RateChange::None);
        }
        let after = cut_at + ms(100);
        assert_eq!(aimd.rejected(after, None, after), RateChange::None);
        assert_eq!(aimd.cuts(), 1);
    }

    #[test]
    fn a_run_is_judged_once_the_successes_started_inside_it_would_have_answered() {
        let t0 = Instant::now();
        // Successes answering `delay` after they start, 429s 10 ms after.
        let slow = |delay: Duration| {
            let mut aimd = Aimd::new(20.0);
            for i in 0..40u32 {
                let started = t0 + ms(50) * i;
                aimd.answered_after(started, started + delay);
                aimd.accepted(started);
            }
            aimd
        };
        let run = t0 + Duration::from_secs(2);
        // Review: a leaky bucket's race lost every other time, successes
        // in 600 ms: the 429s come in a row before the successes between.
        let mut aimd = slow(ms(600));
        for i in 0..4u32 {
            let started = run + ms(100) * i;
            let change = aimd.rejected(started, None, started + ms(10));
            assert!(!matches!(change, RateChange::SpentWindowCut { .. }), "{i}");
        }
        // A window spent for good, successes in 200 ms: judged once a
        // success started with the run would have answered.
        let mut aimd = slow(ms(200));
        let changes: Vec<RateChange> = (0..5u32)
            .map(|i| aimd.rejected(run + ms(50) * i, None, run + ms(50) * i + ms(10)))
            .collect();
        assert_eq!(changes[..4], [RateChange::None; 4]);
        assert_eq!(changes[4], RateChange::SpentWindowCut { run_began: run });
    }

    #[test]
    fn a_success_to_a_request_older_than_the_run_does_not_break_it() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        let run = half_a_second_accepted(&mut aimd, t0);
        aimd.rejected(run, None, run);
        // The reply to a request sent before the run comes after its first 429.
        aimd.accepted(run - ms(10));
        aimd.rejected(run + ms(50), None, run + ms(50));
        assert_eq!(
            aimd.rejected(run + ms(100), None, run + ms(100)),
            RateChange::SpentWindowCut { run_began: run }
        );
    }

    #[test]
    fn a_gateway_rejecting_everything_still_cuts_by_a_fifth() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        for _ in 0..9 {
            assert_eq!(aimd.rejected(t0, None, t0), RateChange::None);
        }
        assert!(
            cut(aimd.rejected(t0, None, t0)),
            "a fifth of the fewest replies looked at"
        );
        assert!((aimd.share() - DECREASE).abs() < 1e-9);
    }

    /// A client paced at the share in force from `from`, for `seconds` or
    /// until a 429 changes the share, against a gateway that accepts at
    /// most `limit` requests per second, evenly (a leaky bucket without
    /// burst: over the limit, every other request is rejected). Returns when
    /// it stopped, and the change.
    fn until_change(
        aimd: &mut Aimd,
        from: Instant,
        seconds: f64,
        limit: f64,
    ) -> (Instant, RateChange) {
        let mut at = from;
        let mut last_accepted: Option<Instant> = None;
        while at < from + Duration::from_secs_f64(seconds) {
            let gap = Duration::from_secs_f64(0.999 / limit);
            if last_accepted.is_none_or(|last| at - last >= gap) {
                aimd.accepted(at);
                last_accepted = Some(at);
            } else {
                let change = aimd.rejected(at, None, at);
                if change != RateChange::None {
                    return (at, change);
                }
            }
            at += Duration::from_secs_f64(1.0 / (20.0 * aimd.share()));
        }
        (at, RateChange::None)
    }

    /// A client told 20/s on a gateway allotting 10/s, after a second of
    /// replies (so that what passed is measured), until the first cut;
    /// returns when it came.
    fn cut_at_half(aimd: &mut Aimd, t0: Instant) -> Instant {
        for i in 0..20u32 {
            aimd.accepted(t0 + ms(100) * i);
        }
        let (cut_at, change) = until_change(aimd, t0 + Duration::from_secs(2), 3.0, 10.0);
        assert_eq!(change, RateChange::Cut);
        cut_at
    }

    /// Successes 50 ms apart from `from` until the share climbs to
    /// `share` (a probe, past the share known to pass); the next start.
    fn climb_to(aimd: &mut Aimd, from: Instant, share: f64) -> Instant {
        let mut at = from;
        for _ in 0..100_000 {
            if aimd.share() >= share {
                return at;
            }
            aimd.accepted(at);
            at += ms(50);
        }
        panic!("the share stayed at {}", aimd.share());
    }

    #[test]
    fn a_probes_first_429_where_gaps_count_raises_the_share_to_just_under_its_gap() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        let cut_at = cut_at_half(&mut aimd, t0);
        let base = aimd.share();
        let at = climb_to(&mut aimd, cut_at + Duration::from_secs(3), 0.55);
        // The request before passed 90 ms after its own: the cliff is at
        // 11.1/s or a little above, higher than the cut measured.
        assert_eq!(aimd.rejected(at, Some(ms(90)), at), RateChange::ProbeFailed);
        let under_cliff = 1.0 / 0.090 / 20.0 * (1.0 - UNDER_WHAT_PASSED);
        assert!(under_cliff > base);
        assert!(
            (aimd.share() - under_cliff).abs() < 1e-9,
            "{}",
            aimd.share()
        );
        // Held there until the next probe, which ends the trial: the raise
        // is the share known to pass, and a probe's 429 comes back to it.
        let at = climb_to(&mut aimd, at + ms(50), under_cliff + 0.01);
        assert!(aimd.probe_began.is_some());
        assert_eq!(aimd.rejected(at, None, at), RateChange::ProbeFailed);
        assert!(
            (aimd.share() - under_cliff).abs() < 1e-9,
            "{}",
            aimd.share()
        );
    }

    #[test]
    fn a_raise_to_a_cliff_that_draws_a_429_in_its_trial_goes_back_and_the_next_goes_twice_as_far_under(
    ) {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        let cut_at = cut_at_half(&mut aimd, t0);
        let base = aimd.share();
        // Paced 80 ms apart: a cliff at 12.5/s.
        let cliff = 1.0 / 0.080 / 20.0;
        let mut at = cut_at + Duration::from_secs(3);
        for under in [0.03, 0.06, 0.12] {
            at = climb_to(&mut aimd, at, 0.65);
            assert_eq!(aimd.rejected(at, Some(ms(80)), at), RateChange::ProbeFailed);
            let raised = cliff * (1.0 - under);
            assert!(
                (aimd.share() - raised).abs() < 1e-9,
                "{under}: {}",
                aimd.share()
            );
            // Two seconds on: still held, still on trial.
            let in_trial = at + ms(2_000);
            assert_eq!(
                aimd.rejected(in_trial, Some(ms(85)), in_trial),
                RateChange::ProbeFailed
            );
            assert!((aimd.share() - base).abs() < 1e-9, "{}", aimd.share());
            at = in_trial + Duration::from_secs(5);
        }
        // Three trials failed: the spacing says nothing of this gateway.
        at = climb_to(&mut aimd, at, 0.65);
        assert_eq!(aimd.rejected(at, Some(ms(80)), at), RateChange::ProbeFailed);
        assert!((aimd.share() - base).abs() < 1e-9, "{}", aimd.share());
    }

    #[test]
    fn a_trial_passed_brings_the_next_read_back_nearer_and_the_whole_allotment_ends_it() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        let cut_at = cut_at_half(&mut aimd, t0);
        let cliff = 1.0 / 0.080 / 20.0;
        // One trial failed: the next read goes 6 % under.
        let at = climb_to(&mut aimd, cut_at + Duration::from_secs(3), 0.65);
        aimd.rejected(at, Some(ms(80)), at);
        let in_trial = at + ms(100);
        aimd.rejected(in_trial, None, in_trial);
        let at = climb_to(&mut aimd, in_trial + Duration::from_secs(5), 0.65);
        aimd.rejected(at, Some(ms(80)), at);
        assert!(
            (aimd.share() - cliff * 0.94).abs() < 1e-9,
            "{}",
            aimd.share()
        );
        // That one passed (the next probe began): 3 % under again.
        let at = climb_to(&mut aimd, at + ms(50), 0.65);
        assert_eq!(aimd.rejected(at, Some(ms(80)), at), RateChange::ProbeFailed);
        assert!(
            (aimd.share() - cliff * 0.97).abs() < 1e-9,
            "{}",
            aimd.share()
        );
        // Climbed on to the whole allotment: no trial left, and a 429 a
        // minute later is a lone one.
        let at = climb_to(&mut aimd, at + ms(50), 1.0);
        let later = at + Duration::from_secs(60);
        assert_eq!(aimd.rejected(later, None, later), RateChange::None);
        assert_eq!(aimd.share(), 1.0);
    }

    #[test]
    fn no_cliff_is_read_where_a_window_was_seen_spent_or_the_schedule_is_shared() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        let run = half_a_second_accepted(&mut aimd, t0);
        for i in 0..3u32 {
            let at = run + ms(50) * i;
            aimd.rejected(at, None, at);
        }
        assert!(aimd.counts_windows);
        let base = aimd.share();
        let at = climb_to(&mut aimd, run + Duration::from_secs(3), base + 0.05);
        assert_eq!(aimd.rejected(at, Some(ms(90)), at), RateChange::ProbeFailed);
        assert!((aimd.share() - base).abs() < 1e-9, "{}", aimd.share());

        let mut shared = Aimd::new(20.0);
        shared.share_schedule();
        let cut_at = cut_at_half(&mut shared, t0);
        assert!(!shared.counts_windows);
        let base = shared.share();
        let at = climb_to(&mut shared, cut_at + Duration::from_secs(3), base + 0.05);
        // A spacing that alone would mark a cliff above the share.
        assert_eq!(
            shared.rejected(at, Some(ms(55)), at),
            RateChange::ProbeFailed
        );
        assert!((shared.share() - base).abs() < 1e-9, "{}", shared.share());
    }

    #[test]
    fn a_cut_goes_just_under_the_rate_that_passed() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        cut_at_half(&mut aimd, t0);
        let passed = 0.5 * (1.0 - UNDER_WHAT_PASSED);
        assert!(
            (aimd.share() - passed).abs() < 0.03,
            "just under 10 of 20: {}",
            aimd.share()
        );
    }

    #[test]
    fn a_shared_schedule_cuts_by_a_fifth_whatever_passed_here() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        aimd.share_schedule();
        cut_at_half(&mut aimd, t0);
        assert!((aimd.share() - DECREASE).abs() < 1e-9, "{}", aimd.share());
    }

    #[test]
    fn a_probe_that_draws_a_429_goes_back_to_the_share_that_passed_without_a_cut() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        let cut_at = cut_at_half(&mut aimd, t0);
        let base = aimd.share();
        // Held at the share that passed for a while: no 429, no climb.
        let hold = HOLD_AFTER_CUT.as_secs_f64() - 0.1;
        let (held, change) = until_change(&mut aimd, cut_at, hold, 10.0);
        assert_eq!(change, RateChange::None);
        assert!((aimd.share() - base).abs() < 1e-9);
        // Then the climb crosses the limit: the first 429 takes it back.
        let (_, change) = until_change(&mut aimd, held, 20.0, 10.0);
        assert_eq!(change, RateChange::ProbeFailed);
        assert_eq!(aimd.cuts(), 1, "no cut for a probe");
        assert!(
            (aimd.share() - base).abs() < 1e-9,
            "{} against {base}",
            aimd.share()
        );
    }

    #[test]
    fn each_failed_probe_holds_twice_as_long_up_to_the_longest_hold() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        let mut at = cut_at_half(&mut aimd, t0);
        let mut holds = Vec::new();
        for _ in 0..4 {
            let (failed_at, change) = until_change(&mut aimd, at, 60.0, 10.0);
            assert_eq!(change, RateChange::ProbeFailed);
            let held = aimd.hold_until.unwrap() - failed_at;
            holds.push(held.as_secs());
            at = failed_at;
        }
        assert_eq!(holds, [4, 8, 8, 8]);
    }

    #[test]
    fn a_probe_that_climbs_back_to_the_whole_allotment_is_over() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        let cut_at = cut_at_half(&mut aimd, t0);
        // The limit is lifted: the climb reaches the whole allotment.
        climb(&mut aimd, cut_at, 30.0);
        assert_eq!(aimd.share(), 1.0);
        // A lone 429 a minute later is jitter, not a failed probe.
        let later = cut_at + Duration::from_secs(60);
        assert_eq!(aimd.rejected(later, None, later), RateChange::None);
        assert_eq!(aimd.share(), 1.0);
    }

    #[test]
    fn a_client_probing_under_a_cliff_keeps_nearly_all_of_it_with_few_429s() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        let mut at = cut_at_half(&mut aimd, t0);
        let mut accepted = 0u32;
        let mut rejected = 0u32;
        let mut last_accepted: Option<Instant> = None;
        let end = at + Duration::from_secs(30);
        while at < end {
            if last_accepted.is_none_or(|last| at - last >= ms(99)) {
                aimd.accepted(at);
                last_accepted = Some(at);
                accepted += 1;
            } else {
                rejected += 1;
                aimd.rejected(at, None, at);
            }
            at += Duration::from_secs_f64(1.0 / (20.0 * aimd.share()));
        }
        assert!(accepted >= 285, "{accepted} of 300 in 30 s");
        assert!(rejected <= 12, "{rejected} 429s in 30 s");
        assert_eq!(aimd.cuts(), 1, "probes that fail are no cuts");
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
    fn the_share_climbs_fast_after_its_hold_and_faster_the_longer_it_climbs() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        for _ in 0..100 {
            aimd.accepted(t0);
        }
        // Two clients on the key: a cut at half the allotment.
        aimd.share = 0.5;
        while !cut(aimd.rejected(t0, None, t0)) {}
        assert!((aimd.share() - 0.4).abs() < 1e-9);
        assert_eq!(climb(&mut aimd, t0, 2.0), 0.0, "held");
        let first = climb(&mut aimd, t0 + HOLD_AFTER_CUT, 1.0);
        assert!(first > 0.05 && first < 0.3, "fast: {first}");
        // The other client has gone: nothing rejected from now on.
        climb(&mut aimd, t0 + Duration::from_secs(3), 5.0);
        assert!(aimd.share() > 0.9, "8 s after the cut: {}", aimd.share());
    }

    /// A failed probe's hold is no head start: the climb after a hold of
    /// 8 s begins at the pace of the first after a cut (its speed-up counted
    /// from the hold's end, not from the failure: 16 steps a second).
    #[test]
    fn the_climb_after_a_long_hold_starts_no_faster_than_after_a_short_one() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        let cut_at = cut_at_half(&mut aimd, t0);
        let after_cut = climb(&mut aimd.clone(), cut_at + HOLD_AFTER_CUT, 1.0);
        let mut at = cut_at;
        for _ in 0..2 {
            let (failed_at, change) = until_change(&mut aimd, at, 60.0, 10.0);
            assert_eq!(change, RateChange::ProbeFailed);
            at = failed_at;
        }
        let hold_end = aimd.hold_until.unwrap();
        assert_eq!(hold_end - at, LONGEST_HOLD);
        let after_long_hold = climb(&mut aimd, hold_end, 1.0);
        assert!(
            after_long_hold <= after_cut * 1.05,
            "{after_long_hold} against {after_cut}"
        );
    }

    #[test]
    fn lone_rejections_before_a_probe_do_not_slow_the_climb() {
        let t0 = Instant::now();
        let mut aimd = Aimd::new(20.0);
        aimd.share = 0.3;
        while !cut(aimd.rejected(t0, None, t0)) {}
        let mut at = t0;
        let mut replies = 0u32;
        while at < t0 + Duration::from_secs(10) {
            replies += 1;
            // A lone 429 while held, at the share known to pass.
            if replies % 10 == 0 && at < t0 + HOLD_AFTER_CUT {
                assert_eq!(
                    aimd.rejected(at, None, at),
                    RateChange::None,
                    "too few to cut"
                );
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
            aimd.rejected(at, None, at);
        }
        assert_eq!(aimd.share(), MIN_SHARE);
    }
}

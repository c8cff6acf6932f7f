//! Learning from replies: the limiter's model of the gateway is a
//! hypothesis, checked against every reply. Pure transitions of the
//! [`Schedule`] and the [`Learner`]'s own books; the time comes in as a
//! parameter, nothing sleeps or locks here.
//!
//! - Window headers on accepted replies (Kong) switch to window mode;
//! - a lone 429 among accepted requests is a spacing error: only its job
//!   waits (its `Retry-After`, less where pacing is even), the margin widens
//!   a little and the schedule moves a hair later;
//! - every start pauses only for a spent window: `Remaining` 0 with window
//!   headers, a spent minute/hour/month, a `Retry-After` longer than a
//!   window, or 429s that keep coming with nothing accepted between;
//! - evidence against the model changes it for good (see `trust.rs`);
//! - 429s that persist at the paced rate cut the rate (see `aimd.rs`).

use super::aimd::{Aimd, RateChange};
use super::backoff::{Backoff, PauseReason};
use super::clock::{later, Now};
use super::hint::GatewayHint;
use super::pause_record::PauseRecord;
use super::reservation::Reservation;
use super::schedule::Schedule;
use super::shared::SharedPacing;
use super::trust::Trust;
use super::window;
use std::time::{Duration, Instant, SystemTime};

/// Longest pause for 429s in a row without any hint.
const MAX_BLIND_PAUSE: Duration = Duration::from_secs(1);
/// Blind pause without a rate to scale it by (concurrency mode).
const UNPACED_BLIND_PAUSE: Duration = Duration::from_millis(50);
/// Added to the gateway's own reset time of a spent quota: its whole
/// seconds are rounded, and its clock may run a little behind ours.
pub(super) const QUOTA_GUARD: Duration = Duration::from_millis(250);
/// The longest a spent quota holds every start before the next try (a
/// wrong header must not stop the run for good).
pub(super) const LONGEST_QUOTA_WAIT: Duration = Duration::from_secs(3600);
/// Allotted intervals every start waits after a cut.
const CUT_PAUSE_INTERVALS: u32 = 3;
/// A `Retry-After` above this is longer than a one-second window.
const ONE_WINDOW: Duration = Duration::from_secs(1);

/// What the limiter has learned beyond the schedule itself.
#[derive(Debug)]
pub(super) struct Learner {
    aimd: Option<Aimd>,
    /// 429s in a row, with nothing accepted between.
    in_a_row: u32,
    /// When the last spent-window cut came: a 429 to a request that left
    /// before it is that run's, which the cut's pause answered.
    run_answered_at: Option<Instant>,
    trust: Trust,
    pub(super) pauses: PauseRecord,
}

impl Learner {
    pub(super) fn new(schedule: &Schedule) -> Learner {
        Learner {
            aimd: schedule.rate.map(|rate| Aimd::new(rate.per_second_f64())),
            in_a_row: 0,
            run_answered_at: None,
            trust: Trust::default(),
            pauses: PauseRecord::default(),
        }
    }

    /// A reply the gateway let through (any status but a rate-limit one).
    pub(super) fn accepted(
        &mut self,
        schedule: &mut Schedule,
        reservation: &Reservation,
        hint: Option<&GatewayHint>,
        now: Now,
    ) {
        schedule.notice_time(now);
        self.in_a_row = 0;
        self.trust
            .accepted(hint.is_some_and(|hint| hint.second.is_some()));
        // Each holder gives back for all only while it hears all their
        // rounds (not while the shared store is lost, say).
        let holders = schedule
            .shared()
            .filter(|shared| shared.slots().rounds_heard().is_some())
            .map_or(1, SharedPacing::holders);
        if let Some(pacing) = schedule.pacing.as_mut() {
            pacing.narrow(holders);
        }
        if let Some(aimd) = self.aimd.as_mut() {
            let before = aimd.share();
            aimd.answered_after(reservation.actual_start(), now.instant);
            aimd.accepted(reservation.actual_start());
            if aimd.share() != before {
                schedule.set_share(aimd.share(), now);
            }
        }
        let hint = hint.copied().unwrap_or_default();
        if let Some(count) = hint.second.filter(|_| self.trust.windows_believed()) {
            schedule.enter_windows(count.limit, now);
            schedule.observe_window(reservation, count.limit, count.remaining, now);
        }
        if let Some(reset) = quota_reset(&hint, None, now) {
            self.said_pause(schedule, reset, PauseReason::QuotaSpent, now);
        }
    }

    /// A rate-limit reply to the request booked as `reservation`: who waits,
    /// and until when.
    pub(super) fn rejected(
        &mut self,
        schedule: &mut Schedule,
        reservation: &Reservation,
        retry_after: Option<Duration>,
        hint: Option<&GatewayHint>,
        now: Now,
    ) -> Backoff {
        schedule.notice_time(now);
        let answered = self
            .run_answered_at
            .is_some_and(|cut| reservation.actual_start() < cut);
        if !answered {
            self.in_a_row += 1;
        }
        self.trust
            .replied(hint.is_some_and(|hint| hint.second.is_some()));
        let hint = hint.copied().unwrap_or_default();
        // 429s that the gateway explains (a spent quota, a long
        // Retry-After, a spent window whose counts window mode follows)
        // say nothing about the rate: AIMD counts only the others.
        if let Some(reset) = quota_reset(&hint, retry_after, now) {
            return self.said_pause(schedule, reset, PauseReason::QuotaSpent, now);
        }
        if let Some(wait) = retry_after.filter(|wait| *wait > ONE_WINDOW) {
            let reset = QuotaReset::after(wait, now);
            return self.said_pause(schedule, reset, PauseReason::RetryAfter, now);
        }
        let spent = hint.second.is_some_and(|count| count.remaining == 0);
        let shared = spent && schedule.spent_by_others(reservation, now);
        if spent
            && self
                .trust
                .spent_window(reservation.start, now.instant, shared)
        {
            if schedule.windows.is_none() {
                self.count_for_aimd(schedule, reservation, now);
            }
            return self.window_spent(schedule, hint, now);
        }
        let cut_pause = self.count_for_aimd(schedule, reservation, now);
        if schedule.windows.is_some() {
            // Window mode kept the budget the headers announced, yet a 429
            // that does not say the window is spent: another layer rejects.
            if self.trust.contradicted() {
                log::info!(
                    "429s while the rate-limit headers claim room: they describe another \
                     layer; pacing evenly from now on"
                );
                schedule.leave_windows(now);
            }
            return Backoff::Job {
                until: next_window(now, window::DEFAULT_GUARD),
            };
        }
        // Not on a shared schedule: its pause would hold every process on
        // the key, for one process's cut.
        if let Some(cut) = cut_pause.filter(|_| schedule.shared().is_none()) {
            let backoff = self.pause(schedule, cut.until, PauseReason::Persistent, now);
            if let Some(pacing) = schedule.pacing.as_mut() {
                pacing.delay(cut.first_start_later);
            }
            return backoff;
        }
        self.lone(schedule, reservation, retry_after, now)
    }

    /// AIMD sees every 429; a cut, or a failed probe, changes the rate in
    /// force. Returns, for a cut, until when every start should wait.
    fn count_for_aimd(
        &mut self,
        schedule: &mut Schedule,
        reservation: &Reservation,
        now: Now,
    ) -> Option<CutPause> {
        let aimd = self.aimd.as_mut()?;
        // The gap kept before the request before it, which passed, says
        // where a gateway counting gaps rejects; not where pacing bunches,
        // nor where window counts were seen.
        let gaps_count = reservation.min_gap.is_some() && self.trust.counts_gaps();
        let passed_gap = gaps_count
            .then(|| schedule.last_gap_before(reservation.start))
            .flatten();
        // Ordered as they left, not as booked: a success booked after a
        // rejected request but released before it does not break its run.
        match aimd.rejected(reservation.actual_start(), passed_gap, now.instant) {
            RateChange::None => None,
            RateChange::Cut => {
                schedule.set_share(aimd.share(), now);
                log::info!(
                    "429s persist at the paced rate: pacing at {:.0} % of the allotment",
                    aimd.share() * 100.0
                );
                Some(CutPause {
                    until: cut_pause(schedule, now),
                    first_start_later: Duration::ZERO,
                })
            }
            RateChange::SpentWindowCut { run_began } => {
                schedule.set_share(aimd.share(), now);
                // The pause answers the run: a 429 to a request sent after
                // the cut is the first of its own (a sliding estimate keeps
                // the window spent a little longer), not the run's next,
                // due a doubled pause.
                self.in_a_row = 0;
                self.run_answered_at = Some(now.instant);
                log::info!(
                    "429s in a row: the gateway's window is spent by clients together; \
                     pacing at {:.0} % of the allotment",
                    aimd.share() * 100.0
                );
                // Sent before the excess leaves the window, a request
                // would be rejected and, where rejections count, keep it there.
                let window_later = run_began + ONE_WINDOW + window::DEFAULT_GUARD;
                Some(CutPause {
                    until: window_later.max(cut_pause(schedule, now)),
                    first_start_later: resume_spread(schedule),
                })
            }
            RateChange::ProbeFailed => {
                schedule.set_share(aimd.share(), now);
                // The slots waiting to start were spaced for the probe.
                schedule.rebook(now);
                log::debug!(
                    "a 429 to a probe above the rate that passed: back to {:.1} % of the allotment",
                    aimd.share() * 100.0
                );
                None
            }
        }
    }

    /// The schedule is shared with other processes (see
    /// [`Aimd::share_schedule`]).
    pub(super) fn share_schedule(&mut self) {
        if let Some(aimd) = self.aimd.as_mut() {
            aimd.share_schedule();
        }
    }

    /// `Remaining` 0 with window headers: every start waits for the next
    /// window (with a wider guard if window mode already kept the budget).
    fn window_spent(&mut self, schedule: &mut Schedule, hint: GatewayHint, now: Now) -> Backoff {
        let limit = hint.second.map_or(u32::MAX, |count| count.limit);
        let guard = match schedule.windows.as_mut() {
            Some(windows) => {
                windows.widen_guard();
                windows.guard()
            }
            None => window::DEFAULT_GUARD,
        };
        if self.trust.windows_believed() && limit != u32::MAX {
            // The window is real: pace by it (a no-op if already).
            schedule.enter_windows(limit, now);
        }
        let until = next_window(now, guard);
        let window = now.since_epoch().as_secs();
        // A window that other clients on the key spent too says nothing of bursts.
        let alone = schedule.windows.as_ref().is_some_and(|w| !w.shared());
        if alone && self.trust.burst_spent(window) {
            log::info!(
                "window bursts spent two windows in a row: the gateway punishes bursts; \
                 pacing evenly from now on"
            );
            schedule.leave_windows(now);
        }
        self.pause(schedule, until, PauseReason::WindowSpent, now)
    }

    /// How many times 429s that persisted at the paced rate cut it.
    pub(super) fn rate_cuts(&self) -> u32 {
        self.aimd.as_ref().map_or(0, Aimd::cuts)
    }

    /// Whether the gateway counts gaps, not windows (see
    /// [`Trust::counts_gaps`]).
    pub(super) fn counts_gaps(&self) -> bool {
        self.trust.counts_gaps()
    }

    /// Whether any reply came yet (see [`Trust::has_replied`]).
    pub(super) fn has_replied(&self) -> bool {
        self.trust.has_replied()
    }

    /// A 429 nothing explains: a spacing error unless they keep coming.
    fn lone(
        &mut self,
        schedule: &mut Schedule,
        reservation: &Reservation,
        retry_after: Option<Duration>,
        now: Now,
    ) -> Backoff {
        schedule.hear_rounds(now.instant);
        let Some(pacing) = schedule.pacing.as_mut() else {
            // Concurrency mode: no pacing to blame; the job waits what the
            // gateway asked, or everyone backs off briefly.
            if let Some(wait) = retry_after {
                return Backoff::Job {
                    until: later(now.instant, wait),
                };
            }
            let pause =
                UNPACED_BLIND_PAUSE.saturating_mul(1 << self.in_a_row.saturating_sub(1).min(16));
            let until = later(now.instant, pause.min(MAX_BLIND_PAUSE));
            return self.pause(schedule, until, PauseReason::Persistent, now);
        };
        // Below the full share, 429s are the rate's (other clients on the
        // key, see AIMD), not jitter's: the margin stays.
        let widened = self.aimd.as_ref().is_none_or(|aimd| aimd.share() >= 1.0)
            && pacing.widen(reservation.start, now.instant);
        let interval = pacing.effective_interval();
        log::debug!(
            "lone 429: pacing margin now {:.2} %",
            pacing.margin() * 100.0
        );
        if let Some(shared) = schedule.shared().filter(|_| widened) {
            shared.slots().widened(reservation.start);
        }
        schedule.yield_phase();
        if self.in_a_row > 1 {
            let pause = interval.saturating_mul(1 << (self.in_a_row - 2).min(16));
            let until = later(now.instant, pause.min(MAX_BLIND_PAUSE));
            return self.pause(schedule, until, PauseReason::Persistent, now);
        }
        // Its own slot comes an interval later anyway; nothing says more.
        let wait = retry_after.unwrap_or_default().min(interval);
        Backoff::Job {
            until: later(now.instant, wait),
        }
    }

    /// Holds every start for a spent quota or a long `Retry-After`: until
    /// the gateway said, or for [`LONGEST_QUOTA_WAIT`] before the next try.
    fn said_pause(
        &mut self,
        schedule: &mut Schedule,
        reset: QuotaReset,
        reason: PauseReason,
        now: Now,
    ) -> Backoff {
        let until = reset.next_try;
        schedule.pause(until, now);
        self.pauses
            .record_said(until, Some(reset.resets), reason, now);
        Backoff::Everyone { until, reason }
    }

    /// Holds every start until `until`.
    fn pause(
        &mut self,
        schedule: &mut Schedule,
        until: Instant,
        reason: PauseReason,
        now: Now,
    ) -> Backoff {
        schedule.pause(until, now);
        self.pauses.record(until, reason, now);
        Backoff::Everyone { until, reason }
    }
}

/// After a cut every start waits a few allotted intervals, so that a
/// gateway counting over a window sees the excess leave it before the next
/// request instead of rejecting the next few too.
fn cut_pause(schedule: &Schedule, now: Now) -> Instant {
    let interval = schedule.rate.map_or(Duration::ZERO, |rate| rate.interval());
    let pause = interval.saturating_mul(CUT_PAUSE_INTERVALS);
    later(now.instant, pause.min(MAX_BLIND_PAUSE))
}

/// Every start waits `until`, after a cut; the first start after it a
/// little later still (`first_start_later`: the pacing's phase, not a
/// longer pause).
#[derive(Debug, Clone, Copy)]
struct CutPause {
    until: Instant,
    first_start_later: Duration,
}

/// A random part of one interval at the share just cut to: where in that
/// interval the first start after the pause for a window spent by clients
/// together comes. They spent it at once and cut at once: resuming at
/// once, they would find the window still spent together (a sliding
/// estimate that weighs the previous window clears a little after the
/// pause) and each draw a 429 for it, counted there too.
/// Four processes at 20/s on one key drew 7 429s so (of 34) in each of four
/// runs; spread, 25-38 in all over ten, 30.5 on average (scripts/pacing.sh
/// --procs 4 --kinds sliding 20; docs/measurements.md).
fn resume_spread(schedule: &Schedule) -> Duration {
    schedule.pacing.as_ref().map_or(Duration::ZERO, |pacing| {
        pacing.effective_interval().mul_f64(fastrand::f64())
    })
}

/// When a spent quota resets, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct QuotaReset {
    /// The reset on the wall clock.
    pub(super) resets: SystemTime,
    /// The reset, or an hour from now if that is sooner (a wrong header
    /// must not hold the run for good).
    pub(super) next_try: Instant,
}

/// A spent minute, hour, month...: when it resets. The gateway's word
/// first (`Retry-After`, then `RateLimit-Reset`), our clock's boundary as the
/// fallback, plus a small guard.
pub(super) fn quota_reset(
    hint: &GatewayHint,
    retry_after: Option<Duration>,
    now: Now,
) -> Option<QuotaReset> {
    let ours = hint.exhausted_for?;
    let said = retry_after.or(hint.reset);
    Some(QuotaReset::after(said.unwrap_or(ours) + QUOTA_GUARD, now))
}

impl QuotaReset {
    /// A reset `wait` from `now`; the next try at most an hour away.
    fn after(wait: Duration, now: Now) -> QuotaReset {
        QuotaReset {
            // A reset past what a SystemTime holds is a wrong header.
            resets: now
                .wall
                .checked_add(wait)
                .unwrap_or(now.wall + LONGEST_QUOTA_WAIT),
            next_try: later(now.instant, wait.min(LONGEST_QUOTA_WAIT)),
        }
    }
}

/// The start of the next wall-clock second after `now`, plus `guard`.
fn next_window(now: Now, guard: Duration) -> Instant {
    let wall = now.since_epoch();
    now.instant_of(Duration::from_secs(wall.as_secs() + 1) + guard)
}

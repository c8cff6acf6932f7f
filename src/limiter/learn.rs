//! Learning from replies: what an accepted or a rejected request says about
//! the gateway, as pure transitions of the [`Schedule`] (the time comes in
//! as a parameter; nothing sleeps or locks here).
//!
//! - rate-limit headers of a fixed one-second window (Kong) switch to window
//!   mode: up to the window's budget as early as each wall-clock second
//!   allows, lowered when the counts show others on the same key;
//! - a rejection without any header (nginx `limit_req`) widens the pacing
//!   interval a little; accepted requests narrow it again;
//! - `Retry-After`, or an exhausted longer window, pauses everybody.

use super::clock::{later, Now};
use super::hint::GatewayHint;
use super::reservation::{started_by, Reservation};
use super::schedule::Schedule;
use super::window::{self, Windows};
use std::time::{Duration, Instant};

/// Longest pause for rejections without any hint.
const MAX_BLIND_PAUSE: Duration = Duration::from_secs(1);
/// Blind pause without a rate to scale it by (concurrency mode).
const UNPACED_BLIND_PAUSE: Duration = Duration::from_millis(50);

impl Schedule {
    /// A reply the gateway let through (any status but a rate-limit one):
    /// its headers, if any, and that pacing was not too fast.
    pub(super) fn accepted(
        &mut self,
        reservation: &Reservation,
        hint: Option<&GatewayHint>,
        now: Now,
    ) {
        self.blind_rejections = 0;
        if let Some(pacing) = self.pacing.as_mut() {
            pacing.narrow();
        }
        if let Some(count) = hint.and_then(|h| h.second) {
            self.enter_windows(count.limit, now);
            if let (Some(windows), Some(slot)) = (self.windows.as_mut(), reservation.slot) {
                windows.observe(slot, count.limit, count.remaining);
            }
        }
        if let Some(wait) = hint.and_then(|h| h.exhausted_for) {
            self.pause(later(now.instant, wait), now);
        }
    }

    /// A rate-limit reply: pauses every start as long as the reply asks
    /// (`retry_after`), or as its headers imply. With no hint at all
    /// (nginx), the pacing widens; a second rejection with no acceptance in
    /// between pauses briefly, longer with each one in a row.
    pub(super) fn rejected(
        &mut self,
        retry_after: Option<Duration>,
        hint: Option<&GatewayHint>,
        now: Now,
    ) {
        let hint = hint.copied().unwrap_or_default();
        let resume = if let Some(wait) = hint.exhausted_for {
            Some(later(now.instant, wait))
        } else if let Some(count) = hint.second.filter(|count| count.remaining == 0) {
            // A window gateway that is full: wait for its next window. (A
            // rejection while the window still has room has another cause,
            // and is handled below like one without headers.)
            Some(self.full_window(count.limit, now))
        } else if retry_after == Some(Duration::from_secs(1)) {
            // Whole seconds are all the header can say: "1" on a
            // per-second limit means the next window, often sooner.
            Some(next_window(now, window::DEFAULT_GUARD))
        } else if let Some(wait) = retry_after {
            Some(later(now.instant, wait))
        } else {
            self.blind_rejection(now)
        };
        if let Some(resume) = resume {
            self.pause(resume, now);
        }
    }

    /// A full window of `limit`: window mode (a guard wider if it was on
    /// already), and the start of the next window.
    fn full_window(&mut self, limit: u32, now: Now) -> Instant {
        let was_windowed = self.windows.is_some();
        self.enter_windows(limit, now);
        let guard = match self.windows.as_mut() {
            Some(windows) => {
                if was_windowed {
                    windows.widen_guard();
                }
                windows.guard()
            }
            None => window::DEFAULT_GUARD,
        };
        next_window(now, guard)
    }

    /// A rejection nothing explained: widen the margin; pause from the
    /// second in a row on, when to resume.
    fn blind_rejection(&mut self, now: Now) -> Option<Instant> {
        self.blind_rejections += 1;
        let rejections = self.blind_rejections;
        match self.pacing.as_mut() {
            Some(pacing) => {
                pacing.widen();
                log::debug!(
                    "rejected without a hint: pacing margin now {:.2} %",
                    pacing.margin() * 100.0
                );
                // A leaky bucket did not count the rejected request: the
                // next slot is fine, so the first one costs no pause.
                (rejections > 1).then(|| {
                    let pause = pacing
                        .effective_interval()
                        .saturating_mul(1 << (rejections - 2).min(16));
                    later(now.instant, pause.min(MAX_BLIND_PAUSE))
                })
            }
            None => {
                let pause = UNPACED_BLIND_PAUSE.saturating_mul(1 << (rejections - 1).min(16));
                Some(later(now.instant, pause.min(MAX_BLIND_PAUSE)))
            }
        }
    }

    /// Switches to window mode with `limit` per window (capped by our rate).
    /// Slots booked by even pacing that have not started yet are void, so
    /// their holders book again by window.
    pub(super) fn enter_windows(&mut self, limit: u32, now: Now) {
        let Some(rate) = self.rate else { return };
        let budget = rate.per_window().min(limit);
        if budget == 0 {
            return;
        }
        if let Some(windows) = self.windows.as_mut() {
            windows.set_budget(budget);
            return;
        }
        let window = now.since_epoch().as_secs();
        let started_in_window = self
            .recent_paced
            .iter()
            .filter(|booked| {
                started_by(booked.start, now.instant)
                    && now.since_epoch_at(booked.start).as_secs() == window
            })
            .count();
        let mut windows = Windows::new(budget);
        windows.count_booked(window, u32::try_from(started_in_window).unwrap_or(u32::MAX));
        self.windows = Some(windows);
        self.recent_paced.clear();
        self.next_generation();
        log::debug!("the gateway counts {limit} per wall-clock second: pacing {budget} per window");
    }
}

/// The start of the next wall-clock second after `now`, plus `guard`.
fn next_window(now: Now, guard: Duration) -> Instant {
    let wall = now.since_epoch();
    now.instant_of(Duration::from_secs(wall.as_secs() + 1) + guard)
}

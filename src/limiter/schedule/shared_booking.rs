//! Booking on a schedule shared with other processes (see
//! `limiter/shared.rs`): what to ask it for, outside the limiter's lock,
//! and the reservation its slot becomes.

use super::Schedule;
use crate::limiter::clock::Now;
use crate::limiter::reservation::Reservation;
use crate::limiter::shared::{SharedPacing, SharedSlot};
use std::time::{Duration, Instant};

/// A pause heard from the shared schedule that ends this little after the
/// one known is the same pause: ours, read back through the clock mapping
/// (off by half a round trip at most, tens of microseconds on a LAN). A
/// review counted 42 bookings for 40 starts after one pause of ours when
/// any later end started a new generation (voiding the slots booked since).
/// Tighter than the 50 ms within which such a pause is not said again
/// (`pause_record.rs`): a slot may start no earlier than another's pause
/// ends by more than this.
const SAME_PAUSE_WITHIN: Duration = Duration::from_millis(1);

/// A slot to ask the shared schedule for (see [`Schedule::ask_shared_at`]).
pub(in crate::limiter) struct SharedAsk {
    pub(in crate::limiter) shared: SharedPacing,
    earliest: Instant,
    pub(in crate::limiter) increment: Duration,
    /// The gap kept after the previous actual start: the increment
    /// without the slack (see `lateness.rs`).
    gap: Duration,
    generation: u64,
}

impl SharedAsk {
    /// Books the slot on the shared schedule (a Redis round trip, maybe).
    pub(in crate::limiter) fn reserve(&self) -> SharedSlot {
        self.shared.slots().reserve(self.earliest, self.increment)
    }
}

impl Schedule {
    /// Books even starts on `shared` from now on; no window mode, no
    /// first start aligned to a second (the schedule is everybody's).
    pub(in crate::limiter) fn set_shared(&mut self, shared: SharedPacing) {
        let widest = shared.slots().widest_margin();
        self.shared = Some(shared);
        self.align_start = false;
        if let Some(pacing) = self.pacing.as_mut() {
            pacing.share_schedule();
            if let Some(widest) = widest {
                pacing.start_from(widest);
            }
        }
    }

    /// A start booked for `slot` on the shared schedule was made at
    /// `started`.
    pub(in crate::limiter) fn started_on_shared(&mut self, slot: Instant, started: Instant) {
        if self.shared.is_some() {
            self.lateness.observe(slot, started);
        }
    }

    /// The pause in force on the shared schedule that the last slot named
    /// (any process's, ours included), once: for the books of pauses.
    pub(in crate::limiter) fn take_shared_pause_heard(&mut self) -> Option<Instant> {
        self.shared_pause_heard.take()
    }

    /// Widens our margin for the rounds of rejections other holders told of
    /// since we last looked; our requests that start up to `at` count as
    /// that round (a 429 of ours that comes back meanwhile is the same
    /// round, not another). Rounds heard all at once (a burst of jitter
    /// somewhere) widen at most twice: a burst is not a trend.
    pub(in crate::limiter) fn hear_rounds(&mut self, at: Instant) {
        let (Some(shared), Some(pacing)) = (self.shared.as_ref(), self.pacing.as_mut()) else {
            return;
        };
        let Some(heard) = shared.slots().rounds_heard() else {
            return;
        };
        let new_rounds = heard.saturating_sub(self.rounds_heard);
        for _ in 0..new_rounds.min(2) {
            pacing.widen_heard(at);
        }
        if new_rounds > 0 {
            // As for a round of our own (`learn.rs`): to follow the margin.
            log::debug!(
                "{new_rounds} round(s) of 429s heard from the key's other processes: pacing \
                 margin now {:.2} %",
                pacing.margin() * 100.0
            );
        }
        self.rounds_heard = self.rounds_heard.max(heard);
    }

    /// The schedule shared with other processes, if any.
    pub(in crate::limiter) fn shared(&self) -> Option<&SharedPacing> {
        self.shared.as_ref()
    }

    /// Books on the shared schedule, if there is one and we pace. A pause
    /// that another process set voids the slots we booked before it.
    pub(super) fn book_shared(&mut self, earliest: Instant) -> Option<Reservation> {
        let ask = self.shared_ask(earliest)?;
        let slot = ask.shared.slots().reserve(ask.earliest, ask.increment);
        Some(self.take_shared(&ask, slot))
    }

    /// What to ask the shared schedule for a slot at or after `now`, so that
    /// the caller can ask it without holding the limiter's lock (a Redis
    /// round trip); `None` when there is no shared schedule or the start is
    /// to be aligned (then [`Schedule::book`]).
    pub(in crate::limiter) fn ask_shared_at(&mut self, now: Now) -> Option<SharedAsk> {
        if self.shared.is_none() || self.align_start || self.pacing.is_none() {
            return None;
        }
        self.notice_time(now);
        let earliest = self
            .paused_until
            .map_or(now.instant, |until| now.instant.max(until));
        self.shared_ask(earliest)
    }

    fn shared_ask(&mut self, earliest: Instant) -> Option<SharedAsk> {
        let shared = self.shared.clone()?;
        self.hear_rounds(earliest);
        let pacing = self.pacing.as_mut()?;
        shared.slots().margin_in_use(pacing.margin());
        let gap = pacing.next_increment();
        Some(SharedAsk {
            shared,
            earliest,
            increment: gap + self.lateness.slack(gap),
            gap,
            generation: self.generation,
        })
    }

    /// The reservation for the shared `slot` that `ask` got. A pause set
    /// here while the slot was asked for (the lock released) voids it.
    pub(in crate::limiter) fn take_shared(
        &mut self,
        ask: &SharedAsk,
        slot: SharedSlot,
    ) -> Reservation {
        let stale = self.generation != ask.generation;
        if let Some(until) = slot.paused_until {
            self.shared_pause_heard = Some(until);
            // Within the clock mapping's error of the pause known, it is
            // that pause (ours, read back), not a later one.
            if self
                .paused_until
                .is_none_or(|known| until > known + SAME_PAUSE_WITHIN)
            {
                self.paused_until = Some(until);
                self.next_generation();
            }
        }
        let bunches = self.rate.is_some_and(|r| r.burst().get() > 1);
        Reservation {
            // A turn is a time to ask again, before `earliest` if the
            // schedule books that far ahead.
            start: if slot.turn {
                slot.start
            } else {
                slot.start.max(ask.earliest)
            },
            generation: if stale {
                ask.generation
            } else {
                self.generation
            },
            slot: None,
            min_gap: (!bunches && !slot.turn).then_some(ask.gap),
            closes: None,
            turn: slot.turn,
            seq: slot.seq,
            released: None,
        }
    }
}

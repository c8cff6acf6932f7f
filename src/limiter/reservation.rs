//! A booked start slot, and the rule by which a pause voids it.

use super::window::WindowSlot;
use std::time::{Duration, Instant};

/// A start slot handed out by [`Limiter::reserve_at`](super::Limiter::reserve_at).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// When the request may start.
    pub start: Instant,
    /// The generation of the schedule the slot belongs to; a pause or a
    /// switch of model starts a new one.
    pub(super) generation: u64,
    /// The one-second window the start falls in, and its place there.
    pub(super) slot: Option<WindowSlot>,
    /// In even pacing: the least time since the previous actual start.
    pub(super) min_gap: Option<Duration>,
    /// In window mode: when the slot's window stops taking starts.
    pub(super) closes: Option<Instant>,
    /// Not a slot but a turn: on a shared schedule, book again at `start`
    /// (so a process holds few slots ahead; see [`Reservation::is_turn`]).
    pub(super) turn: bool,
    /// On a schedule that numbers its slots (a shared one): this slot's
    /// number. The start waits to hear that the slot before it started.
    pub(super) seq: Option<u64>,
    /// When [`Limiter::acquire`](super::Limiter::acquire) let the request
    /// go: after `start`, and not always in booked order (threads whose
    /// slots have passed race to keep the gap after the last start).
    pub(super) released: Option<Instant>,
}

impl Reservation {
    /// An unpaced slot: only a pause held it back.
    pub(super) fn unpaced(start: Instant, generation: u64) -> Reservation {
        Reservation {
            start,
            generation,
            slot: None,
            min_gap: None,
            closes: None,
            turn: false,
            seq: None,
            released: None,
        }
    }

    /// Whether this is a turn rather than a slot: with a shared schedule
    /// the limiter books a start only when this process's previous one is
    /// near, so it never holds many slots that others could have used (a
    /// pause or an exit would waste them). A turn says "book again at
    /// `start`"; [`Limiter::acquire`](super::Limiter::acquire) does that.
    pub fn is_turn(&self) -> bool {
        self.turn
    }

    /// When the request started: as released, or as booked for a slot that
    /// was not waited for (reserved directly).
    pub(super) fn actual_start(&self) -> Instant {
        self.released.unwrap_or(self.start)
    }
}

/// A pause decided at `at`, which began schedule generation `generation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    /// When the pause was decided.
    pub at: Instant,
    /// The generation it began.
    pub generation: u64,
}

impl Pause {
    /// Whether this pause voids `reservation`: a slot booked before the
    /// pause that had not started by the time it was decided. (A slot that
    /// had started is a request on the wire; nothing can call it back.) Its
    /// holder books again.
    pub fn voids(&self, reservation: &Reservation) -> bool {
        reservation.generation < self.generation && !started_by(reservation.start, self.at)
    }
}

/// Whether a start booked at `start` has happened by `at`.
pub(super) fn started_by(start: Instant, at: Instant) -> bool {
    start <= at
}

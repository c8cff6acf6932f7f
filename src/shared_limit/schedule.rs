//! [`SharedSchedule`]: start slots from Redis, or a safe local share of the
//! rate while Redis is out of reach.
//!
//! While Redis is lost each process paces itself at the rate divided by the
//! number of live processes its heartbeats saw last, so together they stay
//! within the allotment; the heartbeat thread reconnects and the next
//! reservation is shared again. Nothing here touches jobs: a lost Redis
//! only changes *when* a request starts, never whether it runs.
//!
//! A process books a slot, in Redis or in the fallback, only when its
//! previous one is near (within [`LOOKAHEAD`] plus an interval); until then
//! a caller gets a *turn*: ask again then. Without that, each waiting thread would hold a slot, a
//! process with many threads would hold seconds of the schedule ahead, and
//! a pause or a killed process would waste all of it.
//!
//! Back from a loss, a process keeps its own starts a local share apart
//! for a while ([`SharedSchedule::book`]): the others come back one by one,
//! each on its own heartbeat's next try, up to a heartbeat period (and a
//! connect timeout) later, and pace at their local share until then.

use super::client::SharedLimit;
use super::error::SharedLimitError;
use crate::limiter::{Rate, SharedSlot, SharedSlots};
use parking_lot::Mutex;
use std::time::{Duration, Instant};

/// How far ahead of now (plus one interval) a process holds its last slot
/// before it may book another: well above a Redis round trip, even the
/// slow ones of a loaded machine (tens of ms: measured by
/// scripts/shared_limit.sh), or the schedule runs dry between bookings.
pub const LOOKAHEAD: Duration = Duration::from_millis(50);

/// How long after its return from a loss a process keeps its own starts a
/// local share apart, beyond the longest another can take to come back
/// ([`SharedLimit::longest_return`]; measured by a review, two processes
/// came back 0.45 s apart, and the first, alone on the shared schedule,
/// took the whole rate beside the other's local share).
const RETURN_GRACE_MARGIN: Duration = Duration::from_millis(500);

/// A booked start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Booking {
    /// When the request may start.
    pub start: Instant,
    /// The end of a pause another process (or this one) set in Redis.
    pub paused_until: Option<Instant>,
    /// Whether the slot came from Redis (`false`: the local fallback).
    pub shared: bool,
    /// Not a slot but a turn: book again at `start`.
    pub turn: bool,
    /// The slot's number on the shared schedule (`None`: a turn, or a slot
    /// of the local fallback).
    pub seq: Option<u64>,
}

impl Booking {
    /// A turn on the shared schedule: book again at `at`.
    fn turn(at: Instant) -> Booking {
        Booking {
            start: at,
            paused_until: None,
            shared: true,
            turn: true,
            seq: None,
        }
    }
}

/// Slots from a [`SharedLimit`], with the local fallback.
#[derive(Debug)]
pub struct SharedSchedule {
    limit: SharedLimit,
    /// The fallback's next free slot (GCRA without burst).
    local_next: Mutex<Option<Instant>>,
    /// The fallback's latest slot booked.
    local_last: Mutex<Option<Instant>>,
    /// The latest start this process booked in Redis.
    last_shared: Mutex<Option<Instant>>,
    /// Where this process stands after a loss of Redis (`None`: no loss,
    /// or everyone can be back by now).
    after_loss: Mutex<Option<AfterLoss>>,
}

/// A process's state after a loss of Redis.
#[derive(Debug, Clone, Copy)]
enum AfterLoss {
    /// On the local fallback, at this share.
    Local { share: Duration },
    /// Back on Redis: our own starts keep the local share apart until
    /// every other process can be back too.
    Returning { until: Instant, share: Duration },
}

impl SharedSchedule {
    /// Schedules through `limit`.
    pub fn new(limit: SharedLimit) -> SharedSchedule {
        SharedSchedule {
            limit,
            local_next: Mutex::new(None),
            local_last: Mutex::new(None),
            last_shared: Mutex::new(None),
            after_loss: Mutex::new(None),
        }
    }

    /// The Redis handle (round trips, peers, URL).
    pub fn limit(&self) -> &SharedLimit {
        &self.limit
    }

    /// Books the first slot at or after `earliest`, `interval` (this
    /// process's, margin included) after the previous one of any process.
    pub fn book(&self, earliest: Instant, interval: Duration) -> Booking {
        let now = Instant::now();
        let horizon = now + LOOKAHEAD + interval;
        let mut last_shared = self.last_shared.lock();
        if let Some(last) = last_shared.filter(|last| *last > horizon) {
            return Booking::turn(last - LOOKAHEAD - interval);
        }
        if earliest > horizon && self.limit.is_connected() {
            // Not yet (a pause of ours): a slot held in Redis until then
            // would hold every process's slots behind it, and a pause that
            // Redis never heard of (set while it was lost: measured, half a
            // second with no start by anyone after a reconnection) would
            // stop them all. A pause that Redis has holds them anyway. Ask
            // again a look-ahead before it (within the horizon then).
            return Booking::turn(earliest - LOOKAHEAD);
        }
        let allotted = self.limit.rate().interval();
        let margin = (interval.as_secs_f64() / allotted.as_secs_f64()).max(1.0);
        // Back from a loss: the local slots handed out still stand, and a
        // Redis that restarted knows none of them; the shared schedule
        // goes on after them, for every process. And a slot before
        // `earliest` (a pause of ours about to start, which may reach
        // Redis a moment after this booking) would only be wasted, and
        // crowd the first slots after the pause.
        let local_end = *self.local_next.lock();
        let mut floor = local_end.map_or(earliest, |end| end.max(earliest));
        // Back from a loss, while others may still pace at their local
        // share: ours too, or the first back takes the whole rate beside
        // them. (A floor in Redis holds only those back, who come after.)
        let returning = self.returning_share(now);
        if let (Some(share), Some(last)) = (returning, *last_shared) {
            floor = floor.max(last + share);
            if floor > horizon {
                return Booking::turn(floor - LOOKAHEAD - interval);
            }
        }
        match self.limit.reserve_after(interval, margin, Some(floor)) {
            Ok(grant) => {
                *last_shared = Some(last_shared.map_or(grant.start, |l| l.max(grant.start)));
                let mut after_loss = self.after_loss.lock();
                if let Some(AfterLoss::Local { share }) = *after_loss {
                    let until = now + self.limit.longest_return() + RETURN_GRACE_MARGIN;
                    *after_loss = Some(AfterLoss::Returning { until, share });
                }
                drop(after_loss);
                self.local_next.lock().take();
                Booking {
                    start: grant.start.max(earliest).max(local_end.unwrap_or(earliest)),
                    paused_until: grant.paused_until,
                    shared: true,
                    turn: false,
                    seq: Some(grant.seq),
                }
            }
            Err(error) => self.book_local(&mut last_shared, &error, earliest, interval, margin),
        }
    }

    /// The local share our own starts keep apart, back from a loss;
    /// `None` once every process can be back.
    fn returning_share(&self, now: Instant) -> Option<Duration> {
        let mut after_loss = self.after_loss.lock();
        match *after_loss {
            Some(AfterLoss::Returning { until, share }) if until > now => Some(share),
            Some(AfterLoss::Returning { .. }) => {
                *after_loss = None;
                None
            }
            _ => None,
        }
    }

    /// Books a slot of the local fallback while Redis is lost, after the
    /// slots booked in Redis before the loss (`last_shared`, which stand).
    fn book_local(
        &self,
        last_shared: &mut Option<Instant>,
        error: &SharedLimitError,
        earliest: Instant,
        interval: Duration,
        margin: f64,
    ) -> Booking {
        // Every process's share at the slowest rate among them (the
        // schedule paced at it), with our margin.
        let peers = self.limit.peers();
        let slowest = peers.slowest.mul_f64(margin).max(interval);
        let share = slowest.saturating_mul(peers.live.max(1));
        if let Some(rate) = Rate::per_second(1.0 / share.as_secs_f64()) {
            self.limit.note_lost(error, rate);
        }
        let mut next = self.local_next.lock();
        let after_shared = last_shared.map_or(earliest, |last| last + share);
        // Not before now: a call that failed slowly (a Redis that hangs,
        // its timeout) left `earliest` and the last slots in the past, and
        // every thread that waited behind it got one of them, the local
        // share kept by none (a review: two processes at the full rate for
        // 0.7 s after the loss, 429s).
        let now = Instant::now();
        let start = next
            .map_or(earliest, |free| free.max(earliest))
            .max(after_shared)
            .max(now);
        // As on Redis, a slot only when it is near: otherwise each waiting
        // thread would hold one, and the local slots would run seconds
        // ahead, all of which the return to the shared schedule waits for.
        let turn = start > now + LOOKAHEAD + share;
        if !turn {
            *last_shared = None;
            *next = Some(start + share);
            *self.local_last.lock() = Some(start);
            *self.after_loss.lock() = Some(AfterLoss::Local { share });
        }
        Booking {
            start: if turn {
                start - LOOKAHEAD - share
            } else {
                start
            },
            paused_until: None,
            shared: false,
            turn,
            seq: None,
        }
    }

    /// Tells every process to hold its starts until `until`. While Redis is
    /// lost only this process pauses (its caller does that anyway).
    pub fn pause(&self, until: Instant, reason: &str) -> Option<Instant> {
        // Our slots are void now (the limiter books again): no turn waits
        // for them, and the latest local slot, if still to come, is free
        // again (kept,
        // each waiting thread's slot would push the first start after the
        // pause seconds further). One that has come is not: its request
        // left, and the next keeps a whole share after it. (A pause of an
        // interval after two 429s in a row, set from its end, put this
        // process's local slots onto another's: traced in a restart run
        // of scripts/shared_limit.sh, 23 429s in the 3 s of the loss.)
        *self.last_shared.lock() = None;
        let mut next = self.local_next.lock();
        let now = Instant::now();
        let kept = match (*self.local_last.lock(), *next) {
            (Some(last), Some(after)) if last <= now => Some(after),
            (Some(last), _) if last > now => Some(last),
            _ => None,
        };
        *next = Some(kept.map_or(until, |kept| kept.max(until)));
        drop(next);
        self.limit.pause(until, reason).ok()
    }
}

impl SharedSlots for SharedSchedule {
    fn reserve(&self, earliest: Instant, increment: Duration) -> SharedSlot {
        let booking = self.book(earliest, increment);
        if booking.turn {
            return SharedSlot::turn(booking.start);
        }
        let slot = SharedSlot::new(booking.start, booking.paused_until);
        match booking.seq {
            Some(seq) => slot.numbered(seq),
            None => slot,
        }
    }

    fn pause(&self, until: Instant, reason: &str) {
        SharedSchedule::pause(self, until, reason);
    }

    fn started(&self, at: Instant, seq: Option<u64>) {
        self.limit.started(at, seq);
    }

    fn slot_started(&self, seq: u64) -> bool {
        self.limit.slot_started(seq)
    }

    fn slot_unheard(&self, seq: u64) -> bool {
        self.limit.slot_unheard(seq)
    }

    fn started_elsewhere(&self) -> Option<Instant> {
        self.limit.started_elsewhere()
    }

    fn widened(&self, started: Instant) {
        self.limit.widened(started);
    }

    fn rounds_heard(&self) -> Option<u64> {
        self.limit.rounds_heard()
    }

    fn margin_in_use(&self, margin: f64) {
        self.limit.note_margin(margin);
    }

    fn widest_margin(&self) -> Option<f64> {
        self.limit.peers().widest_margin
    }

    fn holders(&self) -> u32 {
        self.limit.peers().live
    }

    fn rate(&self) -> Option<Rate> {
        Some(self.limit.rate())
    }
}

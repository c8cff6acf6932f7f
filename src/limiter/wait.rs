//! Waiting for a slot: [`Limiter::acquire`] books, sleeps until the slot,
//! spins its last microseconds, keeps the gap since the previous actual
//! start, and wakes early when a pause voids the slot or the run stops.
//! All time is read from and spent on the limiter's [`Clock`].

use super::clock::{later, Clock};
use super::pacing::startup_allowance;
use super::reservation::Reservation;
use super::start_trace::{self, StartTrace};
use super::{Limiter, SharedPacing, Stopped};
use crate::stop::Stop;
use parking_lot::MutexGuard;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Starts after a slot that could not be heard that keep a start-up
/// allowance: a process's first few, while it joins (see `hear_previous`).
pub(super) const UNHEARD_ALLOWANCES: u32 = 8;

/// Longest a caller sleeps in [`Limiter::acquire`] between looks at its
/// stop signal (one the pool does not interrupt).
pub const STOP_POLL: Duration = Duration::from_secs(1);
/// The end of a wait is spun, not slept: a timed sleep wakes up to ~100 us
/// late and unevenly, and a leaky-bucket gateway rejects a request that
/// comes even slightly early after a late one.
const SPIN: Duration = Duration::from_micros(80);

/// A start told to the other holders of a shared schedule is told again
/// if telling held it up longer than this (see [`Limiter::tell_others`]),
/// at most this many times in all.
const RETELL_AFTER: Duration = Duration::from_micros(200);
const RETELLS: u32 = 3;

/// How often a start waiting to hear that the slot before it started looks
/// again (it waits one gap at most: see [`Limiter::hear_previous`]).
const HEAR_POLL: Duration = Duration::from_micros(50);
/// A start told of further ahead of our clock than this is a clock mapping
/// gone wrong (a real one is in the past, give or take the mapping's error
/// of tens of microseconds): no gap is kept after it.
const AHEAD: Duration = Duration::from_millis(1);

/// What became of one booked slot.
enum Waited {
    /// The slot's time came: start now.
    Start(Reservation),
    /// The slot was voided (a pause, a switch of model, a missed window):
    /// book again.
    Rebook,
}

impl<C: Clock> Limiter<C> {
    /// Blocks until the caller may start a request, or `stop` is given. A
    /// caller whose slot a pause or a switch of mode voids wakes at once and
    /// books again.
    ///
    /// # Errors
    /// [`Stopped`] when the stop signal was given (noticed within
    /// [`STOP_POLL`], at once after [`Limiter::interrupt`]).
    pub fn acquire(&self, stop: &Stop) -> Result<Reservation, Stopped> {
        super::departure::began(None);
        loop {
            if let Waited::Start(reservation) = self.wait_for_slot(stop)? {
                return Ok(reservation);
            }
        }
    }

    /// Books one slot and waits for it.
    fn wait_for_slot(&self, stop: &Stop) -> Result<Waited, Stopped> {
        let mut state = self.state.lock();
        if stop.is_stopped() || state.interrupted {
            return Err(Stopped);
        }
        let before = state.schedule.generation();
        let reservation = self.book(&mut state);
        if reservation.generation != before {
            // A pause learned from a shared schedule voided other slots.
            self.wake.notify_all();
        }
        loop {
            let now = self.clock.now().instant;
            if reservation.start <= now + SPIN {
                if reservation.turn {
                    return Ok(Waited::Rebook);
                }
                if reservation.closes.is_some_and(|closes| now >= closes) {
                    // Woken too late for its window (a busy machine): a
                    // start now would count in the next one.
                    return Ok(Waited::Rebook);
                }
                let others = self.gap_holders(&state);
                drop(state);
                self.clock.spin_until(reservation.start);
                if let Some(gap) = reservation.min_gap {
                    if !self.keep_gap(gap, others.as_ref(), &reservation, stop) {
                        return Err(Stopped);
                    }
                }
                let started = self.clock.now().instant;
                let mut state = self.state.lock();
                if state.interrupted {
                    return Err(Stopped);
                }
                if reservation.min_gap.is_some() {
                    state.schedule.started_on_shared(reservation.start, started);
                }
                // Paused while keeping the gap: book again.
                let current = state.schedule.generation() == reservation.generation;
                return Ok(if current {
                    Waited::Start(Reservation {
                        released: Some(started),
                        ..reservation
                    })
                } else {
                    Waited::Rebook
                });
            }
            let deadline = (reservation.start - SPIN).min(now + STOP_POLL);
            self.clock.wait_until(&self.wake, &mut state, deadline);
            if stop.is_stopped() || state.interrupted {
                return Err(Stopped);
            }
            if state.schedule.notice_time(self.clock.now()) {
                // The wall clock stepped back: every window slot is void.
                self.wake.notify_all();
            }
            if state.schedule.generation() != reservation.generation {
                return Ok(Waited::Rebook);
            }
        }
    }

    /// The shared schedule, if starts keep their gap after its other
    /// holders' starts too: gaps after other processes' starts matter to a
    /// leaky bucket; a gateway counting windows does not need them, and a
    /// start held after another's could crowd a window. Before any reply
    /// the gateway may be either: a joining process's first request, sent
    /// at its slot right after another's that left late, drew a leaky
    /// bucket's 429 (traced, 8 processes at 20/s); on a window gateway the
    /// gap holds a first start an interval at most.
    fn gap_holders(&self, state: &super::State) -> Option<SharedPacing> {
        let learner = &state.learner;
        state
            .schedule
            .shared()
            .filter(|_| learner.counts_gaps() || !learner.has_replied())
            .cloned()
    }

    /// Books a slot; a slot of the shared schedule is asked for with the
    /// lock released: its answer takes a Redis round trip, and every thread
    /// whose slot comes meanwhile would wait for it to start (measured:
    /// starts bunched behind round trips of up to tens of ms on a loaded
    /// machine).
    fn book(&self, state: &mut MutexGuard<'_, super::State>) -> Reservation {
        match state.schedule.ask_shared_at(self.clock.now()) {
            Some(ask) => {
                let slot = MutexGuard::unlocked(state, || ask.reserve());
                let reservation = state.schedule.take_shared(&ask, slot);
                state.note_shared_pause(|| self.clock.now());
                reservation
            }
            None => state.schedule.book(self.clock.now()),
        }
    }

    /// Waits until `gap` has passed since the previous paced start, and
    /// records this one: scheduling delays on a busy machine would otherwise
    /// put a late start and an on-time one less than an interval apart.
    /// With a shared schedule (`others`) the previous start may be another
    /// process's, told through the schedule; ours is told to the others,
    /// with our slot's number `seq`, and first we wait to hear that the
    /// slot before ours started. Returns `false` if `stop` was given while
    /// waiting.
    fn keep_gap(
        &self,
        gap: Duration,
        others: Option<&SharedPacing>,
        slot: &Reservation,
        stop: &Stop,
    ) -> bool {
        if let (Some(shared), Some(seq)) = (others, slot.seq) {
            if !self.hear_previous(shared, (slot.start, seq), gap, stop) {
                return false;
            }
        }
        let gap = nanos(gap);
        loop {
            let previous = self.last_start.load(Ordering::Acquire);
            let now = self.since_epoch(self.clock.now().instant);
            let own = match previous {
                0 => 0,
                one_up => (one_up - 1).saturating_add(gap),
            };
            let earliest = own.max(self.after_others(others, gap, now));
            if now < earliest {
                let at = |nanos: u64| self.epoch + Duration::from_nanos(nanos);
                if earliest - now > nanos(SPIN)
                    && !self.clock.sleep_until(stop, at(earliest - nanos(SPIN)))
                {
                    return false;
                }
                self.clock.spin_until(at(earliest));
                continue;
            }
            // Stored one up: 0 means no start yet.
            let started = now.saturating_add(1);
            if self
                .last_start
                .compare_exchange(previous, started, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                super::departure::began(Some(self.epoch + Duration::from_nanos(now)));
                // Read as the start is made, written once it is told.
                let trace = self.start_trace(slot, now, own, others, gap);
                if let Some(shared) = others {
                    self.tell_others(shared, now, slot.seq);
                }
                if let Some(trace) = trace {
                    log::trace!(target: start_trace::TARGET, "{trace}");
                }
                return true;
            }
        }
    }

    /// Waits, one `gap` at most, until slot `seq - 1` of the shared
    /// schedule is known to have started (here or elsewhere): slots are
    /// numbered in the order of their starts, and a holder that woke late
    /// for its slot may have started a moment ago, not yet heard. Measured
    /// (2-4 processes at 100/s, a trace of every start): 28-42 % of the
    /// 429s left came less than an interval after such a start; with the
    /// wait, 2-8 processes at 100/s drew 1.1 % 429s instead of 1.8 %
    /// (scripts/shared_limit.sh, back to back). A slot
    /// that never starts (voided by a pause, its process killed) costs the
    /// next one the wait. A slot whose start could not be heard (we have
    /// heard no other holder yet) costs a start-up allowance instead.
    /// Returns `false` if `stop` was given.
    fn hear_previous(
        &self,
        shared: &SharedPacing,
        (slot, seq): (Instant, u64),
        gap: Duration,
        stop: &Stop,
    ) -> bool {
        let Some(previous) = seq.checked_sub(1).filter(|previous| *previous > 0) else {
            return true;
        };
        if shared.slots().slot_unheard(previous) && self.take_unheard_allowance() {
            // Just joined: the slot before may have started late, and
            // would not have been heard (traced, 8 processes at 20/s: a
            // joining process's first start came 160-280 us short of the
            // interval after another's request that had opened a
            // connection, and drew a 429).
            return self
                .clock
                .sleep_until(stop, later(slot, startup_allowance(gap)));
        }
        let now = self.clock.now().instant;
        let deadline = now + gap;
        // Ours keeps the gap after the latest start known anyway, and that
        // of the slot before came later: no need to look before then.
        let known = match self.last_start.load(Ordering::Acquire) {
            0 => None,
            one_up => Some(self.epoch + Duration::from_nanos(one_up - 1)),
        };
        let latest = known.max(shared.slots().started_elsewhere());
        if let Some(latest) = latest.filter(|latest| *latest <= now) {
            let quiet = (latest + gap).min(deadline);
            if !shared.slots().slot_started(previous) && !self.clock.sleep_until(stop, quiet) {
                return false;
            }
        }
        loop {
            if shared.slots().slot_started(previous) {
                return true;
            }
            let now = self.clock.now().instant;
            if now >= deadline {
                return true;
            }
            if !self
                .clock
                .sleep_until(stop, (now + HEAR_POLL).min(deadline))
            {
                return false;
            }
        }
    }

    /// One of the start-up allowances for a start after a slot that could
    /// not be heard, if any is left: a process that cannot hear the others
    /// for good (a Redis without pub/sub, say) pays them only while it
    /// joins, not at every start.
    fn take_unheard_allowance(&self) -> bool {
        self.unheard_allowances
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(1)
            })
            .is_ok()
    }

    /// The earliest start (nanoseconds since `epoch`, 0: any) that keeps
    /// the gap after the latest start another holder of the shared
    /// schedule told of, as of `now`: the same gap as after our own. One
    /// told of ahead of `now` by more than [`AHEAD`] is ignored.
    fn after_others(&self, others: Option<&SharedPacing>, gap: u64, now: u64) -> u64 {
        let Some(other) = others.and_then(|shared| shared.slots().started_elsewhere()) else {
            return 0;
        };
        let other = self.since_epoch(other);
        if other > now.saturating_add(nanos(AHEAD)) {
            return 0;
        }
        other.saturating_add(gap)
    }

    /// Tells the other holders of the shared schedule that we started at
    /// `started` (nanoseconds since `epoch`). Telling wakes someone (the
    /// store, or the thread that writes to it: restb's Redis schedule hands
    /// it over, `shared_limit/teller.rs`), who on a busy machine may run in
    /// our place for a millisecond: measured, when the write was ours, the
    /// late request then reached the gateway that much after the start
    /// told, and the next holder's came too soon after it. So a start held
    /// up while telling is told again as it now stands, before the request
    /// goes.
    fn tell_others(&self, shared: &SharedPacing, started: u64, seq: Option<u64>) {
        let mut told = started;
        for _ in 0..RETELLS {
            shared
                .slots()
                .started(self.epoch + Duration::from_nanos(told), seq);
            let now = self.since_epoch(self.clock.now().instant);
            if now.saturating_sub(told) <= nanos(RETELL_AFTER) {
                return;
            }
            self.last_start.fetch_max(now + 1, Ordering::AcqRel);
            told = now;
        }
    }

    /// A start's trace line (`RUST_LOG=restb::limiter::start=trace`), if
    /// traced: see [`StartTrace`].
    fn start_trace(
        &self,
        slot: &Reservation,
        now: u64,
        own: u64,
        others: Option<&SharedPacing>,
        gap: u64,
    ) -> Option<StartTrace> {
        if !log::log_enabled!(target: start_trace::TARGET, log::Level::Trace) {
            return None;
        }
        let after = |bound: u64| (i128::from(now) - i128::from(bound)) / 1000;
        let other = others
            .and_then(|shared| shared.slots().started_elsewhere())
            .map(|other| self.since_epoch(other).saturating_add(gap));
        Some(StartTrace {
            seq: slot.seq,
            wall: self.clock.now().wall,
            after_slot_us: after(self.since_epoch(slot.start)),
            after_own_us: (own != 0).then(|| after(own)),
            after_other_us: other.map(after),
            gap_us: gap / 1000,
        })
    }

    fn since_epoch(&self, at: std::time::Instant) -> u64 {
        nanos(at.saturating_duration_since(self.epoch))
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

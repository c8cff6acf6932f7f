//! The pacing limiter shared by all workers: when may the next request start?
//!
//! It starts as even pacing (GCRA) at the allotted rate, handing out start
//! *reservations*: each caller gets its own slot, so N waiting threads start
//! one interval apart instead of waking together and racing. Its model of
//! the gateway is a hypothesis checked against every reply: window mode
//! from Kong headers on successes, given up when window bursts draw 429s;
//! a lone 429 is a spacing error that only its job waits for
//! ([`Backoff::Job`]); every start pauses ([`Backoff::Everyone`]) only for a
//! spent window, a spent quota, a long `Retry-After` or 429s in a row; 429s
//! that persist cut the rate in force (AIMD). A pause voids the slots booked
//! before it, and their holders book again.
//!
//! The rooms:
//! - `rate`: the allotted [`Rate`];
//! - `gcra`: the slot-reservation core (one theoretical arrival time: the
//!   piece a shared store such as Redis can hold instead), and `pacing`:
//!   even pacing on it with a margin learned from rejections;
//! - `window`: fixed one-second windows as Kong counts them
//!   (`window/counted`: what a window's counts say of other clients);
//! - `schedule`: the pure booking state and the [`PacingModel`] in force
//!   (`schedule/shared_booking`: booking on a shared schedule);
//!   `reservation`: a booked slot and the rule by which a [`Pause`] voids it;
//! - `learn`: replies (accepted / rejected) as pure transitions of that
//!   state, deciding a [`Backoff`]; `trust`: the evidence against the model;
//!   `aimd`: the share of the rate in force; `pause_record`: the books of
//!   pauses (and the warning for long ones); `wall_step`: noticing the wall
//!   clock step back;
//! - `wait`: [`Limiter::acquire`], the only part that blocks; `departure`:
//!   the transport telling when a request it cleared actually left;
//! - `clock`: the injectable [`Clock`], with a [`FakeClock`] for tests that
//!   never sleep; `status`: the [`PacingStatus`] reports read;
//! - `shared`: the seam to a schedule shared with other processes
//!   ([`SharedSlots`], e.g. in Redis: `restb::shared_limit`).

mod aimd;
mod backoff;
mod clock;
pub(crate) use clock::later;
mod departure;
mod gcra;
mod hint;
mod lateness;
mod learn;
mod pacing;
mod pause_record;
mod rate;
mod reservation;
mod schedule;
mod shared;
mod start_trace;
mod status;
mod trust;
mod wait;
mod wall_step;
mod window;

pub use backoff::{Backoff, PauseReason};
pub use clock::{Clock, FakeClock, Now, SystemClock};
pub(crate) use departure::{request_sent, SendingFor};
pub use hint::{GatewayHint, WindowCount};
pub use pause_record::{clock_time, date_time};
pub use rate::Rate;
pub use reservation::{Pause, Reservation};
pub use schedule::PacingModel;
pub use shared::{SharedPacing, SharedSlot, SharedSlots};
pub use status::PacingStatus;
pub use wait::STOP_POLL;

use departure::DepartureMark;
use learn::Learner;
use parking_lot::{Condvar, Mutex, MutexGuard};
use schedule::Schedule;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The limiter was stopped while a caller waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

/// Shared pacing for every worker; see the module docs. `rate: None` paces
/// nothing but still honours pauses (the concurrency mode).
#[derive(Debug)]
pub struct Limiter<C: Clock = SystemClock> {
    clock: C,
    state: Mutex<State>,
    /// Wakes sleeping callers when their slots are voided or on interrupt.
    wake: Condvar,
    /// When the last paced request actually started, in nanoseconds since
    /// `epoch`: a late start pushes the next one back, so the gaps a
    /// leaky-bucket gateway sees never shrink below the interval. Moved
    /// on, too, when a request's bytes leave later than its start (see
    /// `departure.rs`).
    last_start: Arc<AtomicU64>,
    /// The usual time from a start to its request's write.
    usual_departure: Arc<AtomicU64>,
    /// Start-up allowances left for starts after a slot that could not be
    /// heard (see `wait.rs`).
    unheard_allowances: AtomicU32,
    epoch: Instant,
}

#[derive(Debug)]
struct State {
    schedule: Schedule,
    learner: Learner,
    interrupted: bool,
}

impl State {
    /// A pause named by the shared schedule's last slot goes into the books
    /// of pauses: another process's is said and counted like ours, so a run
    /// it holds does not look hung (ours comes back and counts once).
    /// The time is read only then: this runs for every shared booking.
    fn note_shared_pause(&mut self, now: impl FnOnce() -> Now) {
        if let Some(until) = self.schedule.take_shared_pause_heard() {
            self.learner.pauses.record_others(until, now());
        }
    }
}

impl Limiter<SystemClock> {
    /// A limiter pacing at `rate`, or only pausing when `rate` is `None`.
    pub fn new(rate: Option<Rate>) -> Limiter {
        Limiter::with_clock(rate, SystemClock)
    }
}

impl<C: Clock> Limiter<C> {
    /// A limiter on `clock` (a [`FakeClock`] in tests).
    pub fn with_clock(rate: Option<Rate>, clock: C) -> Limiter<C> {
        let epoch = clock.now().instant;
        let schedule = Schedule::new(rate);
        Limiter {
            clock,
            state: Mutex::new(State {
                learner: Learner::new(&schedule),
                schedule,
                interrupted: false,
            }),
            wake: Condvar::new(),
            last_start: Arc::new(AtomicU64::new(0)),
            usual_departure: Arc::new(AtomicU64::new(departure::NO_DELAY_YET)),
            unheard_allowances: AtomicU32::new(wait::UNHEARD_ALLOWANCES),
            epoch,
        }
    }

    /// Where the transport tells this limiter when a request it cleared
    /// actually left (see `departure.rs`); `None` when nothing is paced, so
    /// no gap is kept after a start.
    pub(crate) fn departure_mark(&self) -> Option<DepartureMark> {
        let state = self.state.lock();
        state.schedule.rate?;
        Some(DepartureMark {
            epoch: self.epoch,
            last_start: Arc::clone(&self.last_start),
            usual_delay: Arc::clone(&self.usual_departure),
            others: state.schedule.shared().cloned(),
        })
    }

    /// Starts the first request on a wall-clock second (plus the window
    /// guard): fixed-window gateways count from there, so the first window
    /// holds a full budget.
    pub fn aligned_to_windows(self) -> Limiter<C> {
        self.state.lock().schedule.align_first_start();
        self
    }

    /// Books even starts on `shared`, the schedule every process on the
    /// client key draws from, instead of on this limiter's own: pauses are
    /// written there for all and those set by others are honoured here;
    /// no window mode and no first start aligned to a second.
    pub fn shared(self, shared: SharedPacing) -> Limiter<C> {
        let mut state = self.state.lock();
        state.schedule.set_shared(shared);
        state.learner.share_schedule();
        drop(state);
        self
    }

    /// This process's share of the rate: 1 on its own schedule, 1 / the
    /// holders of a shared one (a pool sizes itself for that share).
    pub fn share_of_rate(&self) -> f64 {
        let shared = self.state.lock().schedule.shared().cloned();
        shared.map_or(1.0, |shared| 1.0 / f64::from(shared.holders()))
    }

    /// The limiter's clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The pacing rate, if any.
    pub fn rate(&self) -> Option<Rate> {
        self.state.lock().schedule.rate
    }

    /// How the limiter paces now.
    pub fn pacing_model(&self) -> PacingModel {
        self.state.lock().schedule.model()
    }

    /// The rate in force: the allotted one, less what persisting 429s cut
    /// (see [`Limiter::rejected`]). `None` when not pacing.
    pub fn rate_in_force(&self) -> Option<Rate> {
        self.state.lock().schedule.rate_in_force()
    }

    /// How long every start was held by pauses in all (a pause in force
    /// counts so far).
    pub fn paused_total(&self) -> Duration {
        let now = self.clock.now().instant;
        self.state.lock().learner.pauses.total(now)
    }

    /// The pause in force now, if any: why, and when it ends (wall clock).
    pub fn pause_reason(&self) -> Option<(PauseReason, SystemTime)> {
        let now = self.clock.now().instant;
        self.state.lock().learner.pauses.current(now)
    }

    /// The rate in force and the pauses, in one snapshot.
    pub fn status(&self) -> PacingStatus {
        let now = self.clock.now().instant;
        let state = self.state.lock();
        PacingStatus {
            rate_in_force: state.schedule.rate_in_force(),
            rate_cuts: state.learner.rate_cuts(),
            paused_total: state.learner.pauses.total(now),
            pause: state.learner.pauses.current(now),
        }
    }

    /// Books the earliest start slot at or after `now`.
    ///
    /// # Examples
    ///
    /// ```
    /// use restb::limiter::{Limiter, Now, Rate};
    /// use std::time::Duration;
    ///
    /// let limiter = Limiter::new(Rate::per_second(10.0));
    /// let now = Now::system();
    /// let first = limiter.reserve_at(now).start;
    /// let second = limiter.reserve_at(now).start;
    /// // A tenth of a second apart, plus the safety margin: the first few
    /// // bookings of a run get up to 5 ms more while the gateway's own
    /// // spacing is unknown (a leaky bucket rejects any early start).
    /// assert!(second - first >= Duration::from_millis(100));
    /// assert!(second - first <= Duration::from_millis(106));
    /// ```
    pub fn reserve_at(&self, now: Now) -> Reservation {
        let mut state = self.state.lock();
        let reservation = state.schedule.book(now);
        state.note_shared_pause(|| now);
        reservation
    }

    /// Whether a pause (or a switch of model) has voided `reservation`
    /// since it was made.
    pub fn is_void(&self, reservation: &Reservation) -> bool {
        self.state.lock().schedule.generation() != reservation.generation
    }

    /// Holds back every start until `until`; slots booked before that have
    /// not started are void.
    pub fn pause_until(&self, until: Instant) -> Pause {
        self.pause_at(until, self.clock.now())
    }

    /// [`Limiter::pause_until`], decided at `now`.
    pub fn pause_at(&self, until: Instant, now: Now) -> Pause {
        let mut state = self.state.lock();
        let pause = state.schedule.pause(until, now);
        self.wake.notify_all();
        tell_pause(state);
        pause
    }

    /// Wakes every caller waiting in [`Limiter::acquire`] and makes it, and
    /// every later call, return [`Stopped`]. The pool calls it on stop.
    pub fn interrupt(&self) {
        self.state.lock().interrupted = true;
        self.wake.notify_all();
    }

    /// Learns from a reply the gateway let through (any status but a
    /// rate-limit one) to the request booked as `reservation`: its headers,
    /// if any, and that pacing was not too fast.
    pub fn accepted(&self, reservation: &Reservation, hint: Option<&GatewayHint>, now: Now) {
        self.learn(|state| {
            state
                .learner
                .accepted(&mut state.schedule, reservation, hint, now)
        });
    }

    /// Learns from a rate-limit reply to the request booked as
    /// `reservation`, and says who waits: only this job (a spacing error:
    /// the others go on) or every start (a spent window, a long
    /// `Retry-After`, 429s that keep coming). 429s that persist at the
    /// paced rate also cut the rate in force, which climbs back while
    /// requests pass.
    pub fn rejected(
        &self,
        reservation: &Reservation,
        retry_after: Option<Duration>,
        hint: Option<&GatewayHint>,
        now: Now,
    ) -> Backoff {
        self.learn(|state| {
            state
                .learner
                .rejected(&mut state.schedule, reservation, retry_after, hint, now)
        })
    }

    /// Applies a lesson; wakes the sleepers if it voided their slots.
    fn learn<T>(&self, lesson: impl FnOnce(&mut State) -> T) -> T {
        let mut state = self.state.lock();
        let before = state.schedule.generation();
        let learned = lesson(&mut state);
        if state.schedule.generation() != before {
            self.wake.notify_all();
        }
        tell_pause(state);
        learned
    }

    /// The current generation of the schedule (for tests that replay it).
    #[cfg(test)]
    fn generation(&self) -> u64 {
        self.state.lock().schedule.generation()
    }
}

/// Tells the shared schedule, if any, of a pause set under `state` (by a
/// lesson, or [`Limiter::pause_at`]), once the lock is let go (see
/// [`Schedule::take_untold_pause`]).
fn tell_pause(mut state: MutexGuard<'_, State>) {
    let untold = state.schedule.take_untold_pause();
    drop(state);
    if let Some((shared, until)) = untold {
        shared.slots().pause(until, "a rate-limit reply");
    }
}

#[cfg(test)]
mod reply_properties;
#[cfg(test)]
mod tests;

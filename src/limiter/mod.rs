//! The pacing limiter shared by all workers: when may the next request start?
//!
//! It starts as even pacing (GCRA) at the allotted rate, handing out start
//! *reservations*: each caller gets its own slot, so N waiting threads start
//! one interval apart instead of waking together and racing. Then it learns
//! from the gateway's replies:
//! - rate-limit headers of a fixed one-second window (Kong) switch it to
//!   window mode: up to the window's budget as early as each wall-clock
//!   second allows, lowered when the counts show others on the same key;
//! - a rejection without any header (nginx `limit_req`) widens the pacing
//!   interval a little; accepted requests narrow it again;
//! - `Retry-After`, or an exhausted longer window, pauses everybody. A pause
//!   voids the slots booked before it, and their holders book again.
//!
//! The arithmetic takes the time as a parameter ([`Now`]), so it is tested
//! with made-up instants, without sleeping.

mod hint;
mod pacing;
mod shared;
mod window;

pub use hint::{GatewayHint, WindowCount};
pub use shared::{SharedPacing, SharedSlot, SharedSlots};

use crate::stop::Stop;
use pacing::Pacing;
use parking_lot::{Condvar, Mutex, MutexGuard};
use std::collections::VecDeque;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use window::{Slot, Windows};

/// A rate of request starts, with the burst allowed on top of even spacing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    interval: Duration,
    burst: NonZeroU32,
}

impl Rate {
    /// `per_second` starts per second, evenly spaced (burst 1).
    /// `None` unless the rate is between [`Rate::MIN_PER_SECOND`] and
    /// [`Rate::MAX_PER_SECOND`].
    pub fn per_second(per_second: f64) -> Option<Rate> {
        if !(Rate::MIN_PER_SECOND..=Rate::MAX_PER_SECOND).contains(&per_second) {
            return None;
        }
        Some(Rate {
            interval: Duration::try_from_secs_f64(1.0 / per_second).ok()?,
            burst: NonZeroU32::MIN,
        })
    }

    /// The slowest rate: one request a day.
    pub const MIN_PER_SECOND: f64 = 1.0 / 86_400.0;
    /// The fastest rate.
    pub const MAX_PER_SECOND: f64 = 1e6;

    /// The same rate, letting `burst` requests start at once after a quiet spell.
    pub fn with_burst(self, burst: NonZeroU32) -> Rate {
        Rate { burst, ..self }
    }

    /// Time between two starts at the steady rate.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Requests per second.
    pub fn per_second_f64(&self) -> f64 {
        1.0 / self.interval.as_secs_f64()
    }

    /// Whole requests per one-second window (0 below one per second).
    fn per_window(&self) -> u32 {
        (self.per_second_f64() + 1e-9)
            .floor()
            .min(f64::from(u32::MAX)) as u32
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2}/s", self.per_second_f64())
    }
}

/// A moment on both clocks: `Instant` to sleep on, wall time because
/// gateways count in wall-clock seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// The monotonic clock.
    pub instant: Instant,
    /// The wall clock.
    pub wall: SystemTime,
}

impl Now {
    /// The current moment.
    pub fn system() -> Now {
        Now {
            instant: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    fn since_epoch(&self) -> Duration {
        self.wall.duration_since(UNIX_EPOCH).unwrap_or_default()
    }

    /// The instant at which the wall clock shows `since_epoch`.
    fn instant_of(&self, since_epoch: Duration) -> Instant {
        let now = self.since_epoch();
        if since_epoch >= now {
            self.instant + (since_epoch - now)
        } else {
            self.instant
                .checked_sub(now - since_epoch)
                .unwrap_or(self.instant)
        }
    }

    /// The wall time (since the epoch) at `instant`.
    fn since_epoch_at(&self, instant: Instant) -> Duration {
        let now = self.since_epoch();
        if instant >= self.instant {
            now + (instant - self.instant)
        } else {
            now.saturating_sub(self.instant - instant)
        }
    }
}

/// A start slot handed out by [`Limiter::reserve_at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// When the request may start.
    pub start: Instant,
    /// The pause generation the slot belongs to; a newer pause voids it.
    generation: u64,
    /// The one-second window the start falls in, and its place there.
    slot: Option<Slot>,
    /// In even pacing: the least time since the previous actual start.
    min_gap: Option<Duration>,
    /// In window mode: when the slot's window stops taking starts.
    closes: Option<Instant>,
}

/// The limiter was stopped while a caller waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

/// How the limiter paces right now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Not pacing: only pauses hold starts (concurrency mode).
    Unpaced,
    /// Even spacing, `margin` slower than the allotted rate (0.01 = 1 %).
    Even {
        /// Learned safety margin.
        margin: f64,
    },
    /// Up to `budget` starts in each wall-clock second.
    Windows {
        /// Starts per window.
        budget: u32,
        /// Guard kept at both ends of each window.
        guard: Duration,
    },
}

/// Shared pacing for every worker; see the module docs. `rate: None` paces
/// nothing but still honours pauses (the concurrency mode).
#[derive(Debug)]
pub struct Limiter {
    rate: Option<Rate>,
    state: Mutex<State>,
    /// Wakes sleeping callers when their slots are voided or on interrupt.
    wake: Condvar,
    /// When the last paced request actually started, in nanoseconds since
    /// `epoch`: a late start pushes the next one back, so the gaps a
    /// leaky-bucket gateway sees never shrink below the interval.
    last_start: AtomicU64,
    epoch: Instant,
}

#[derive(Debug)]
struct State {
    pacing: Option<Pacing>,
    windows: Option<Windows>,
    /// Recent starts booked while pacing evenly, so window mode can take
    /// over mid-window knowing how many the current window already had.
    recent_paced: VecDeque<Instant>,
    align_start: bool,
    paused_until: Option<Instant>,
    generation: u64,
    /// Rejections in a row that no header explained.
    blind_rejections: u32,
    interrupted: bool,
    /// A schedule shared with other processes, if any: it books the starts.
    shared: Option<SharedPacing>,
}

/// Longest a caller sleeps in [`Limiter::acquire`] between looks at its
/// stop signal (one the pool does not interrupt).
pub const STOP_POLL: Duration = Duration::from_secs(1);
/// The end of a wait is spun, not slept: a timed sleep wakes up to ~100 us
/// late and unevenly, and a leaky-bucket gateway rejects a request that
/// comes even slightly early after a late one.
const SPIN: Duration = Duration::from_micros(80);

fn spin_until(deadline: Instant) {
    while Instant::now() < deadline {
        std::hint::spin_loop();
    }
}

/// `instant + wait`, or about a year later where that overflows.
fn later(instant: Instant, wait: Duration) -> Instant {
    instant
        .checked_add(wait)
        .or_else(|| instant.checked_add(Duration::from_secs(365 * 86_400)))
        .unwrap_or(instant)
}

/// How far back booked starts are kept for a switch to window mode.
const RECENT_PACED: Duration = Duration::from_secs(2);
/// Longest pause for rejections without any hint.
const MAX_BLIND_PAUSE: Duration = Duration::from_secs(1);
/// Blind pause without a rate to scale it by (concurrency mode).
const UNPACED_BLIND_PAUSE: Duration = Duration::from_millis(50);

impl Limiter {
    /// A limiter pacing at `rate`, or only pausing when `rate` is `None`.
    pub fn new(rate: Option<Rate>) -> Limiter {
        Limiter {
            rate,
            state: Mutex::new(State {
                pacing: rate.map(|r| Pacing::new(r.interval, r.burst.get())),
                windows: None,
                recent_paced: VecDeque::new(),
                align_start: false,
                paused_until: None,
                generation: 0,
                blind_rejections: 0,
                interrupted: false,
                shared: None,
            }),
            wake: Condvar::new(),
            last_start: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Starts the first request on a wall-clock second (plus the window
    /// guard): fixed-window gateways count from there, so the first window
    /// holds a full budget.
    pub fn aligned_to_windows(self) -> Limiter {
        self.state.lock().align_start = self.rate.is_some();
        self
    }

    /// Books starts on `shared`, a schedule every process on the client
    /// key draws from, instead of on this limiter's own: even pacing only
    /// (no window mode, no first start aligned to a second), pauses written
    /// there for all, and pauses set by others honoured here.
    pub fn shared(self, shared: SharedPacing) -> Limiter {
        let mut state = self.state.lock();
        state.shared = Some(shared);
        state.align_start = false;
        drop(state);
        self
    }

    /// The pacing rate, if any.
    pub fn rate(&self) -> Option<Rate> {
        self.rate
    }

    /// How the limiter paces now.
    pub fn mode(&self) -> Mode {
        let state = self.state.lock();
        match (&state.windows, &state.pacing) {
            (Some(windows), _) => Mode::Windows {
                budget: windows.budget(),
                guard: windows.guard(),
            },
            (None, Some(pacing)) => Mode::Even {
                margin: pacing.margin(),
            },
            (None, None) => Mode::Unpaced,
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
    /// // A tenth of a second apart, plus the small safety margin.
    /// assert!(second - first >= Duration::from_millis(100));
    /// assert!(second - first < Duration::from_millis(101));
    /// ```
    pub fn reserve_at(&self, now: Now) -> Reservation {
        self.book(&mut self.state.lock(), now)
    }

    fn book(&self, state: &mut MutexGuard<'_, State>, now: Now) -> Reservation {
        let mut earliest = now.instant;
        if let Some(paused_until) = state.paused_until {
            earliest = earliest.max(paused_until);
        }
        if std::mem::take(&mut state.align_start) {
            let wall = now.since_epoch_at(earliest);
            let boundary = Duration::from_secs(wall.as_secs() + 1) + window::DEFAULT_GUARD;
            earliest = now.instant_of(boundary);
        }
        if let Some(reservation) = self.book_shared(state, earliest) {
            return reservation;
        }
        let generation = state.generation;
        if let Some(windows) = state.windows.as_mut() {
            let slot = windows.book(now.since_epoch_at(earliest));
            return Reservation {
                start: now.instant_of(slot.at).max(earliest),
                generation,
                slot: Some(slot),
                min_gap: None,
                closes: Some(now.instant_of(windows.closes(slot.window))),
            };
        }
        let Some(pacing) = state.pacing.as_mut() else {
            return Reservation {
                start: earliest,
                generation,
                slot: None,
                min_gap: None,
                closes: None,
            };
        };
        let start = pacing.book(earliest);
        // The gap gate is for even pacing; a configured burst may bunch.
        let min_gap =
            (self.rate.map_or(1, |r| r.burst.get()) == 1).then(|| pacing.effective_interval());
        // Kept long enough to know the last start before a pause, and the
        // starts of the current window when window mode takes over.
        let keep = RECENT_PACED.max(pacing.effective_interval() * 2);
        let horizon = now.instant.checked_sub(keep).unwrap_or(now.instant);
        while state.recent_paced.front().is_some_and(|s| *s < horizon) {
            state.recent_paced.pop_front();
        }
        state.recent_paced.push_back(start);
        Reservation {
            start,
            generation,
            slot: None,
            min_gap,
            closes: None,
        }
    }

    /// Books on the shared schedule, if there is one and we pace. A pause
    /// some other process set voids the slots we booked before it.
    fn book_shared(&self, state: &mut State, earliest: Instant) -> Option<Reservation> {
        let increment = state.pacing.as_ref()?.effective_interval();
        let slot = state.shared.as_ref()?.slots().reserve(earliest, increment);
        if let Some(until) = slot.paused_until {
            if state.paused_until.is_none_or(|known| until > known) {
                state.paused_until = Some(until);
                state.generation += 1;
                self.wake.notify_all();
            }
        }
        let bunches = self.rate.is_some_and(|r| r.burst.get() > 1);
        Some(Reservation {
            start: slot.start.max(earliest),
            generation: state.generation,
            slot: None,
            min_gap: (!bunches).then_some(increment),
            closes: None,
        })
    }

    /// Whether a pause has voided `reservation` since it was made.
    pub fn is_void(&self, reservation: &Reservation) -> bool {
        self.state.lock().generation != reservation.generation
    }

    /// Holds back every start until `until`; slots booked before are void.
    pub fn pause_until(&self, until: Instant) {
        self.pause_at(until, Now::system());
    }

    fn pause_at(&self, until: Instant, now: Now) {
        let mut state = self.state.lock();
        let until = state.paused_until.map_or(until, |p| p.max(until));
        state.paused_until = Some(until);
        // Slots after `now` are void; the schedule goes on from the last
        // start made, and not before the pause ends.
        state.recent_paced.retain(|start| *start <= now.instant);
        let last_start = state.recent_paced.back().copied();
        if let Some(pacing) = state.pacing.as_mut() {
            let after_last = last_start.map(|start| start + pacing.effective_interval());
            pacing.restart_at(after_last.map_or(until, |after| after.max(until)));
        }
        if let Some(windows) = state.windows.as_mut() {
            windows.restart(
                now.since_epoch().as_secs(),
                now.since_epoch_at(until).as_secs(),
            );
        }
        state.generation += 1;
        if let Some(shared) = &state.shared {
            shared.slots().pause(until, "a rate-limit reply");
        }
        self.wake.notify_all();
    }

    /// Wakes every caller waiting in [`Limiter::acquire`] and makes it, and
    /// every later call, return [`Stopped`]. The pool calls it on stop.
    pub fn interrupt(&self) {
        self.state.lock().interrupted = true;
        self.wake.notify_all();
    }

    /// Learns from a reply the gateway let through (any status but a
    /// rate-limit one): its headers, if any, and that pacing was not too fast.
    pub fn accepted(&self, reservation: &Reservation, hint: Option<&GatewayHint>, now: Now) {
        {
            let mut state = self.state.lock();
            state.blind_rejections = 0;
            if let Some(pacing) = state.pacing.as_mut() {
                pacing.narrow();
            }
            if let Some(count) = hint.and_then(|h| h.second) {
                self.enter_windows(&mut state, count.limit, now);
                if let (Some(windows), Some(slot)) = (state.windows.as_mut(), reservation.slot) {
                    windows.observe(slot, count.limit, count.remaining);
                }
            }
        }
        if let Some(wait) = hint.and_then(|h| h.exhausted_for) {
            self.pause_at(later(now.instant, wait), now);
        }
    }

    /// Learns from a rate-limit reply and pauses every worker as long as
    /// the reply asks (`retry_after`), or as its headers imply. With no hint
    /// at all (nginx), the pacing widens; a second rejection with no
    /// acceptance in between pauses briefly, longer with each one in a row.
    pub fn rejected(&self, retry_after: Option<Duration>, hint: Option<&GatewayHint>, now: Now) {
        let hint = hint.copied().unwrap_or_default();
        let resume = {
            let mut state = self.state.lock();
            let next_window = |guard: Duration| {
                let wall = now.since_epoch();
                now.instant_of(Duration::from_secs(wall.as_secs() + 1) + guard)
            };
            if let Some(wait) = hint.exhausted_for {
                Some(later(now.instant, wait))
            } else if let Some(count) = hint.second.filter(|count| count.remaining == 0) {
                // A window gateway that is full: wait for its next window.
                // (A rejection while the window still has room has another
                // cause, and is handled below like one without headers.)
                let was_windowed = state.windows.is_some();
                self.enter_windows(&mut state, count.limit, now);
                let windows = state.windows.as_mut();
                let guard = match windows {
                    Some(windows) => {
                        if was_windowed {
                            windows.widen_guard();
                        }
                        windows.guard()
                    }
                    None => window::DEFAULT_GUARD,
                };
                Some(next_window(guard))
            } else if retry_after == Some(Duration::from_secs(1)) {
                // Whole seconds are all the header can say: "1" on a
                // per-second limit means the next window, often sooner.
                Some(next_window(window::DEFAULT_GUARD))
            } else if let Some(wait) = retry_after {
                Some(later(now.instant, wait))
            } else {
                state.blind_rejections += 1;
                let rejections = state.blind_rejections;
                match state.pacing.as_mut() {
                    Some(pacing) => {
                        pacing.widen();
                        log::debug!(
                            "rejected without a hint: pacing margin now {:.2} %",
                            pacing.margin() * 100.0
                        );
                        // A leaky bucket did not count the rejected request:
                        // the next slot is fine, so the first one costs no pause.
                        (rejections > 1).then(|| {
                            let pause = pacing
                                .effective_interval()
                                .saturating_mul(1 << (rejections - 2).min(16));
                            now.instant + pause.min(MAX_BLIND_PAUSE)
                        })
                    }
                    None => {
                        let pause =
                            UNPACED_BLIND_PAUSE.saturating_mul(1 << (rejections - 1).min(16));
                        Some(now.instant + pause.min(MAX_BLIND_PAUSE))
                    }
                }
            }
        };
        if let Some(resume) = resume {
            self.pause_at(resume, now);
        }
    }

    /// Switches to window mode with `limit` per window (capped by our rate).
    /// Slots booked by even pacing that have not started yet are void, so
    /// their holders book again by window.
    fn enter_windows(&self, state: &mut State, limit: u32, now: Now) {
        let Some(rate) = self.rate.filter(|_| state.shared.is_none()) else {
            // A shared schedule paces evenly for every process on the key.
            return;
        };
        let budget = rate.per_window().min(limit);
        if budget == 0 {
            return;
        }
        if let Some(windows) = state.windows.as_mut() {
            windows.set_budget(budget);
            return;
        }
        let window = now.since_epoch().as_secs();
        let started_in_window = state
            .recent_paced
            .iter()
            .filter(|start| {
                **start <= now.instant && now.since_epoch_at(**start).as_secs() == window
            })
            .count();
        let mut windows = Windows::new(budget);
        windows.count_booked(window, u32::try_from(started_in_window).unwrap_or(u32::MAX));
        state.windows = Some(windows);
        state.recent_paced.clear();
        state.generation += 1;
        self.wake.notify_all();
        log::debug!("the gateway counts {limit} per wall-clock second: pacing {budget} per window");
    }

    /// Blocks until the caller may start a request, or `stop` is given. A
    /// caller whose slot a pause or a switch of mode voids wakes at once and
    /// books again.
    ///
    /// # Errors
    /// [`Stopped`] when the stop signal was given (noticed within
    /// [`STOP_POLL`], at once after [`Limiter::interrupt`]).
    pub fn acquire(&self, stop: &Stop) -> Result<Reservation, Stopped> {
        let mut state = self.state.lock();
        'book: loop {
            if stop.is_stopped() || state.interrupted {
                return Err(Stopped);
            }
            let reservation = self.book(&mut state, Now::system());
            loop {
                let now = Instant::now();
                if reservation.start <= now + SPIN {
                    if reservation.closes.is_some_and(|closes| now >= closes) {
                        // Woken too late for its window (a busy machine): a
                        // start now would count in the next one.
                        continue 'book;
                    }
                    drop(state);
                    spin_until(reservation.start);
                    if let Some(gap) = reservation.min_gap {
                        if !self.keep_gap(gap, stop) {
                            return Err(Stopped);
                        }
                    }
                    state = self.state.lock();
                    if state.interrupted {
                        return Err(Stopped);
                    }
                    if state.generation != reservation.generation {
                        // Paused while keeping the gap: book again.
                        continue 'book;
                    }
                    return Ok(reservation);
                }
                let deadline = (reservation.start - SPIN).min(now + STOP_POLL);
                let _ = self.wake.wait_until(&mut state, deadline);
                if stop.is_stopped() || state.interrupted {
                    return Err(Stopped);
                }
                if state.generation != reservation.generation {
                    continue 'book;
                }
            }
        }
    }

    /// Waits until `gap` has passed since the previous paced start, and
    /// records this one: scheduling delays on a busy machine would otherwise
    /// put a late start and an on-time one less than an interval apart.
    /// Returns `false` if `stop` was given while waiting.
    fn keep_gap(&self, gap: Duration, stop: &Stop) -> bool {
        let gap = u64::try_from(gap.as_nanos()).unwrap_or(u64::MAX);
        loop {
            let previous = self.last_start.load(Ordering::Acquire);
            let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let earliest = if previous == 0 {
                0
            } else {
                previous.saturating_add(gap)
            };
            if now < earliest {
                let wait = Duration::from_nanos(earliest - now);
                if wait > SPIN && !stop.sleep(wait - SPIN) {
                    return false;
                }
                spin_until(self.epoch + Duration::from_nanos(earliest));
                continue;
            }
            let started = now.max(1);
            if self
                .last_start
                .compare_exchange(previous, started, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return true;
            }
        }
    }

    #[cfg(test)]
    fn generation(&self) -> u64 {
        self.state.lock().generation
    }
}

#[cfg(test)]
mod tests;

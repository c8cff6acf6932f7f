//! The limiter's pure state: which model of the gateway it paces by, the
//! slots it booked, and pauses. No clock and no lock here: every method
//! takes the time as a parameter ([`Now`]), so it is tested with made-up
//! instants. (Learning from replies is in `learn.rs`, waiting in `wait.rs`.)

use super::clock::{later, Now};
use super::lateness::Lateness;
use super::pacing::EvenPacing;
use super::rate::Rate;
use super::reservation::{started_by, Pause, Reservation};
use super::shared::SharedPacing;
use super::wall_step::WallWatch;
use super::window::{self, WindowSlot, Windows};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

mod shared_booking;

/// A share this much above the one that spaced the waiting slots books
/// them again (see [`Schedule::rebook_faster`]).
const REBOOK_RISE: f64 = 1.25;

/// How the limiter paces right now: its model of the gateway.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum PacingModel {
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

/// A lone rejection moves the schedule by this fraction of an interval.
const PHASE_STEP: u32 = 8;

/// How far back booked starts are kept for a switch to window mode.
const RECENT_PACED: Duration = Duration::from_secs(2);

/// A start booked by even pacing, and where it left the schedule.
#[derive(Debug, Clone, Copy)]
pub(super) struct Booked {
    pub(super) start: Instant,
    free_after: Instant,
}

/// The booking state; see the module docs.
#[derive(Debug)]
pub(super) struct Schedule {
    pub(super) rate: Option<Rate>,
    pub(super) pacing: Option<EvenPacing>,
    pub(super) windows: Option<Windows>,
    /// Recent starts booked while pacing evenly: a pause goes on from the
    /// last that stands, and window mode can take over mid-window knowing
    /// how many the current window already had.
    pub(super) recent_paced: VecDeque<Booked>,
    align_start: bool,
    paused_until: Option<Instant>,
    /// See [`Schedule::take_shared_pause_heard`].
    shared_pause_heard: Option<Instant>,
    /// A pause not yet told to the shared schedule: see
    /// [`Schedule::take_untold_pause`].
    untold_pause: Option<Instant>,
    generation: u64,
    /// The share of the allotted rate in force (AIMD), 1.0 = all of it.
    share: f64,
    /// The share that the slots booked so far were spaced by, at most.
    booked_share: f64,
    /// The window limit the gateway announced, in window mode.
    limit: u32,
    wall_watch: WallWatch,
    /// A schedule shared with other processes: it books the even starts.
    shared: Option<SharedPacing>,
    /// The other holders' rounds of rejections applied to our margin (see
    /// [`super::SharedSlots::rounds_heard`]).
    rounds_heard: u64,
    /// How far our starts on it ran behind their slots.
    lateness: Lateness,
}

impl Schedule {
    pub(super) fn new(rate: Option<Rate>) -> Schedule {
        Schedule {
            rate,
            pacing: rate.map(|r| EvenPacing::new(r.interval(), r.burst().get())),
            windows: None,
            recent_paced: VecDeque::new(),
            align_start: false,
            paused_until: None,
            shared_pause_heard: None,
            untold_pause: None,
            generation: 0,
            share: 1.0,
            booked_share: 1.0,
            limit: u32::MAX,
            wall_watch: WallWatch::default(),
            shared: None,
            rounds_heard: 0,
            lateness: Lateness::default(),
        }
    }

    /// The rate in force: the allotted one times the share AIMD left.
    pub(super) fn rate_in_force(&self) -> Option<Rate> {
        let rate = self.rate?;
        Rate::per_second(rate.per_second_f64() * self.share).or(Some(rate))
    }

    /// Paces at `share` of the allotted rate from now on.
    pub(super) fn set_share(&mut self, share: f64, now: Now) {
        self.share = share;
        if let Some(pacing) = self.pacing.as_mut() {
            pacing.set_share(share);
        }
        let budget = self.window_budget(self.limit);
        if let Some(windows) = self.windows.as_mut() {
            windows.set_budget(budget);
        }
        // After the pacing took the new share: the slots are booked again
        // at its spacing.
        if share >= self.booked_share * REBOOK_RISE {
            self.rebook(now);
            self.booked_share = share;
        } else {
            self.booked_share = self.booked_share.min(share);
        }
    }

    /// The slots waiting to start were spaced at another share: they are
    /// void, and even pacing goes on from the last start at the new
    /// spacing. Every worker holds a slot: without this, a client whose
    /// share rose well (the loser of a shared leaky bucket, once the other
    /// client has gone) waits out seconds of slots booked at the old
    /// spacing, and one back from a probe sends the probe's last few.
    pub(super) fn rebook(&mut self, now: Now) {
        if self.windows.is_some() || self.shared.is_some() {
            return;
        }
        let Some(pacing) = self.pacing.as_mut() else {
            return;
        };
        self.recent_paced
            .retain(|booked| started_by(booked.start, now.instant));
        let resume = self
            .recent_paced
            .back()
            .map(|booked| booked.start + pacing.effective_interval());
        pacing.restart(resume, now.instant);
        self.next_generation();
    }

    /// The gap between the two paced starts booked last before `start`
    /// (`None` if they are no longer remembered): the last gap a gateway
    /// counting gaps let through, where the request before `start` passed.
    pub(super) fn last_gap_before(&self, start: Instant) -> Option<Duration> {
        let mut before = self
            .recent_paced
            .iter()
            .map(|booked| booked.start)
            .filter(|booked| *booked < start);
        let (mut last, mut previous) = (before.next()?, None);
        for booked in before {
            if booked > last {
                previous = Some(last);
                last = booked;
            } else if previous.is_none_or(|previous| booked > previous) {
                previous = Some(booked);
            }
        }
        Some(last - previous?)
    }

    /// Starts per window for a gateway limit of `limit`: capped by the
    /// rate in force; 0 below one per second.
    pub(super) fn window_budget(&self, limit: u32) -> u32 {
        let Some(rate) = self.rate else { return 0 };
        let in_force = (rate.per_second_f64() * self.share + 1e-9).floor();
        (in_force.min(f64::from(u32::MAX)) as u32).min(limit)
    }

    /// Whether one-second windows of `limit` hold us below the allotted
    /// rate (the full one: a cut share does not make the windows bind).
    fn windows_bind(&self, limit: u32) -> bool {
        self.rate
            .is_some_and(|rate| f64::from(limit) <= rate.per_second_f64() + 1e-9)
    }

    /// Looks at the clocks: after a step back of the wall clock, window
    /// slots are booked again from the current window (the rest of it given
    /// up). Returns whether the slots booked so far are void.
    pub(super) fn notice_time(&mut self, now: Now) -> bool {
        let Some(back) = self.wall_watch.stepped_back(now) else {
            return false;
        };
        let Some(windows) = self.windows.as_mut() else {
            return false;
        };
        log::warn!(
            "the wall clock stepped back {:.1} s: window slots booked again",
            back.as_secs_f64()
        );
        let window = now.since_epoch().as_secs();
        windows.restart(window, window);
        self.next_generation();
        true
    }

    /// The first start waits for a wall-clock second (see
    /// [`Limiter::aligned_to_windows`](super::Limiter::aligned_to_windows)).
    pub(super) fn align_first_start(&mut self) {
        self.align_start = self.rate.is_some();
    }

    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    /// Starts a new generation: every slot booked before is void.
    pub(super) fn next_generation(&mut self) {
        self.generation += 1;
    }

    pub(super) fn model(&self) -> PacingModel {
        match (&self.windows, &self.pacing) {
            (Some(windows), _) => PacingModel::Windows {
                budget: windows.budget(),
                guard: windows.guard(),
            },
            (None, Some(pacing)) => PacingModel::Even {
                margin: pacing.margin(),
            },
            (None, None) => PacingModel::Unpaced,
        }
    }

    /// Books the earliest start slot at or after `now`.
    pub(super) fn book(&mut self, now: Now) -> Reservation {
        self.notice_time(now);
        let mut earliest = now.instant;
        if let Some(paused_until) = self.paused_until {
            earliest = earliest.max(paused_until);
        }
        if std::mem::take(&mut self.align_start) {
            let wall = now.since_epoch_at(earliest);
            let boundary = Duration::from_secs(wall.as_secs() + 1) + window::DEFAULT_GUARD;
            earliest = now.instant_of(boundary);
        }
        if let Some(reservation) = self.book_shared(earliest) {
            return reservation;
        }
        let generation = self.generation;
        if let Some(windows) = self.windows.as_mut() {
            let slot = windows.book(now.since_epoch_at(earliest));
            return Reservation {
                start: now.instant_of(slot.at).max(earliest),
                generation,
                slot: Some(slot),
                min_gap: None,
                closes: Some(now.instant_of(windows.closes(slot.window))),
                turn: false,
                seq: None,
                released: None,
            };
        }
        let Some(pacing) = self.pacing.as_mut() else {
            return Reservation::unpaced(earliest, generation);
        };
        let (start, free_after, spacing) = pacing.book(earliest);
        // The gap gate is for even pacing; a configured burst may bunch.
        let bunches = self.rate.is_some_and(|r| r.burst().get() > 1);
        let min_gap = (!bunches).then_some(spacing);
        // Kept long enough to know where the schedule stood before a pause,
        // and the starts of the current window when window mode takes over.
        let keep = RECENT_PACED.max(pacing.effective_interval() * 2);
        let horizon = now.instant.checked_sub(keep).unwrap_or(now.instant);
        while self
            .recent_paced
            .front()
            .is_some_and(|b| b.free_after < horizon)
        {
            self.recent_paced.pop_front();
        }
        self.recent_paced.push_back(Booked { start, free_after });
        Reservation {
            start,
            generation,
            slot: None,
            min_gap,
            closes: None,
            turn: false,
            seq: None,
            released: None,
        }
    }

    /// Window mode, `budget` per window for a gateway that announced
    /// `limit`. Slots booked by even pacing that have not started yet are
    /// void (their holders book again by window); the starts already made
    /// in the current window count against it.
    ///
    /// Not entered when the windows allow more than the allotted rate: they
    /// do not bind us, and a burst at each window's start is what a sliding
    /// window in another layer (whose headers these are not) rejects.
    pub(super) fn enter_windows(&mut self, limit: u32, now: Now) {
        self.limit = limit;
        if self.shared.is_some() {
            self.pace_shared_by_window(limit);
            return;
        }
        let budget = self.window_budget(limit);
        if budget == 0 || !self.windows_bind(limit) {
            return;
        }
        if let Some(windows) = self.windows.as_mut() {
            windows.set_budget(budget);
            return;
        }
        let started = self
            .recent_paced
            .iter()
            .filter(|booked| started_by(booked.start, now.instant))
            .map(|booked| now.since_epoch_at(booked.start));
        let mut windows = Windows::new(budget);
        let window = now.since_epoch().as_secs();
        windows.take_over(started, window);
        if let Some(pacing) = self.pacing.as_ref() {
            windows.stay_even_in(window, pacing.effective_interval());
        }
        self.windows = Some(windows);
        self.recent_paced.clear();
        self.next_generation();
        log::debug!("the gateway counts {limit} per wall-clock second: pacing {budget} per window");
    }

    /// A shared schedule paces evenly for every process on the key, not by
    /// windows; a window of `limit` a second below the allotted rate sets
    /// that pace (each process on the key sees the same count). Without
    /// it, a run at `--rps 10` on a Kong window of 5 drew a 429 and a pause
    /// in every window (a review's finding).
    fn pace_shared_by_window(&mut self, limit: u32) {
        let Some(interval) = Duration::from_secs(1).checked_div(limit) else {
            return;
        };
        if self.pacing.as_mut().is_some_and(|p| p.slow_to(interval)) {
            log::info!(
                "the gateway allows {limit} requests a second on this key, fewer than the \
                 allotted rate: the shared schedule paces at {limit}/s"
            );
        }
    }

    /// An accepted reply in window mode, to the request booked as
    /// `reservation`, said the gateway had counted `limit - remaining` in
    /// its window: slots that others on the key leave no room for are void
    /// (see [`Windows::observe`]).
    pub(super) fn observe_window(
        &mut self,
        reservation: &Reservation,
        limit: u32,
        remaining: u32,
        now: Now,
    ) {
        let Some(windows) = self.windows.as_mut() else {
            return;
        };
        if windows.observe(
            window_slot(reservation, now),
            limit,
            remaining,
            now.since_epoch(),
        ) {
            self.next_generation();
        }
    }

    /// A 429 said the window of the request booked as `reservation` was
    /// spent: notes it, and says whether other clients share the key.
    pub(super) fn spent_by_others(&mut self, reservation: &Reservation, now: Now) -> bool {
        let Some(windows) = self.windows.as_mut() else {
            return false;
        };
        windows.spent(window_slot(reservation, now));
        windows.shared()
    }

    /// The pause set since the last call, for the caller to tell the shared
    /// schedule once it has let go of the limiter's lock: telling takes a
    /// round trip to the store (Redis), up to its timeout if the store went
    /// silent, and every start of this process would wait for it.
    pub(super) fn take_untold_pause(&mut self) -> Option<(SharedPacing, Instant)> {
        let until = self.untold_pause.take()?;
        Some((self.shared.clone()?, until))
    }

    /// Back to even pacing for good. The windows were not what limits us
    /// (the layer that rejects is another one), so waiting out the
    /// wall-clock window would waste it: pacing resumes one interval from
    /// now, or where it would stand had this window's starts so far been
    /// paced evenly from its beginning, whichever is later. No wall-clock
    /// second gets more than the rate, and a sliding window that the last
    /// burst filled frees up as it ages out, one start per interval.
    pub(super) fn leave_windows(&mut self, now: Now) {
        let Some(windows) = self.windows.take() else {
            return;
        };
        let wall = now.since_epoch();
        let interval = self.pacing.as_ref().map(EvenPacing::effective_interval);
        let resume = match interval {
            Some(interval) => {
                let started = windows.started_by(wall);
                let evenly = Duration::from_secs(wall.as_secs()) + interval * started;
                later(now.instant, interval).max(now.instant_of(evenly))
            }
            None => now.instant_of(Duration::from_secs(wall.as_secs() + 1) + window::DEFAULT_GUARD),
        };
        self.recent_paced.clear();
        self.pause(resume, now);
    }

    /// A lone rejection in even pacing: our slots sit too close behind
    /// someone else's (another client on the key); move ours a little later.
    pub(super) fn yield_phase(&mut self) {
        if let Some(pacing) = self.pacing.as_mut() {
            let step = pacing.effective_interval() / PHASE_STEP;
            pacing.delay(step);
            if let Some(last) = self.recent_paced.back_mut() {
                last.free_after += step;
            }
        }
    }

    /// Holds back every start until `until` (a shorter pause never shortens
    /// a longer one). Slots booked before that had not started by `now` are
    /// void; the schedule goes on from where the slots that stand left it.
    pub(super) fn pause(&mut self, until: Instant, now: Now) -> Pause {
        let until = self.paused_until.map_or(until, |p| p.max(until));
        self.paused_until = Some(until);
        self.recent_paced
            .retain(|booked| started_by(booked.start, now.instant));
        let free = self.recent_paced.back().map(|booked| booked.free_after);
        if let Some(pacing) = self.pacing.as_mut() {
            pacing.restart(free, until);
        }
        if let Some(windows) = self.windows.as_mut() {
            windows.restart(
                now.since_epoch().as_secs(),
                now.since_epoch_at(until).as_secs(),
            );
        }
        self.next_generation();
        if self.shared.is_some() {
            self.untold_pause = Some(until);
        }
        Pause {
            at: now.instant,
            generation: self.generation,
        }
    }
}

/// The window slot of `reservation`; for one that even pacing booked (the
/// requests that took window mode in), its start's window.
fn window_slot(reservation: &Reservation, now: Now) -> WindowSlot {
    reservation.slot.unwrap_or_else(|| {
        let at = now.since_epoch_at(reservation.start);
        WindowSlot {
            at,
            window: at.as_secs(),
        }
    })
}

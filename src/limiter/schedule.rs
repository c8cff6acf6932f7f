//! The limiter's pure state: which model of the gateway it paces by, the
//! slots it booked, and pauses. No clock and no lock here: every method
//! takes the time as a parameter ([`Now`]), so it is tested with made-up
//! instants. (Learning from replies is in `learn.rs`, waiting in `wait.rs`.)

use super::clock::Now;
use super::pacing::EvenPacing;
use super::rate::Rate;
use super::reservation::{started_by, Pause, Reservation};
use super::window::{self, Windows};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

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
    generation: u64,
    /// Rejections in a row that no header explained.
    pub(super) blind_rejections: u32,
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
            generation: 0,
            blind_rejections: 0,
        }
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
        let mut earliest = now.instant;
        if let Some(paused_until) = self.paused_until {
            earliest = earliest.max(paused_until);
        }
        if std::mem::take(&mut self.align_start) {
            let wall = now.since_epoch_at(earliest);
            let boundary = Duration::from_secs(wall.as_secs() + 1) + window::DEFAULT_GUARD;
            earliest = now.instant_of(boundary);
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
            };
        }
        let Some(pacing) = self.pacing.as_mut() else {
            return Reservation::unpaced(earliest, generation);
        };
        let (start, free_after) = pacing.book(earliest);
        // The gap gate is for even pacing; a configured burst may bunch.
        let bunches = self.rate.is_some_and(|r| r.burst().get() > 1);
        let min_gap = (!bunches).then(|| pacing.effective_interval());
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
        Pause {
            at: now.instant,
            generation: self.generation,
        }
    }
}

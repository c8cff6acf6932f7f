//! Fixed one-second windows, as a Kong gateway counts them: up to `budget`
//! starts in each wall-clock second, sent early in the window: a small
//! budget at once (a short batch ends a window sooner), a large one spread
//! over at most the first half of the window, so a thousand requests do not
//! leave (and need a thousand threads) in the same millisecond.
//!
//! Times here are wall-clock offsets since the UNIX epoch; the limiter
//! converts to and from `Instant`s.

use std::collections::BTreeMap;
use std::time::Duration;

/// Windows whose budget the gateway's counts lowered (another client on the
/// same key); only the next few matter, so old ones are dropped.
const KEPT_OVERRIDES: usize = 8;
/// Windows whose booked slots are kept after the cursor moved on (a pool
/// books ahead while the current window is still running).
const KEPT_WINDOWS: u64 = 2;
const PRUNE_MIN: usize = 64;
/// Guard at both ends of a window: a request sent right at a boundary may
/// be counted in the neighbouring window by a gateway whose clock is a
/// little off from ours. Grows after a rejection in window mode.
pub(super) const DEFAULT_GUARD: Duration = Duration::from_millis(20);
pub(super) const MAX_GUARD: Duration = Duration::from_millis(300);
const GUARD_STEP: Duration = Duration::from_millis(20);
/// Longest spacing between starts within a window.
const MAX_SPACING: Duration = Duration::from_millis(5);

/// A booked start in window mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct WindowSlot {
    /// When, as time since the epoch.
    pub(super) at: Duration,
    /// The window (whole seconds since the epoch).
    pub(super) window: u64,
    /// 1-based place of the start in its window.
    pub(super) index: u32,
}

#[derive(Debug, Clone)]
pub(super) struct Windows {
    budget: u32,
    guard: Duration,
    cursor: u64,
    used: u32,
    /// When our recent slots are booked, since the epoch: those of the
    /// last few windows before the latest booking, and any ahead of it.
    booked_at: Vec<Duration>,
    /// Length of `booked_at` at which the old ones are dropped.
    prune_at: usize,
    /// Starts taken over from pacing: (window, how many).
    taken_over: (u64, u32),
    lowered: BTreeMap<u64, u32>,
}

impl Windows {
    pub(super) fn new(budget: u32) -> Windows {
        Windows {
            budget: budget.max(1),
            guard: DEFAULT_GUARD,
            cursor: 0,
            used: 0,
            booked_at: Vec::new(),
            prune_at: PRUNE_MIN,
            taken_over: (0, 0),
            lowered: BTreeMap::new(),
        }
    }

    pub(super) fn budget(&self) -> u32 {
        self.budget
    }

    /// Spacing of starts within a window: half the even interval, at most
    /// [`MAX_SPACING`].
    fn spacing(&self) -> Duration {
        (Duration::from_secs(1) / self.budget / 2).min(MAX_SPACING)
    }

    pub(super) fn set_budget(&mut self, budget: u32) {
        self.budget = budget.max(1);
    }

    pub(super) fn guard(&self) -> Duration {
        self.guard
    }

    /// Starts already booked in `window` (for taking over from pacing).
    pub(super) fn count_booked(&mut self, window: u64, used: u32) {
        if window >= self.cursor {
            self.cursor = window;
            self.used = used;
            self.taken_over = (window, used);
        }
    }

    /// When `window` stops taking starts (its end less the guard).
    pub(super) fn closes(&self, window: u64) -> Duration {
        Duration::from_secs(window + 1).saturating_sub(self.guard)
    }

    fn budget_of(&self, window: u64) -> u32 {
        self.lowered
            .get(&window)
            .map_or(self.budget, |b| (*b).min(self.budget))
    }

    /// Books the first start at or after `earliest` that its window allows.
    pub(super) fn book(&mut self, earliest: Duration) -> WindowSlot {
        let earliest_window = earliest.as_secs();
        if earliest_window > self.cursor {
            self.next_window(earliest_window);
        }
        loop {
            let opens = Duration::from_secs(self.cursor) + self.guard;
            let closes = self.closes(self.cursor);
            let at = earliest.max(opens + self.spacing() * self.used);
            if self.used < self.budget_of(self.cursor) && at < closes {
                self.used += 1;
                self.remember(at, earliest);
                return WindowSlot {
                    at,
                    window: self.cursor,
                    index: self.used,
                };
            }
            self.next_window(self.cursor + 1);
        }
    }

    fn next_window(&mut self, window: u64) {
        self.cursor = window;
        self.used = 0;
    }

    /// Keeps `at` for [`Windows::started_by`]; drops, now and then, the
    /// slots of windows long before `earliest`: only the current window's
    /// count is ever asked for. Amortised O(1) per booking.
    fn remember(&mut self, at: Duration, earliest: Duration) {
        self.booked_at.push(at);
        if self.booked_at.len() >= self.prune_at {
            let oldest = earliest.as_secs().saturating_sub(KEPT_WINDOWS);
            self.booked_at.retain(|at| at.as_secs() >= oldest);
            self.prune_at = (self.booked_at.len() * 2).max(PRUNE_MIN);
        }
    }

    /// Starts made in `now`'s window by `now` (since the epoch): those
    /// taken over from pacing, and our slots whose time has come (a slot a
    /// pause voided counts too: an overcount only makes pacing later).
    pub(super) fn started_by(&self, now: Duration) -> u32 {
        let window = now.as_secs();
        let taken_over = if self.taken_over.0 == window {
            self.taken_over.1
        } else {
            0
        };
        let ours = self
            .booked_at
            .iter()
            .filter(|at| at.as_secs() == window && **at <= now)
            .count();
        taken_over.saturating_add(u32::try_from(ours).unwrap_or(u32::MAX))
    }

    /// After a pause until `resume_window` decided in `now_window`: slots
    /// booked ahead are void and must be booked again. Starts already made in
    /// the current window are not known one by one, so when the pause ends
    /// within it, the rest of the window is given up.
    pub(super) fn restart(&mut self, now_window: u64, resume_window: u64) {
        if resume_window > now_window {
            self.next_window(resume_window);
        } else if self.cursor > now_window {
            self.cursor = now_window;
            self.used = self.budget;
        }
    }

    /// The gateway counted `limit - remaining` requests in `slot.window` by
    /// the time the slot's request arrived; more than our own `slot.index`
    /// means others share the key, and the window allows that many fewer.
    pub(super) fn observe(&mut self, slot: WindowSlot, limit: u32, remaining: u32) {
        let counted = limit.saturating_sub(remaining);
        if counted > slot.index {
            let others = counted - slot.index;
            let allowed = self.budget.saturating_sub(others);
            let entry = self.lowered.entry(slot.window).or_insert(allowed);
            *entry = (*entry).min(allowed);
            while self.lowered.len() > KEPT_OVERRIDES {
                self.lowered.pop_first();
            }
        }
    }

    /// A rejection although we kept to the budget: the clocks disagree more
    /// than the guard allows (or others share the key): widen the guard.
    pub(super) fn widen_guard(&mut self) {
        self.guard = (self.guard + GUARD_STEP).min(MAX_GUARD);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn each_window_gets_its_budget_early() {
        let mut windows = Windows::new(4);
        let booked: Vec<WindowSlot> = (0..10).map(|_| windows.book(secs(100.5))).collect();
        let at: Vec<f64> = booked
            .iter()
            .map(|s| (s.at.as_secs_f64() * 1000.0).round() / 1000.0)
            .collect();
        assert_eq!(at[..4], [100.5; 4]);
        assert_eq!(at[4..8], [101.02, 101.025, 101.03, 101.035]);
        assert_eq!(at[8..], [102.02, 102.025]);
        assert_eq!(booked[5].window, 101);
        assert_eq!(booked[5].index, 2);
    }

    #[test]
    fn a_large_budget_is_spread_over_half_the_window() {
        let mut windows = Windows::new(1000);
        let slots: Vec<WindowSlot> = (0..1000).map(|_| windows.book(secs(7.0))).collect();
        assert!(slots.iter().all(|s| s.window == 7));
        let last = slots[999].at.as_secs_f64();
        assert!((last - 7.5195).abs() < 1e-6, "{last}");
    }

    #[test]
    fn nothing_starts_in_the_guard_at_either_end() {
        let mut windows = Windows::new(4);
        assert_eq!(windows.book(secs(100.0)).at, secs(100.02));
        assert_eq!(windows.book(secs(100.99)).at, secs(101.02));
    }

    #[test]
    fn starts_booked_by_pacing_count_against_the_window() {
        let mut windows = Windows::new(4);
        windows.count_booked(100, 3);
        assert_eq!(windows.book(secs(100.3)).at, secs(100.3));
        assert_eq!(windows.book(secs(100.3)).at, secs(101.02));
    }

    #[test]
    fn others_on_the_same_key_lower_that_windows_budget() {
        let mut windows = Windows::new(4);
        let first = windows.book(secs(200.1));
        // The gateway had counted 3 when our first arrived: two others.
        windows.observe(first, 4, 1);
        assert_eq!(windows.book(secs(200.1)).at, secs(200.1));
        assert_eq!(
            windows.book(secs(200.1)).at,
            secs(201.02),
            "budget 2 in window 200"
        );
        let next = (0..3)
            .map(|_| windows.book(secs(200.1)).window)
            .collect::<Vec<_>>();
        assert_eq!(
            next,
            vec![201, 201, 201],
            "the next window has the full budget"
        );
    }

    #[test]
    fn a_pause_into_the_next_window_frees_its_budget() {
        let mut windows = Windows::new(2);
        for _ in 0..6 {
            windows.book(secs(10.5));
        }
        windows.restart(10, 11);
        let again: Vec<u64> = (0..3).map(|_| windows.book(secs(11.02)).window).collect();
        assert_eq!(again, vec![11, 11, 12]);
        windows.restart(11, 11);
        assert_eq!(
            windows.book(secs(11.5)).window,
            12,
            "the rest of window 11 is given up"
        );
    }

    #[test]
    fn a_wider_guard_moves_starts_in() {
        let mut windows = Windows::new(2);
        windows.widen_guard();
        assert_eq!(windows.guard(), Duration::from_millis(40));
        assert_eq!(windows.book(secs(5.0)).at, secs(5.04));
        for _ in 0..100 {
            windows.widen_guard();
        }
        assert_eq!(windows.guard(), MAX_GUARD);
    }

    #[test]
    fn never_more_than_the_budget_in_a_window() {
        let mut windows = Windows::new(7);
        let mut seed = 99u64;
        let mut now = 1000.0;
        let mut per_window = BTreeMap::<u64, u32>::new();
        for _ in 0..3000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            now += ((seed >> 33) % 300) as f64 / 1000.0;
            let slot = windows.book(secs(now));
            assert_eq!(slot.at.as_secs(), slot.window);
            *per_window.entry(slot.window).or_default() += 1;
        }
        assert!(per_window.values().all(|n| *n <= 7));
    }
}

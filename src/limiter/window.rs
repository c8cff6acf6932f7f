//! Fixed one-second windows, as a Kong gateway counts them: up to `budget`
//! starts in each wall-clock second, sent early in the window: a small
//! budget at once (a short batch ends a window sooner), a large one spread
//! over at most the first half of the window, so a thousand requests do not
//! leave (and need a thousand threads) in the same millisecond.
//!
//! Other clients on the same key (uncoordinated restb processes, each told
//! the whole rate) spend the same windows. The gateway's counts on our
//! replies say how much they took; each window's budget leaves them that
//! much of the next ones (see `Counted::allowed`), so that the bursts of
//! every client on the key fit in the window together.
//!
//! Times here are wall-clock offsets since the UNIX epoch; the limiter
//! converts to and from `Instant`s.

use std::collections::BTreeMap;
use std::time::Duration;

mod counted;
use counted::Counted;

/// Windows whose counts by the gateway are kept (what other clients on the
/// same key took in them); only the last few matter, so old ones are dropped.
const KEPT_COUNTS: usize = 8;
/// What others took is judged over this many of the latest windows we sent
/// in: the most that any of them took is left to them. Bookings run ahead
/// of the replies, so the latest window is often heard of only in part;
/// more would take longer to win the key back when the others stop.
const JUDGED_WINDOWS: usize = 2;
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
    /// Windows before this one may have lost their booked slots (see
    /// [`Windows::remember`]): what replies say of them is not heard.
    pruned_below: u64,
    /// The window in which window mode began, and the even interval its
    /// remaining starts keep (see [`Windows::stay_even_in`]).
    even_in: Option<(u64, Duration)>,
    /// A window whose slots were booked again while it ran: (window, the
    /// most it may have; see [`Windows::observe`]).
    kept: (u64, u32),
    /// The gateway's limit per window, as it announced it.
    limit: u32,
    /// Per window: the most the gateway had counted by one of our accepted
    /// requests, and how many of ours it accepted.
    counts: BTreeMap<u64, Counted>,
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
            pruned_below: 0,
            even_in: None,
            kept: (0, u32::MAX),
            limit: u32::MAX,
            counts: BTreeMap::new(),
        }
    }

    pub(super) fn budget(&self) -> u32 {
        self.budget
    }

    /// Spacing of starts within a window: half the even interval, at most
    /// [`MAX_SPACING`].
    /// The spacing of `window`'s slots.
    fn spacing(&self, window: u64) -> Duration {
        match self.even_in {
            Some((even, interval)) if even == window => interval,
            _ => (Duration::from_secs(1) / self.budget / 2).min(MAX_SPACING),
        }
    }

    /// The rest of `window`, in which window mode begins, keeps the even
    /// pacing's `interval`: a burst there would be sent on one reply's word,
    /// before the counts could show other clients on the key, who burst as
    /// well (measured: most 429s of 4 uncoordinated processes fell in the
    /// first window). Even pacing from the window's start fills it as well.
    pub(super) fn stay_even_in(&mut self, window: u64, interval: Duration) {
        self.even_in = Some((window, interval));
    }

    pub(super) fn set_budget(&mut self, budget: u32) {
        self.budget = budget.max(1);
    }

    pub(super) fn guard(&self) -> Duration {
        self.guard
    }

    /// Starts that even pacing made (for taking over from it): they count
    /// against their windows, `window`'s the current one.
    pub(super) fn take_over(&mut self, started: impl IntoIterator<Item = Duration>, window: u64) {
        self.booked_at.extend(started);
        if window >= self.cursor {
            self.cursor = window;
            self.used = self.started_in(window, Duration::MAX);
        }
    }

    /// When `window` stops taking starts (its end less the guard).
    pub(super) fn closes(&self, window: u64) -> Duration {
        Duration::from_secs(window + 1).saturating_sub(self.guard)
    }

    /// Our budget in `window`: what the gateway allows less what other
    /// clients on the key took, judged by the latest windows we heard of
    /// (up to `window` itself, while it runs; see [`Counted::allowed`]).
    /// Each of them books the same way: window bursts that leave the
    /// others' share alone no longer collide, and once the others stop, the
    /// whole window comes back within two windows. One start at least, to
    /// keep hearing how much the others take.
    fn budget_of(&self, window: u64) -> u32 {
        self.counts
            .range(..=window)
            .rev()
            .take(JUDGED_WINDOWS)
            .map(|(_, counted)| counted.allowed(self.limit))
            .min()
            .unwrap_or(self.budget)
            .clamp(1, self.budget)
            .min(if self.kept.0 == window {
                self.kept.1
            } else {
                u32::MAX
            })
    }

    /// Whether other clients took part of the latest windows we heard of.
    pub(super) fn shared(&self) -> bool {
        self.counts
            .values()
            .rev()
            .take(JUDGED_WINDOWS)
            .any(|counted| counted.others(self.limit) > 0)
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
            let at = earliest.max(opens + self.spacing(self.cursor) * self.used);
            if self.used < self.budget_of(self.cursor) && at < closes {
                self.used += 1;
                self.remember(at, earliest);
                return WindowSlot {
                    at,
                    window: self.cursor,
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
    /// slots of windows long before `earliest`: only the last few windows'
    /// counts are ever asked for. Amortised O(1) per booking.
    fn remember(&mut self, at: Duration, earliest: Duration) {
        self.booked_at.push(at);
        if self.booked_at.len() >= self.prune_at {
            let oldest = earliest.as_secs().saturating_sub(KEPT_WINDOWS);
            self.booked_at.retain(|at| at.as_secs() >= oldest);
            self.pruned_below = self.pruned_below.max(oldest);
            self.prune_at = (self.booked_at.len() * 2).max(PRUNE_MIN);
        }
    }

    /// Starts made in `now`'s window by `now` (since the epoch): those
    /// taken over from pacing, and our slots whose time has come (a slot a
    /// pause voided counts too: an overcount only makes pacing later, and
    /// others on the key seem to take less).
    pub(super) fn started_by(&self, now: Duration) -> u32 {
        self.started_in(now.as_secs(), now)
    }

    /// Starts made in `window` by `now` (see [`Windows::started_by`]).
    fn started_in(&self, window: u64, now: Duration) -> u32 {
        let ours = self
            .booked_at
            .iter()
            .filter(|at| at.as_secs() == window && **at <= now)
            .count();
        u32::try_from(ours).unwrap_or(u32::MAX)
    }

    /// After a pause until `resume_window` decided in `now_window`: slots
    /// booked ahead are void and must be booked again. Starts already made in
    /// the current window are not known one by one, so when the pause ends
    /// within it, the rest of the window is given up.
    pub(super) fn restart(&mut self, now_window: u64, resume_window: u64) {
        if resume_window > now_window {
            // Booked again from `resume_window`: the void ones would count twice.
            self.booked_at.retain(|at| at.as_secs() <= now_window);
            self.next_window(resume_window);
        } else if self.cursor > now_window {
            self.cursor = now_window;
            self.used = self.budget;
        }
    }

    /// The gateway accepted the request of `slot`, and had counted
    /// `limit - remaining` requests in its window by then: ours, and any
    /// other client's on the same key (see [`Windows::budget_of`]). Seen
    /// at `now` (since the epoch). Returns whether the slots booked ahead of
    /// `now` no longer fit the budgets (see [`Windows::misbooked`]): they
    /// are void, and booking goes on from `now` (the pool books ahead of
    /// the replies, and must not send a burst they advise against).
    pub(super) fn observe(
        &mut self,
        slot: WindowSlot,
        limit: u32,
        remaining: u32,
        now: Duration,
    ) -> bool {
        self.limit = limit;
        if slot.window < self.pruned_below {
            return false;
        }
        let by_gateway = limit.saturating_sub(remaining);
        let ours = self.started_in(slot.window, now);
        let counted = self.counts.entry(slot.window).or_default();
        counted.most = counted.most.max(by_gateway);
        counted.others = counted.others.max(by_gateway.saturating_sub(ours));
        counted.accepted = counted.accepted.saturating_add(1);
        counted.heard(by_gateway);
        counted.first_accepted = Some(counted.first_accepted.map_or(slot.at, |at| at.min(slot.at)));
        if counted.others(limit) > 0 {
            // Rejections in a window that others share say nothing of the
            // clocks; and every process on the key must start its burst at
            // the same point of the window to hear what the others take.
            self.guard = DEFAULT_GUARD;
        }
        self.forget_old_counts();
        // Alone on the key, budgets never change: nothing to look for.
        if !self.shared() || !self.misbooked(now) {
            return false;
        }
        // The window running keeps at most the slots it had: a start added
        // now would come after the others' bursts, into a spent window.
        let window = now.as_secs();
        let had = self.booked_at.iter().filter(|at| at.as_secs() == window);
        let had = u32::try_from(had.count()).unwrap_or(u32::MAX);
        self.kept = (window, had);
        self.booked_at.retain(|at| *at <= now);
        self.cursor = window;
        self.used = self.started_by(now);
        true
    }

    /// Whether the slots booked ahead of `now` sit otherwise than booking
    /// them now would put them: more in a window than its budget, or fewer
    /// in a window after `now`'s than its budget while later ones have some
    /// (the others took less: the pool books many windows ahead when its
    /// budget is small, and would not take the window back for seconds).
    fn misbooked(&self, now: Duration) -> bool {
        let first = now.as_secs();
        let mut booked = BTreeMap::<u64, (u32, bool)>::new();
        for at in self.booked_at.iter().filter(|at| at.as_secs() >= first) {
            let (slots, ahead) = booked.entry(at.as_secs()).or_default();
            *slots += 1;
            *ahead |= *at > now;
        }
        let Some(last) = booked.iter().rev().find(|(_, (_, ahead))| *ahead) else {
            return false;
        };
        let last = *last.0;
        (first..=last).any(|window| {
            let (slots, ahead) = booked.get(&window).copied().unwrap_or_default();
            let budget = self.budget_of(window);
            (ahead && slots > budget) || (first < window && window < last && slots < budget)
        })
    }

    /// The request of `slot` found its window spent (after one of ours
    /// passed, others filled it: see [`Counted::filled`]).
    pub(super) fn spent(&mut self, slot: WindowSlot) {
        if slot.window < self.pruned_below {
            return;
        }
        let counted = self.counts.entry(slot.window).or_default();
        counted.last_spent = counted.last_spent.max(Some(slot.at));
        self.forget_old_counts();
    }

    fn forget_old_counts(&mut self) {
        while self.counts.len() > KEPT_COUNTS {
            self.counts.pop_first();
        }
    }

    /// A rejection although we kept to the budget: the clocks disagree more
    /// than the guard allows: widen the guard. Not while others share the
    /// key: they explain the rejection, and a guard wider than theirs would
    /// put our starts after theirs in each window, and theirs beyond what
    /// we hear of (see [`Windows::observe`]).
    pub(super) fn widen_guard(&mut self) {
        if !self.shared() {
            self.guard = (self.guard + GUARD_STEP).min(MAX_GUARD);
        }
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
        windows.take_over([secs(99.9), secs(100.1), secs(100.15), secs(100.2)], 100);
        assert_eq!(windows.book(secs(100.3)).at, secs(100.3));
        assert_eq!(windows.book(secs(100.3)).at, secs(101.02));
    }

    /// Books `n` starts from `at` and answers each, in order, as a gateway
    /// that had counted `others` requests of other clients before each of
    /// ours (or the final figure, whichever is lower) would, seen at `seen`.
    /// Returns the windows booked and whether an answer voided slots.
    fn answered(windows: &mut Windows, at: f64, n: u32, others: u32, seen: f64) -> (u64, bool) {
        let slots: Vec<WindowSlot> = (0..n).map(|_| windows.book(secs(at))).collect();
        let mut void = false;
        for (k, slot) in (1..).zip(&slots) {
            let counted = (k * (others + 1)).min(20);
            void |= windows.observe(*slot, 20, 20 - counted, secs(seen));
        }
        (slots[0].window, void)
    }

    fn per_window(windows: &mut Windows, at: f64, n: u32) -> BTreeMap<u64, u32> {
        let mut per_window = BTreeMap::new();
        for _ in 0..n {
            *per_window.entry(windows.book(secs(at)).window).or_default() += 1;
        }
        per_window
    }

    #[test]
    fn others_on_the_key_leave_us_our_share_of_the_next_windows() {
        let mut windows = Windows::new(20);
        // Ten of ours in window 100, each after one of another client's.
        assert_eq!(answered(&mut windows, 100.0, 10, 1, 100.3), (100, false));
        assert_eq!(
            per_window(&mut windows, 100.3, 25),
            BTreeMap::from([(101, 10), (102, 10), (103, 5)])
        );
    }

    #[test]
    fn starts_of_others_tied_with_our_last_one_are_theirs() {
        // Four clients, five starts each at the same moments; ours arrived
        // first each time, so the gateway had counted 17 by our last.
        let mut windows = Windows::new(20);
        let slots: Vec<WindowSlot> = (0..5).map(|_| windows.book(secs(100.0))).collect();
        for (k, slot) in (0..).zip(&slots) {
            windows.observe(*slot, 20, 20 - (4 * k + 1), secs(100.3));
        }
        assert_eq!(
            per_window(&mut windows, 100.3, 6),
            BTreeMap::from([(101, 5), (102, 1)])
        );
    }

    #[test]
    fn the_client_whose_starts_end_alone_gives_one_back() {
        // Ten of ours: five interleaved with another client's five, then
        // five alone at the end of the burst, which filled the window.
        let mut windows = Windows::new(15);
        let slots: Vec<WindowSlot> = (0..10).map(|_| windows.book(secs(100.0))).collect();
        for (k, slot) in (1..).zip(&slots) {
            let counted = if k <= 5 { 2 * k } else { 5 + k };
            windows.observe(*slot, 15, 15 - counted, secs(100.3));
        }
        assert_eq!(
            per_window(&mut windows, 100.3, 10),
            BTreeMap::from([(101, 9), (102, 1)]),
        );
    }

    #[test]
    fn the_whole_window_comes_back_two_windows_after_the_others_stop() {
        let mut windows = Windows::new(20);
        answered(&mut windows, 100.0, 10, 1, 100.3);
        // The others stopped: window 101 has only ours.
        assert_eq!(answered(&mut windows, 100.3, 10, 0, 101.3), (101, false));
        assert_eq!(answered(&mut windows, 101.3, 10, 0, 102.3), (102, false));
        assert_eq!(
            per_window(&mut windows, 102.3, 30),
            BTreeMap::from([(102, 10), (103, 20)]),
            "the rest of window 102 too"
        );
    }

    #[test]
    fn slots_booked_ahead_of_replies_that_show_others_are_void() {
        let mut windows = Windows::new(10);
        let slots: Vec<WindowSlot> = (0..20).map(|_| windows.book(secs(50.0))).collect();
        assert_eq!(slots[19].window, 51);
        // The first reply, before our second start: the gateway had
        // counted one of another client's too. Five each: our slots from
        // the sixth of window 50 on are too many, and void.
        assert!(windows.observe(slots[0], 10, 8, secs(50.021)));
        assert_eq!(
            per_window(&mut windows, 50.03, 10),
            BTreeMap::from([(50, 4), (51, 5), (52, 1)]),
            "slots booked again"
        );
    }

    #[test]
    fn alone_on_the_key_nothing_is_ever_void() {
        let mut windows = Windows::new(10);
        let slots: Vec<WindowSlot> = (0..30).map(|_| windows.book(secs(50.0))).collect();
        for (k, slot) in (1..).zip(&slots[..10]) {
            assert!(!windows.observe(*slot, 10, 10 - k, secs(50.07)));
        }
        assert!(!windows.shared());
        assert_eq!(windows.book(secs(50.07)).window, 53);
    }

    #[test]
    fn a_spent_window_after_one_of_ours_passed_was_filled_by_others() {
        let mut windows = Windows::new(10);
        let slots: Vec<WindowSlot> = (0..3).map(|_| windows.book(secs(70.0))).collect();
        windows.observe(slots[1], 10, 9, secs(70.03));
        // The one before it rejected: the clocks (the previous window).
        windows.spent(slots[0]);
        assert!(!windows.shared());
        let mut alone = windows.clone();
        alone.widen_guard();
        assert_eq!(alone.guard(), DEFAULT_GUARD + GUARD_STEP);
        // A later one rejected: the others took the other nine.
        windows.spent(slots[2]);
        assert!(windows.shared());
        windows.widen_guard();
        assert_eq!(
            windows.guard(),
            DEFAULT_GUARD,
            "the clocks are not to blame"
        );
        assert_eq!(
            per_window(&mut windows, 70.06, 2),
            BTreeMap::from([(71, 1), (72, 1)])
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

//! What the gateway's counts on the replies of one window said: how many
//! requests of other clients on the key it held, and so how much of the
//! next window is ours (see `Windows::observe` in `window.rs`).

use std::time::Duration;

/// What the replies of one window said; see `Windows::observe`.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Counted {
    /// The most the gateway had counted by one of our requests.
    pub(super) most: u32,
    /// Requests of other clients among them, at least: the gateway counts
    /// in order of arrival, and of ours it can have counted no more than
    /// those started by the time of the reply. (Not the slot's place among
    /// ours: threads woken together start in any order, and replies come
    /// back in any order.) Exact by the reply counted most, after our last
    /// start; never above 0 for a client alone on the key.
    pub(super) others: u32,
    /// Our requests that the gateway accepted, and when the first of them
    /// was booked.
    pub(super) accepted: u32,
    pub(super) first_accepted: Option<Duration>,
    /// When the last of ours that found the window spent was booked.
    pub(super) last_spent: Option<Duration>,
    /// The gateway's counts by our last three accepted requests, highest
    /// first: consecutive ones mean nobody else's came between them.
    pub(super) top: [u32; 3],
}

impl Counted {
    /// Whether others filled the window: one of ours found it spent after
    /// one of ours passed (a clock apart from the gateway's rejects the
    /// first starts of a window instead, before any of ours).
    fn filled(self) -> bool {
        self.first_accepted
            .zip(self.last_spent)
            .is_some_and(|(passed, spent)| spent > passed)
    }

    /// Requests of other clients in the window, at least.
    pub(super) fn others(self, limit: u32) -> u32 {
        if self.filled() {
            limit.saturating_sub(self.accepted)
        } else {
            self.others
        }
    }

    /// What this window leaves us in the next: our share of what the
    /// gateway had counted by our last start, of the whole limit. Alone,
    /// that is all of it. With others, the room left after our last start
    /// is split as the counts before it were: they burst as we do, from the
    /// same point of the window, and take their part of it too (their
    /// starts at the moment of our last one arrive after it as often as
    /// not). Clients that took unequal shares book toward equal ones: the
    /// smaller one's last start comes earlier and sees fewer of the others'.
    /// A window the others filled leaves us what it accepted of ours.
    pub(super) fn allowed(self, limit: u32) -> u32 {
        if self.filled() {
            return self.accepted;
        }
        if self.most == 0 {
            return limit;
        }
        let most = u64::from(self.most);
        let ours = most.saturating_sub(u64::from(self.others));
        let share = u32::try_from(ours * u64::from(limit) / most).unwrap_or(u32::MAX);
        share.saturating_sub(u32::from(self.alone_at_the_end()))
    }

    /// Whether our last starts came after all of the others' (each of the
    /// last three counted right after the one before): we took more than
    /// any of them. One start goes back to them, or nothing would move
    /// the shares toward equal ones.
    fn alone_at_the_end(self) -> bool {
        let [last, before, third] = self.top;
        self.others > 0 && third > 0 && last == before + 1 && before == third + 1
    }

    /// Keeps `counted`, a count by one of our accepted requests, among
    /// the top three.
    pub(super) fn heard(&mut self, counted: u32) {
        if counted > self.top[2] && !self.top.contains(&counted) {
            self.top[2] = counted;
            self.top.sort_unstable_by(|a, b| b.cmp(a));
        }
    }
}

//! How far the actual starts on a shared schedule run behind their slots,
//! and the slack that adds to the spacing of the slots booked next.
//!
//! A start keeps its gap after the previous actual start, whichever process
//! made it (`wait.rs`), and each start leaves a little after that gap:
//! waking, telling the others, a write that took longer than usual. Redis
//! spaces the slots by the same gap and books them a tenth of a second
//! ahead, so those delays add up: the starts fall ever further behind their
//! slots, until a holder, no longer hearing the start before its own in
//! time, goes together with it. Measured with 4 processes at 100/s on a
//! leaky bucket: starts 10-20 ms behind their slots, and a 429 each time
//! they caught up by going in pairs. So the slots booked next are spaced
//! wider by a share of how far behind the starts run, and the starts catch
//! up; the gap after each start stays as it was.

use std::time::{Duration, Instant};

/// The slack added to each slot's spacing: this share of how far behind
/// the last start ran. Slots are booked about ten ahead, so a larger share
/// would overshoot.
const SLACK_SHARE: u32 = 16;
/// At most this share of the spacing: a start that ran far behind (after a
/// pause, a stalled machine) must not slow the schedule for long.
const MAX_SLACK_SHARE: u32 = 10;

/// See the module docs.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Lateness {
    behind: Duration,
}

impl Lateness {
    /// A start booked for `slot` was made at `started`.
    pub(super) fn observe(&mut self, slot: Instant, started: Instant) {
        self.behind = started.saturating_duration_since(slot);
    }

    /// The slack to add to a slot spaced `increment` after the one before.
    pub(super) fn slack(&self, increment: Duration) -> Duration {
        (self.behind / SLACK_SHARE).min(increment / MAX_SLACK_SHARE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_behind_their_slots_widen_the_next_slots_by_a_share_of_it() {
        let mut lateness = Lateness::default();
        let slot = Instant::now();
        let interval = Duration::from_millis(10);
        assert_eq!(lateness.slack(interval), Duration::ZERO);
        lateness.observe(slot, slot + Duration::from_micros(800));
        assert_eq!(lateness.slack(interval), Duration::from_micros(50));
        // Far behind: at most a tenth of the spacing.
        lateness.observe(slot, slot + Duration::from_millis(20));
        assert_eq!(lateness.slack(interval), Duration::from_millis(1));
        // Caught up (or early: a turn): no slack.
        lateness.observe(slot, slot);
        assert_eq!(lateness.slack(interval), Duration::ZERO);
    }
}

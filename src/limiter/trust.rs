//! Checking the model against the replies: evidence that the rate-limit
//! headers do not describe the layer that rejects.
//!
//! - In window mode the limiter keeps the budget the headers announce; a 429
//!   that does not say the window is spent contradicts them. A second one
//!   means another layer (a proxy with a lower limit, a sliding window)
//!   rejects: the headers are not believed any more, for the rest of the run.
//! - Window mode sends each window's budget early in the window. If that
//!   burst spends two windows in a row, the gateway punishes bursts (a
//!   sliding window counts the previous one too): even pacing from then on.
//! - A spent window (`Remaining` 0) pauses every start until the next one,
//!   where a full budget waits; but only from a gateway whose successes
//!   carry window counts too (Kong's do): a limiter that adds `Remaining: 0`
//!   to its 429s alone (a leaky bucket, say) counts no windows. And if the
//!   next spent window comes before even two requests passed, the window
//!   was not what rejected: from then on such 429s are spacing errors, and
//!   pause nobody.

use std::time::Instant;

/// Contradictions that make the window headers unbelievable.
const CONTRADICTIONS: u32 = 2;
/// Requests that must pass between two spent windows for them to be real.
const PASSED_BETWEEN_SPENT: u32 = 2;

/// See the module docs.
#[derive(Debug, Clone, Default)]
pub(super) struct Trust {
    contradictions: u32,
    /// Whether a success ever carried window counts.
    windows_seen: bool,
    windows_disbelieved: bool,
    spent_disbelieved: bool,
    /// When the last spent window was believed, and requests passed since.
    last_spent: Option<(Instant, u32)>,
    /// The last window a burst of window mode found spent.
    last_burst_spent: Option<u64>,
    /// Whether any reply came yet, and whether any carried window counts.
    replied: bool,
    windows_in_a_reply: bool,
}

impl Trust {
    /// A request passed; `with_window` when its reply carried window counts.
    pub(super) fn accepted(&mut self, with_window: bool) {
        self.replied(with_window);
        self.windows_seen |= with_window;
        if let Some((_, passed)) = self.last_spent.as_mut() {
            *passed = passed.saturating_add(1);
        }
    }

    /// A reply came (accepted or rejected); `with_window` when it carried
    /// window counts.
    pub(super) fn replied(&mut self, with_window: bool) {
        self.replied = true;
        self.windows_in_a_reply |= with_window;
    }

    /// Whether the gateway counts gaps between requests, not windows: it
    /// replied, never with window counts (a leaky bucket such as nginx's).
    pub(super) fn counts_gaps(&self) -> bool {
        self.replied && !self.windows_in_a_reply
    }

    /// Whether any reply came yet: before one, the gateway's kind is unknown.
    pub(super) fn has_replied(&self) -> bool {
        self.replied
    }

    /// Whether window headers still describe the gateway that rejects.
    pub(super) fn windows_believed(&self) -> bool {
        !self.windows_disbelieved
    }

    /// A 429 in window mode that does not say the window is spent. Returns
    /// `true` when this one makes the headers unbelievable.
    pub(super) fn contradicted(&mut self) -> bool {
        self.contradictions += 1;
        if self.contradictions >= CONTRADICTIONS && !self.windows_disbelieved {
            self.windows_disbelieved = true;
            return true;
        }
        false
    }

    /// Window mode's burst found `window` (whole seconds since the epoch)
    /// spent. Returns `true` when this makes window mode unbelievable: the
    /// window before was spent too.
    pub(super) fn burst_spent(&mut self, window: u64) -> bool {
        let in_a_row = self.last_burst_spent.is_some_and(|last| last + 1 == window);
        if self.last_burst_spent.is_none_or(|last| last < window) {
            self.last_burst_spent = Some(window);
        }
        if in_a_row && !self.windows_disbelieved {
            self.windows_disbelieved = true;
            return true;
        }
        false
    }

    /// A 429 saying the window is spent, for a request that started at
    /// `started`, seen at `now`: whether to believe it. With other clients
    /// on the key (`shared`: the window counts said so), they may spend a
    /// window before ours pass: no evidence against it.
    pub(super) fn spent_window(&mut self, started: Instant, now: Instant, shared: bool) -> bool {
        if self.spent_disbelieved || !self.windows_seen {
            return false;
        }
        match self.last_spent {
            // Sent before the last spent window was seen: the same episode.
            Some((seen, _)) if started < seen => return true,
            Some((_, passed)) if passed < PASSED_BETWEEN_SPENT && !shared => {
                self.spent_disbelieved = true;
                log::info!(
                    "'window spent' 429s right after a fresh window: not a window \
                     limit; they pause nobody from now on"
                );
                return false;
            }
            _ => {}
        }
        self.last_spent = Some((now, 0));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_gateway_counts_gaps_until_a_reply_carries_window_counts() {
        let mut trust = Trust::default();
        assert!(!trust.counts_gaps(), "no reply yet");
        trust.replied(false);
        assert!(trust.counts_gaps());
        trust.replied(true);
        assert!(!trust.counts_gaps());
        trust.replied(false);
        assert!(!trust.counts_gaps(), "window counts once seen stick");
    }

    #[test]
    fn bursts_that_spend_two_windows_in_a_row_end_window_mode() {
        let mut trust = Trust::default();
        assert!(!trust.burst_spent(100));
        assert!(!trust.burst_spent(100), "the same window");
        assert!(!trust.burst_spent(102), "not in a row");
        assert!(trust.burst_spent(103));
        assert!(!trust.windows_believed());
        assert!(!trust.burst_spent(104), "said once");
    }

    #[test]
    fn two_contradictions_and_the_headers_are_not_believed() {
        let mut trust = Trust::default();
        assert!(!trust.contradicted());
        assert!(trust.windows_believed());
        assert!(trust.contradicted());
        assert!(!trust.windows_believed());
        assert!(!trust.contradicted(), "said once");
    }

    #[test]
    fn others_on_the_key_may_spend_a_window_before_ours_pass() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut trust = Trust::default();
        trust.accepted(true);
        assert!(trust.spent_window(t0, t0 + ms(10), true));
        assert!(trust.spent_window(t0 + ms(1100), t0 + ms(1150), true));
        assert!(!trust.spent_window(t0 + ms(2100), t0 + ms(2150), false));
    }

    #[test]
    fn spent_windows_need_requests_passing_between_them() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut trust = Trust::default();
        assert!(
            !trust.spent_window(t0, t0, false),
            "no window counts seen yet"
        );
        trust.accepted(true);
        assert!(trust.spent_window(t0, t0 + ms(10), false));
        assert!(
            trust.spent_window(t0 + ms(5), t0 + ms(12), false),
            "in flight before"
        );
        trust.accepted(false);
        trust.accepted(false);
        assert!(
            trust.spent_window(t0 + ms(1100), t0 + ms(1150), false),
            "two passed"
        );
        trust.accepted(false);
        assert!(!trust.spent_window(t0 + ms(2100), t0 + ms(2150), false));
        trust.accepted(false);
        trust.accepted(false);
        assert!(
            !trust.spent_window(t0 + ms(3100), t0 + ms(3150), false),
            "for good"
        );
    }
}

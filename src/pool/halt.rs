//! Whether a run is stopping, and the first reason it aborted itself.

use super::summary::{AbortReason, LongPause};
use crate::stop::Stop;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// The run's stop signal, with the reason of the first abort. The signal is
/// the run's own (a [`Stop::child`] of the caller's): an abort gives it and
/// leaves the caller's as it was.
pub(super) struct Halt<'a> {
    stop: &'a Stop,
    abort: Mutex<Option<AbortReason>>,
    /// Whether a start was refused for want of budget.
    budget_spent: AtomicBool,
    /// A pause of every start longer than the run may wait, if one came.
    long_pause: Mutex<Option<LongPause>>,
}

impl<'a> Halt<'a> {
    /// Listens to `stop`; not aborted yet.
    pub(super) fn new(stop: &'a Stop) -> Halt<'a> {
        Halt {
            stop,
            abort: Mutex::new(None),
            budget_spent: AtomicBool::new(false),
            long_pause: Mutex::new(None),
        }
    }

    /// Stops the run for `reason`; the first reason given is the one kept.
    pub(super) fn abort(&self, reason: AbortReason) {
        self.abort.lock().get_or_insert(reason);
        self.stop.stop();
    }

    /// Whether a start was refused because the budget was spent.
    pub(super) fn budget_spent(&self) -> bool {
        self.budget_spent.load(Ordering::SeqCst)
    }

    /// Stops the run: the budget of starts is spent.
    pub(super) fn spend_out(&self) {
        self.budget_spent.store(true, Ordering::SeqCst);
        self.stop.stop();
    }

    /// Stops the run: every start is held longer than it may wait.
    pub(super) fn pause_out(&self, pause: LongPause) {
        self.long_pause.lock().get_or_insert(pause);
        self.stop.stop();
    }

    /// The pause that stopped the run, if one did.
    pub(super) fn long_pause(&self) -> Option<LongPause> {
        *self.long_pause.lock()
    }

    /// Whether the run is stopping (given from outside, or aborted).
    pub(super) fn is_stopped(&self) -> bool {
        self.stop.is_stopped()
    }

    /// The stop signal itself, for waits that it must cut short.
    pub(super) fn stop(&self) -> &'a Stop {
        self.stop
    }

    /// Why the run aborted, if it did.
    pub(super) fn into_abort(self) -> Option<AbortReason> {
        self.abort.into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_abort_stops_the_run_and_the_first_reason_is_kept() {
        let stop = Stop::new();
        let halt = Halt::new(&stop);
        assert!(!halt.is_stopped());
        halt.abort(AbortReason::Job);
        halt.abort(AbortReason::Internal("later".into()));
        assert!(stop.is_stopped());
        assert_eq!(halt.into_abort(), Some(AbortReason::Job));
    }

    #[test]
    fn a_stop_from_outside_is_no_abort() {
        let stop = Stop::new();
        let halt = Halt::new(&stop);
        stop.stop();
        assert!(halt.is_stopped());
        assert_eq!(halt.into_abort(), None);
    }
}

//! The first try alone ([`PoolConfig::first_try_alone`](super::PoolConfig::first_try_alone)):
//! no other try starts until the first one has ended (or a set time has
//! passed, so a slow first reply does not hold the run), so what its reply
//! teaches (the gateway's windows, a quota the work checks) is known before
//! the rest go out.

use crate::stop::Stop;
use parking_lot::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How often a worker waiting for the first try looks at the stop signal.
const STOP_CHECK: Duration = Duration::from_millis(20);

/// Where the run is with its first try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No try has been let through yet.
    NotTaken,
    /// One worker holds the first try; the others wait until this instant at most.
    Taken { until: Instant },
    /// The first try ended (or there is none to wait for).
    Done,
}

/// The gate before each start.
pub(super) struct FirstTry {
    state: Mutex<State>,
    done: Condvar,
    /// How long the others wait for the first try at most.
    hold: Duration,
}

/// What the gate says to a worker about to start a try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Turn {
    /// This worker's try is the first: call [`FirstTry::end`] after it.
    First,
    /// The first try has ended: go.
    Go,
}

impl FirstTry {
    /// A gate that holds every try after the first until it ends, or for
    /// `hold` at most; with `None`, an open gate.
    pub(super) fn new(hold: Option<Duration>) -> FirstTry {
        FirstTry {
            state: Mutex::new(if hold.is_some() {
                State::NotTaken
            } else {
                State::Done
            }),
            done: Condvar::new(),
            hold: hold.unwrap_or_default(),
        }
    }

    /// Waits until this worker may start: at once for the first caller and
    /// once the first try has ended for the others; `None` if the run stops
    /// meanwhile.
    pub(super) fn turn(&self, stop: &Stop) -> Option<Turn> {
        let mut state = self.state.lock();
        loop {
            match *state {
                State::Done => return Some(Turn::Go),
                State::NotTaken => {
                    let now = Instant::now();
                    // An overflow holds the others (about a year), not nobody.
                    let until = crate::limiter::later(now, self.hold);
                    *state = State::Taken { until };
                    return Some(Turn::First);
                }
                State::Taken { .. } if stop.is_stopped() => return None,
                State::Taken { until } if Instant::now() >= until => return Some(Turn::Go),
                State::Taken { .. } => {
                    self.done.wait_for(&mut state, STOP_CHECK);
                }
            }
        }
    }

    /// The first try ended (or never started): let every worker go.
    pub(super) fn end(&self) {
        *self.state.lock() = State::Done;
        self.done.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn no_try_starts_before_the_first_has_ended() {
        let gate = FirstTry::new(Some(Duration::from_secs(60)));
        let stop = Stop::new();
        let first_ended = AtomicBool::new(false);
        assert_eq!(gate.turn(&stop), Some(Turn::First));
        std::thread::scope(|scope| {
            let waiters: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        let turn = gate.turn(&stop);
                        (turn, first_ended.load(Ordering::SeqCst))
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_millis(50));
            first_ended.store(true, Ordering::SeqCst);
            gate.end();
            for waiter in waiters {
                assert_eq!(waiter.join().unwrap(), (Some(Turn::Go), true));
            }
        });
    }

    #[test]
    fn an_open_gate_never_waits_and_a_stop_ends_the_wait() {
        let stop = Stop::new();
        assert_eq!(FirstTry::new(None).turn(&stop), Some(Turn::Go));
        let gate = FirstTry::new(Some(Duration::from_secs(60)));
        assert_eq!(gate.turn(&stop), Some(Turn::First));
        stop.stop();
        assert_eq!(gate.turn(&stop), None);
    }

    #[test]
    fn a_slow_first_try_holds_the_others_only_so_long() {
        let stop = Stop::new();
        let gate = FirstTry::new(Some(Duration::from_millis(100)));
        assert_eq!(gate.turn(&stop), Some(Turn::First));
        // The first never ends: the next goes once the hold is over.
        let started = Instant::now();
        assert_eq!(gate.turn(&stop), Some(Turn::Go));
        assert!(started.elapsed() >= Duration::from_millis(80));
    }
}

//! The shared limit's threads of its own (the heartbeat, the subscriber):
//! told to stop all at once, and waited for a while at most. A Redis that
//! hangs (stopped, not gone: a host frozen, packets dropped) holds each of
//! them in a call until its timeout; joined one after the other, they held
//! the end of a run for seconds (measured: a run's exit 1.4 s after its last
//! outcome with Redis stopped by SIGSTOP, 0.06 s with Redis up). A thread
//! still in a call when the wait is over ends on its own once the call
//! fails; it holds nothing of its owner's but the shared state.

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a drop waits for the threads to end: a healthy Redis answers
/// their last calls (the heartbeat's removal of the process) in
/// milliseconds, even on a loaded machine.
pub(super) const END_WAIT: Duration = Duration::from_millis(500);

/// One of the threads.
#[derive(Debug)]
pub(super) struct Background {
    stop: Sender<()>,
    /// Closed when the thread's body has returned (or unwound).
    ended: Receiver<()>,
    thread: JoinHandle<()>,
}

/// Runs `body` on a thread named `name`; `body` ends when its receiver is
/// sent to or closed.
pub(super) fn spawn(name: &str, body: impl FnOnce(Receiver<()>) + Send + 'static) -> Background {
    let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
    let (ends, ended) = crossbeam_channel::bounded::<()>(0);
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _ends = ends;
            body(stopped);
        })
        .unwrap_or_else(|e| panic!("spawning the {name} thread: the OS refused a thread: {e}"));
    Background {
        stop,
        ended,
        thread,
    }
}

/// Tells every one of `threads` to stop, then waits for them until `wait`
/// has passed; those still running are left to end on their own.
pub(super) fn stop_all(threads: impl IntoIterator<Item = Background>, wait: Duration) {
    let deadline = Instant::now() + wait;
    // Every thread is told (its stop dropped) before any is waited for.
    let waiting: Vec<_> = threads
        .into_iter()
        .map(
            |Background {
                 stop,
                 ended,
                 thread,
             }| {
                drop(stop);
                (ended, thread)
            },
        )
        .collect();
    for (ended, thread) in waiting {
        // Disconnected: the body has returned, and the join is immediate.
        if let Err(RecvTimeoutError::Disconnected) = ended.recv_deadline(deadline) {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Runs `stop_all` on a thread of its own; whether it returned within
    /// 10 s (a join of a thread that never ends would never return).
    fn stop_all_returns(threads: Vec<Background>, wait: Duration) -> bool {
        let (returned, has_returned) = crossbeam_channel::bounded::<()>(1);
        std::thread::spawn(move || {
            stop_all(threads, wait);
            let _ = returned.send(());
        });
        has_returned.recv_timeout(Duration::from_secs(10)).is_ok()
    }

    #[test]
    fn every_thread_is_told_before_any_is_waited_for() {
        let told = Arc::new(AtomicUsize::new(0));
        let saw_both = Arc::new(AtomicUsize::new(0));
        let threads = (0..2)
            .map(|_| {
                let (told, saw_both) = (told.clone(), saw_both.clone());
                spawn("told", move |stopped| {
                    let _ = stopped.recv();
                    told.fetch_add(1, Ordering::SeqCst);
                    // Told one at a time, this one would wait for the other
                    // in vain: the other is told only once this one ends.
                    let deadline = Instant::now() + Duration::from_secs(2);
                    while told.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    if told.load(Ordering::SeqCst) == 2 {
                        saw_both.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        assert!(stop_all_returns(threads, Duration::from_secs(5)));
        assert_eq!(saw_both.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_thread_stuck_past_the_wait_is_left_to_end_on_its_own() {
        let (release, held) = crossbeam_channel::bounded::<()>(0);
        let (done, finished) = crossbeam_channel::bounded::<()>(1);
        let stuck = spawn("stuck", move |_stopped| {
            let _ = held.recv();
            let _ = done.send(());
        });
        assert!(
            stop_all_returns(vec![stuck], Duration::from_millis(100)),
            "waited for a thread that cannot end"
        );
        assert!(finished.try_recv().is_err());
        drop(release);
        assert!(finished.recv_timeout(Duration::from_secs(5)).is_ok());
    }

    #[test]
    fn a_thread_that_ends_in_time_is_joined() {
        let (done, finished) = crossbeam_channel::bounded::<()>(1);
        let quick = spawn("quick", move |stopped| {
            let _ = stopped.recv();
            std::thread::sleep(Duration::from_millis(50));
            let _ = done.send(());
        });
        assert!(stop_all_returns(vec![quick], Duration::from_secs(5)));
        assert!(
            finished.try_recv().is_ok(),
            "returned before the thread ended"
        );
    }
}

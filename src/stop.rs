//! A stop signal that wakes every sleeper at once.
//!
//! Workers sleep in the limiter and between retries; on Ctrl-C or an auth
//! failure they must all wake now, not when their sleep would have ended.

use parking_lot::{Condvar, Mutex};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Cheap to clone; every clone sees the same signal.
#[derive(Debug, Clone, Default)]
pub struct Stop {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stop {
    /// A signal that has not been given.
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Gives the signal and wakes every sleeper. Idempotent.
    pub fn stop(&self) {
        *self.inner.stopped.lock() = true;
        self.inner.wake.notify_all();
    }

    /// Whether the signal has been given.
    pub fn is_stopped(&self) -> bool {
        *self.inner.stopped.lock()
    }

    /// Sleeps for `duration` unless stopped first. Returns `false` if stopped.
    pub fn sleep(&self, duration: Duration) -> bool {
        match Instant::now().checked_add(duration) {
            Some(deadline) => self.sleep_until(deadline),
            // A sleep past the end of time: wait for the signal only.
            None => {
                let mut stopped = self.inner.stopped.lock();
                while !*stopped {
                    self.inner.wake.wait(&mut stopped);
                }
                false
            }
        }
    }

    /// Sleeps until `deadline` unless stopped first. Returns `false` if stopped.
    pub fn sleep_until(&self, deadline: Instant) -> bool {
        let mut stopped = self.inner.stopped.lock();
        while !*stopped {
            if self
                .inner
                .wake
                .wait_until(&mut stopped, deadline)
                .timed_out()
            {
                return !*stopped;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::thread;

    #[test]
    fn sleep_runs_its_course_without_the_signal() {
        let stop = Stop::new();
        let start = Instant::now();
        assert!(stop.sleep(Duration::from_millis(20)));
        assert!(start.elapsed() >= Duration::from_millis(20));
    }

    /// Whether the thread `tid` of this process is blocked (state `S`).
    fn is_blocked(tid: &str) -> bool {
        std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
            .ok()
            .and_then(|stat| {
                // The state follows the name, which is in parentheses.
                let after_name = &stat[stat.rfind(')')? + 1..];
                after_name.split_whitespace().next().map(|s| s == "S")
            })
            .unwrap_or(false)
    }

    #[test]
    fn the_signal_wakes_a_long_sleeper() {
        let stop = Stop::new();
        let (tid_tx, tid_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel();
        let sleeper = {
            let stop = stop.clone();
            thread::spawn(move || {
                let me = std::fs::read_link("/proc/thread-self").expect("Linux /proc");
                let tid = me.file_name().unwrap().to_string_lossy().into_owned();
                tid_tx.send(tid).unwrap();
                done_tx.send(stop.sleep(Duration::from_secs(600))).unwrap();
            })
        };
        let tid = tid_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        // Give the signal only once the sleeper is blocked in its wait
        // (nobody else takes the lock, so a blocked sleeper is waiting on
        // the condition variable): then only the wake-up can end its sleep.
        let start = Instant::now();
        while !is_blocked(&tid) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the sleeper never blocked"
            );
            thread::yield_now();
        }
        stop.stop();
        let slept = done_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the signal wakes the sleeper (not after 10 s)");
        assert!(!slept, "a sleep ended by the signal returns false");
        sleeper.join().unwrap();
        assert!(stop.is_stopped());
        assert!(!stop.sleep(Duration::from_secs(600)));
    }
}

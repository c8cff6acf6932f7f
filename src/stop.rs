//! A stop signal that wakes every sleeper at once.
//!
//! Workers sleep in the limiter and between retries; on Ctrl-C or an auth
//! failure they must all wake now, not when their sleep would have ended.
//!
//! A [`Stop::child`] hears its parent but does not speak to it: a run stops
//! its own child when it aborts, and the caller's stop (the one the signal
//! handler holds, reused for the next run) stays as it was.

use parking_lot::{Condvar, Mutex};
use std::sync::{Arc, Weak};
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
    /// The children to stop with this one; weak, so that a finished run's
    /// child is freed (and pruned here when the next one is added).
    children: Mutex<Vec<Weak<Inner>>>,
}

impl Inner {
    /// Gives the signal here and in every live child. Locks go parent before
    /// child only, so two stops cannot deadlock.
    fn stop(&self) {
        *self.stopped.lock() = true;
        self.wake.notify_all();
        let children = std::mem::take(&mut *self.children.lock());
        for child in children.iter().filter_map(Weak::upgrade) {
            child.stop();
        }
    }
}

impl Stop {
    /// A signal that has not been given.
    pub fn new() -> Stop {
        Stop::default()
    }

    /// A new signal that is given when this one is (now, if it already
    /// was), and can be given on its own without giving this one.
    pub fn child(&self) -> Stop {
        let child = Stop::new();
        let mut children = self.inner.children.lock();
        // `stop` sets the flag before it takes the children: either this
        // child is in the list it takes, or the flag is already seen here.
        if self.is_stopped() {
            *child.inner.stopped.lock() = true;
        } else {
            children.retain(|weak| weak.strong_count() > 0);
            children.push(Arc::downgrade(&child.inner));
        }
        child
    }

    /// Gives the signal and wakes every sleeper, this stop's children's
    /// too. Idempotent.
    pub fn stop(&self) {
        self.inner.stop();
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

    #[test]
    fn a_child_hears_its_parent_but_does_not_stop_it() {
        let parent = Stop::new();
        let own = parent.child();
        own.stop();
        assert!(own.is_stopped());
        assert!(!parent.is_stopped());
        let child = parent.child();
        let grandchild = child.child();
        let sleeper = {
            let grandchild = grandchild.clone();
            thread::spawn(move || grandchild.sleep(Duration::from_secs(600)))
        };
        thread::sleep(Duration::from_millis(20));
        parent.stop();
        assert!(!sleeper.join().unwrap(), "the grandchild woke");
        assert!(child.is_stopped() && grandchild.is_stopped());
        assert!(parent.child().is_stopped(), "born stopped");
    }

    #[test]
    fn finished_children_are_not_kept() {
        let parent = Stop::new();
        for _ in 0..100 {
            drop(parent.child());
        }
        let _live = parent.child();
        assert_eq!(parent.inner.children.lock().len(), 1);
    }
}

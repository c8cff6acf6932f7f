//! The books of unfinished jobs: how many jobs still lack a terminal outcome.
//!
//! A job leaves the books only when it is handed to the sink, so a job back
//! in the queue or waiting in the delay heap still counts; the shutdown pills
//! go out when this count reaches zero, never when the queue merely looks
//! empty, and never while the feed still holds jobs.

use crossbeam_channel::{Receiver, Sender};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The count of unfinished jobs, and a bell that rings when it reaches zero.
pub(super) struct Books {
    unfinished: AtomicUsize,
    /// Rung (without blocking) by whoever closes the last job; one ring is
    /// enough, so the channel holds one.
    bell_tx: Sender<()>,
    bell_rx: Receiver<()>,
}

impl Books {
    /// Books with `total` jobs open.
    pub(super) fn open(total: usize) -> Books {
        let (bell_tx, bell_rx) = crossbeam_channel::bounded(1);
        Books {
            unfinished: AtomicUsize::new(total),
            bell_tx,
            bell_rx,
        }
    }

    /// One more job is open (the feed moved it into the queue).
    pub(super) fn open_one(&self) {
        self.unfinished.fetch_add(1, Ordering::SeqCst);
    }

    /// Rings the bell without closing a job: the queue runs low and the
    /// supervisor should feed it.
    pub(super) fn ring(&self) {
        let _ = self.bell_tx.try_send(());
    }

    /// One job got its terminal outcome; rings the bell if it was the last.
    pub(super) fn close_one(&self) {
        if self.unfinished.fetch_sub(1, Ordering::SeqCst) == 1 {
            let _ = self.bell_tx.try_send(());
        }
    }

    /// Whether every job has its terminal outcome.
    pub(super) fn all_closed(&self) -> bool {
        self.unfinished.load(Ordering::SeqCst) == 0
    }

    /// Waits up to `timeout`, or until the last open job closes or the bell
    /// is rung.
    pub(super) fn wait_for_last(&self, timeout: Duration) {
        let _ = self.bell_rx.recv_timeout(timeout);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn the_bell_rings_when_the_last_job_closes_not_before() {
        let books = Books::open(2);
        books.close_one();
        assert!(!books.all_closed());
        assert!(books.bell_rx.is_empty());
        books.close_one();
        assert!(books.all_closed());
        let started = Instant::now();
        books.wait_for_last(Duration::from_secs(30));
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}

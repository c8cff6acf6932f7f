//! The job queue: one MPMC channel carrying jobs (with their try counts) and
//! the shutdown pills that end the workers.

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// What a worker takes off the queue.
pub(super) enum Message<J> {
    /// A job to try.
    Job(Tracked<J>),
    /// A poison pill: the worker that takes it ends.
    Shutdown,
}

/// A job with the tries it has had so far.
pub(super) struct Tracked<J> {
    pub(super) job: J,
    /// Tries made, rate-limited ones included.
    pub(super) attempts: u32,
    /// Tries that ended in a transient failure.
    pub(super) transient: u32,
    /// Tries answered with a rate-limit reply.
    pub(super) rate_limited: u32,
}

impl<J> Tracked<J> {
    /// A job not tried yet.
    pub(super) fn new(job: J) -> Tracked<J> {
        Tracked {
            job,
            attempts: 0,
            transient: 0,
            rate_limited: 0,
        }
    }
}

/// The queue. It holds both ends of its channel, so a send never fails and a
/// receive never sees it disconnected while the queue lives.
pub(super) struct Queue<J> {
    tx: Sender<Message<J>>,
    rx: Receiver<Message<J>>,
    /// At or below this many messages the feed wants more; 0 once it has
    /// fed everything.
    low_water: AtomicUsize,
}

impl<J> Queue<J> {
    /// An empty queue.
    pub(super) fn new() -> Queue<J> {
        let (tx, rx) = crossbeam_channel::unbounded();
        Queue {
            tx,
            rx,
            low_water: AtomicUsize::new(0),
        }
    }

    /// Sets the mark at or below which [`Queue::running_low`] says so.
    pub(super) fn set_low_water(&self, messages: usize) {
        self.low_water.store(messages, Ordering::Relaxed);
    }

    /// Whether the feed should top the queue up now.
    pub(super) fn running_low(&self) -> bool {
        let low = self.low_water.load(Ordering::Relaxed);
        low > 0 && self.rx.len() <= low
    }

    /// Puts a job (back) at the end of the queue.
    pub(super) fn push(&self, tracked: Tracked<J>) {
        self.tx
            .send(Message::Job(tracked))
            .expect("the receiver lives in the queue as long as its sender");
    }

    /// Sends `count` shutdown pills.
    pub(super) fn shut_down(&self, count: usize) {
        for _ in 0..count {
            self.tx
                .send(Message::Shutdown)
                .expect("the receiver lives in the queue as long as its sender");
        }
    }

    /// The next message, waiting up to `timeout` for one.
    pub(super) fn recv_timeout(&self, timeout: Duration) -> Result<Message<J>, RecvTimeoutError> {
        self.rx.recv_timeout(timeout)
    }

    /// Messages waiting.
    pub(super) fn len(&self) -> usize {
        self.rx.len()
    }
}

//! Jobs read on a thread of their own: a source whose iterator blocks (a
//! channel fed by the embedding tool, a socket) never holds the supervisor,
//! which goes on releasing retries, resizing and stopping while it waits.
//!
//! The reader hands jobs over through a bounded channel, so it runs at most
//! a backlog ahead of the queue. When the run ends first, the reader is
//! left blocked in the iterator: it ends at its next job (whose send fails)
//! or with the iterator; a scoped thread could not be left so, and the run
//! would wait for a producer that may never speak again.

use super::feed::{Pulled, Source, BACKLOG};
use super::worker::panic_message;
use crossbeam_channel::{Receiver, TryRecvError};
use std::io;
use std::thread::{self, JoinHandle};

/// A job iterator read on its own thread.
pub(super) struct Streamed<T> {
    jobs: Receiver<T>,
    reader: Option<JoinHandle<()>>,
    /// The iterator's length when its size hint said it exactly.
    total: Option<usize>,
    /// Jobs taken from the channel so far.
    taken: usize,
}

impl<T: Send + 'static> Streamed<T> {
    /// Starts reading `jobs` on a thread named `restb-jobs`.
    pub(super) fn spawn<I>(jobs: I) -> io::Result<Streamed<T>>
    where
        I: Iterator<Item = T> + Send + 'static,
    {
        let total = match jobs.size_hint() {
            (low, Some(high)) if low == high => Some(low),
            _ => None,
        };
        let (sender, receiver) = crossbeam_channel::bounded(BACKLOG);
        let reader = thread::Builder::new()
            .name("restb-jobs".into())
            .spawn(move || {
                for job in jobs {
                    if sender.send(job).is_err() {
                        return; // the run has ended
                    }
                }
            })?;
        Ok(Streamed {
            jobs: receiver,
            reader: Some(reader),
            total,
            taken: 0,
        })
    }
}

impl<T> Source for Streamed<T> {
    type Job = T;

    fn pull(&mut self) -> Pulled<T> {
        match self.jobs.try_recv() {
            Ok(job) => {
                self.taken += 1;
                Pulled::Job(job)
            }
            Err(TryRecvError::Empty) => Pulled::NotYet,
            Err(TryRecvError::Disconnected) => match self.reader.take().map(JoinHandle::join) {
                Some(Err(panic)) => Pulled::Failed(format!(
                    "the job iterator panicked: {}",
                    panic_message(panic.as_ref())
                )),
                _ => Pulled::Ended,
            },
        }
    }

    /// The rest of an exact length; otherwise the jobs already read and
    /// waiting in the channel (the iterator itself cannot be asked).
    fn left(&mut self) -> usize {
        match self.total {
            Some(total) => total.saturating_sub(self.taken),
            None => self.jobs.len(),
        }
    }
}

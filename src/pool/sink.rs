//! The sink: where finished jobs go, on one thread, in completion order.
//!
//! Workers never call the sink; they send finished jobs down a channel that
//! one thread drains ([`drain`]), collecting them for a moment while they
//! keep coming so the sink can write them in batches.

use super::work::{Finished, Work};
use crate::stop::Stop;
use crossbeam_channel::{Receiver, TryRecvError};
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread;
use std::time::Duration;

/// How long the sink collects outcomes between writes while they keep coming.
const SINK_BATCH: Duration = Duration::from_millis(2);

/// Where finished jobs go: one thread calls it, in completion order.
///
/// Any `FnMut(Finished) -> io::Result<()>` is a sink that needs no flush;
/// [`Pool::run`](super::Pool::run) takes such a closure,
/// [`Pool::run_into`](super::Pool::run_into) any sink.
pub trait Sink<J, O> {
    /// Records one finished job (it may buffer).
    ///
    /// # Errors
    /// An I/O error stops the run.
    fn record(&mut self, finished: Finished<J, O>) -> io::Result<()>;

    /// Called whenever no finished job is waiting: write out what is buffered.
    ///
    /// # Errors
    /// An I/O error stops the run.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<J, O, F> Sink<J, O> for F
where
    F: FnMut(Finished<J, O>) -> io::Result<()>,
{
    fn record(&mut self, finished: Finished<J, O>) -> io::Result<()> {
        self(finished)
    }
}

/// What the sink thread did.
pub(super) struct Drained {
    /// Finished jobs the sink recorded and flushed.
    pub(super) written: u64,
    /// The first error the sink returned.
    pub(super) error: Option<io::Error>,
}

/// Hands everything `rx` brings to `sink` until every sender is gone. At the
/// sink's first error it stops the run (`stop`) and records nothing more;
/// a panic's message goes through `work`'s redaction (it may quote a job).
pub(super) fn drain<W: Work, S: Sink<W::Job, W::Output>>(
    rx: Receiver<Finished<W::Job, W::Output>>,
    sink: S,
    work: &W,
    stop: &Stop,
) -> Drained {
    let mut counting = CountingSink {
        sink,
        work,
        written: 0,
        buffered: 0,
        error: None,
        flush_failed: false,
        reported: false,
    };
    let mut busy = false;
    while let Some(first) = next_batch(&rx, busy) {
        let batch = counting.record_all(std::iter::once(first).chain(rx.try_iter()));
        busy = batch > 1;
        counting.flush();
        counting.report_error(stop);
    }
    counting.flush();
    Drained {
        written: counting.written,
        error: counting.error,
    }
}

/// The first finished job of the next batch; `None` once every sender is
/// gone. While outcomes keep coming (`busy`), collect them for a moment
/// instead of waking for each one; when the run is quiet, block until the next.
fn next_batch<T>(rx: &Receiver<T>, busy: bool) -> Option<T> {
    if !busy {
        return rx.recv().ok();
    }
    thread::sleep(SINK_BATCH);
    match rx.try_recv() {
        Ok(finished) => Some(finished),
        Err(TryRecvError::Empty) => rx.recv().ok(),
        Err(TryRecvError::Disconnected) => None,
    }
}

/// The sink with its counts: recorded but not yet flushed, and flushed.
struct CountingSink<'w, S, W: Work> {
    sink: S,
    work: &'w W,
    written: u64,
    buffered: u64,
    /// The first error (a panic of the sink's is one).
    error: Option<io::Error>,
    /// Whether a flush failed: after a failed `record` the jobs recorded
    /// before it are still flushed, and count as written if that works.
    flush_failed: bool,
    /// Whether the error was logged and the run stopped.
    reported: bool,
}

impl<W: Work, S: Sink<W::Job, W::Output>> CountingSink<'_, S, W> {
    /// Records `batch` (nothing once the sink failed); returns its size.
    fn record_all(&mut self, batch: impl Iterator<Item = Finished<W::Job, W::Output>>) -> usize {
        let mut size = 0;
        for finished in batch {
            size += 1;
            if self.error.is_some() {
                continue;
            }
            match guarded(self.work, || self.sink.record(finished)) {
                Ok(()) => self.buffered += 1,
                Err(error) => self.error = Some(error),
            }
        }
        size
    }

    /// Flushes the sink (unless a flush failed); what it held counts as
    /// written.
    fn flush(&mut self) {
        if self.flush_failed {
            return;
        }
        match guarded(self.work, || self.sink.flush()) {
            Ok(()) => self.written += std::mem::take(&mut self.buffered),
            Err(error) => {
                self.flush_failed = true;
                self.error.get_or_insert(error);
            }
        }
    }

    /// At the first error: log it and stop the run.
    fn report_error(&mut self, stop: &Stop) {
        if let Some(error) = self.error.as_ref().filter(|_| !self.reported) {
            log::error!("cannot record outcomes, stopping: {error}");
            self.reported = true;
            stop.stop();
        }
    }
}

/// A call of the caller's sink; a panic in it is an error that stops the
/// run, not a dead sink thread whose jobs the workers go on finishing
/// into nowhere.
fn guarded<W: Work>(work: &W, call: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
    catch_unwind(AssertUnwindSafe(call)).unwrap_or_else(|payload| {
        let message = super::worker::panic_message(payload.as_ref());
        let message = work.redact(&message);
        Err(io::Error::other(format!("the sink panicked: {message}")))
    })
}

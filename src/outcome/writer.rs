//! Writing outcome lines: the single writer of a run's outcome file.

use super::line::OutcomeLine;
use crate::job::{CallOutput, Job};
use crate::pool::{Finished, Sink};
use std::io::{self, BufWriter, Write};

/// Writes outcome lines. Lines are buffered while more outcomes wait and
/// written out whenever none does, so a crash tears at most the last line
/// (which the reader drops and reports) and a busy run makes one write per
/// batch.
#[derive(Debug)]
pub struct OutcomeWriter<W: Write> {
    out: BufWriter<W>,
}

impl<W: Write> OutcomeWriter<W> {
    /// A writer to `out`.
    pub fn new(out: W) -> OutcomeWriter<W> {
        OutcomeWriter {
            out: BufWriter::with_capacity(64 * 1024, out),
        }
    }

    /// Buffers one line.
    ///
    /// # Errors
    /// The I/O error of a write when the buffer is full.
    pub fn write(&mut self, outcome: &OutcomeLine) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, outcome)?;
        self.out.write_all(b"\n")
    }

    /// Writes out the buffered lines.
    ///
    /// # Errors
    /// The I/O error of the write or flush.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl<W: Write> Sink<Job, CallOutput> for OutcomeWriter<W> {
    fn record(&mut self, finished: Finished<Job, CallOutput>) -> io::Result<()> {
        self.write(&OutcomeLine::from_finished(finished))
    }

    fn flush(&mut self) -> io::Result<()> {
        OutcomeWriter::flush(self)
    }
}

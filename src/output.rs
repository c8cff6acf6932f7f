//! The JSONL outcome file: one whole line per finished job, and reading one
//! back for `--resume`.

use crate::job::{job_key, CallOutput, Job, JobKey};
use crate::pool::{Finished, Sink};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// One line of the outcome file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeLine {
    /// The record's id.
    pub id: String,
    /// The image URL or path, as given.
    pub image: String,
    /// The models of the request.
    pub models: Vec<String>,
    /// `ok` or `failed`.
    pub status: String,
    /// The HTTP status of the last reply, if any came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// Requests made for this job, rate-limited ones included.
    pub attempts: u32,
    /// Requests answered with a rate-limit reply.
    pub rate_limited: u32,
    /// Latency of the successful request, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// The models' answers, raw, keyed by model id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solutions: Option<Value>,
    /// Why the job failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl OutcomeLine {
    /// The line for a finished job.
    pub fn from_finished(finished: Finished<Job, CallOutput>) -> OutcomeLine {
        let Finished {
            job,
            output,
            success,
            attempts,
            rate_limited,
            latency,
        } = finished;
        let latency_ms = (latency.as_secs_f64() * 10_000.0).round() / 10.0;
        OutcomeLine {
            id: job.id,
            image: job.image.to_string(),
            models: job.models,
            status: if success { "ok" } else { "failed" }.to_string(),
            http_status: output.http_status,
            attempts,
            rate_limited,
            latency_ms: success.then_some(latency_ms),
            solutions: output.solutions,
            error: output.error,
        }
    }

    /// Whether the job succeeded.
    pub fn is_ok(&self) -> bool {
        self.status == "ok"
    }

    /// The job's identity.
    pub fn key(&self) -> JobKey {
        job_key(&self.id, &self.models)
    }
}

/// Writes outcome lines. Lines are buffered while more outcomes wait and
/// written out whenever none does, so a crash tears at most the last line
/// (which `--resume` drops) and a busy run makes one write per batch.
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

/// Longest outcome line `--resume` reads.
const MAX_OUTCOME_LINE: u64 = 64 * 1024 * 1024;

/// What an earlier run already finished, from its outcome file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Done {
    /// Terminal status of each job seen: `true` for ok.
    pub ok_by_key: HashMap<JobKey, bool>,
}

impl Done {
    /// Whether the job's recorded outcome is a failure.
    pub fn failed(&self, key: &JobKey) -> bool {
        self.ok_by_key.get(key) == Some(&false)
    }

    /// Whether the job needs no new run: it has an outcome, and that outcome
    /// is ok or failures are not to be redone.
    pub fn covers(&self, key: &JobKey, retry_failed: bool) -> bool {
        match self.ok_by_key.get(key) {
            Some(ok) => *ok || !retry_failed,
            None => false,
        }
    }
}

/// Opens `path` to append after resuming: reads the outcomes in it, drops
/// a torn last line (a run killed mid-write), and returns the file
/// positioned at its end. A missing file is created empty.
///
/// # Errors
/// I/O errors; an unreadable line other than a torn last one, named by its line.
pub fn open_for_resume(path: &Path) -> io::Result<(File, Done)> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let mut done = Done::default();
    let mut good_len = 0u64;
    let mut reader = BufReader::new(&mut file);
    let mut line = Vec::new();
    let mut number = 0usize;
    loop {
        line.clear();
        let read = reader
            .by_ref()
            .take(MAX_OUTCOME_LINE)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            break;
        }
        number += 1;
        if line.last() != Some(&b'\n') && read as u64 == MAX_OUTCOME_LINE {
            // Not a torn end: truncating here would drop every line after it.
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}:{number}: a line longer than 64 MiB", path.display()),
            ));
        }
        if line.last() != Some(&b'\n') {
            log::warn!(
                "{}:{number}: ignoring a torn last line (the previous run was killed while writing it)",
                path.display()
            );
            break;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            good_len += read as u64;
            continue;
        }
        match serde_json::from_slice::<OutcomeLine>(&line) {
            Ok(outcome) => {
                // A job redone with --retry-failed has two lines; ok wins.
                let ok = outcome.is_ok();
                let entry = done.ok_by_key.entry(outcome.key()).or_insert(ok);
                *entry = *entry || ok;
            }
            Err(error) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}:{number}: not an outcome line: {error}", path.display()),
                ))
            }
        }
        good_len += read as u64;
    }
    file.set_len(good_len)?;
    file.seek(SeekFrom::Start(good_len))?;
    Ok((file, done))
}

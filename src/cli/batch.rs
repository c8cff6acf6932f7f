//! The batch of `restb run`, streamed: the input is checked in one pass
//! that keeps no records (counting the jobs), and its jobs are made one
//! record at a time as the pool pulls them, so memory stays flat whatever
//! the input's size.
//!
//! A resumed run decides which jobs its outcome file already covers in two
//! more passes before the first request (see [`Batch::resume`]; a bit per
//! job), so its counts are known up front and each job is claimed from the
//! resume index once.

use super::args::RunArgs;
use super::UsageError;
use restb::input::{Format, Input, ReadOptions, Record, Records};
use restb::job::{jobs_from_records, Job};
use restb::outcome::ResumeFilter;
use std::io;
use std::time::Instant;
use std::vec;

/// A checked input and how its records become jobs.
#[derive(Debug)]
pub(super) struct Batch {
    input: Input,
    default_models: Vec<String>,
    per_model: bool,
    /// Records in the input.
    records: u64,
    /// Jobs the input makes.
    jobs: u64,
    /// With `--resume`: one bit per job of the input, set when it is done.
    skip: Option<Vec<u64>>,
    /// Jobs the skip bits cover.
    skipped: u64,
}

impl Batch {
    /// Opens the input of `args` (standard input spooled to a temporary
    /// file) and checks all of it.
    ///
    /// # Errors
    ///
    /// The first bad line, as `FILE:LINE: reason`.
    pub(super) fn check(args: &RunArgs, default_models: &[String]) -> Result<Batch, UsageError> {
        let started = Instant::now();
        let stdin = args.input.as_os_str() == "-";
        let format = args.format.unwrap_or_else(|| {
            if stdin {
                Format::Lines
            } else {
                Format::from_path(&args.input)
            }
        });
        let mut options = ReadOptions::new(format);
        options.allow_unknown_models = args.allow_unknown_models;
        let input_error = |e: restb::input::InputError| UsageError(e.to_string());
        let mut input = if stdin {
            Input::spool(io::stdin().lock(), "<stdin>", &options).map_err(input_error)?
        } else {
            Input::open(&args.input, &options).map_err(input_error)?
        };
        let mut jobs = 0u64;
        let checked = input
            .check(|record| jobs += jobs_of(record, default_models, args.per_model))
            .map_err(input_error)?;
        log::info!(
            "validated {} records ({jobs} jobs) in {:.3} s",
            checked.records,
            started.elapsed().as_secs_f64()
        );
        Ok(Batch {
            input,
            default_models: default_models.to_vec(),
            per_model: args.per_model,
            records: checked.records,
            jobs,
            skip: None,
            skipped: 0,
        })
    }

    /// Marks the jobs `filter` says are done (claiming each once), in two
    /// passes: every job first takes an outcome with its own id, and only
    /// then may a job whose id changed take an outcome of its image.
    ///
    /// # Errors
    ///
    /// The input cannot be read again.
    pub(super) fn resume(&mut self, filter: &mut ResumeFilter) -> Result<(), UsageError> {
        self.each_job(|_, job| filter.claim_own(job))?;
        let mut skip = vec![0u64; self.jobs.div_ceil(64) as usize];
        let mut skipped = 0;
        self.each_job(|index, job| {
            if !filter.keep(job) {
                skip[index / 64] |= 1 << (index % 64);
                skipped += 1;
            }
        })?;
        self.skip = Some(skip);
        self.skipped = skipped;
        Ok(())
    }

    /// Records in the input.
    pub(super) fn records_total(&self) -> u64 {
        self.records
    }

    /// Calls `visit` with each job of the input and its number.
    fn each_job(&self, mut visit: impl FnMut(usize, &Job)) -> Result<(), UsageError> {
        let mut index = 0usize;
        let mut records = self.records()?;
        for record in records.by_ref() {
            for job in jobs_from_records(vec![record], &self.default_models, self.per_model) {
                visit(index, &job);
                index += 1;
            }
        }
        match records.error() {
            Some(error) => Err(UsageError(error.to_string())),
            None => Ok(()),
        }
    }

    /// Jobs the input makes, before any resume.
    pub(super) fn total(&self) -> u64 {
        self.jobs
    }

    /// The jobs to send, made as they are pulled.
    ///
    /// # Errors
    ///
    /// The input cannot be read again.
    pub(super) fn jobs(self) -> Result<Jobs, UsageError> {
        Ok(Jobs {
            records: self.records()?,
            pending: Vec::new().into_iter(),
            index: 0,
            left: self.jobs - self.skipped,
            batch: self,
        })
    }

    fn records(&self) -> Result<Records, UsageError> {
        self.input.records().map_err(|e| UsageError(e.to_string()))
    }
}

/// How many jobs `record` makes.
fn jobs_of(record: &Record, default_models: &[String], per_model: bool) -> u64 {
    if per_model {
        record
            .models
            .as_ref()
            .map_or(default_models.len(), Vec::len) as u64
    } else {
        1
    }
}

/// The jobs of a [`Batch`], in input order, without those a resumed outcome
/// file covers. Its length is known, so a stopped run counts what is left
/// without reading the rest.
#[derive(Debug)]
pub(super) struct Jobs {
    batch: Batch,
    records: Records,
    /// The rest of the current record's jobs.
    pending: vec::IntoIter<Job>,
    /// The number of the next job in the input (skipped ones included).
    index: usize,
    /// Jobs still to hand out.
    left: u64,
}

impl Jobs {
    /// Why the input stopped early (it changed after it was checked).
    pub(super) fn error(&self) -> Option<String> {
        self.records.error().map(ToString::to_string)
    }

    fn skipped(&self, index: usize) -> bool {
        let skip = self.batch.skip.as_deref();
        skip.is_some_and(|bits| bits[index / 64] & (1 << (index % 64)) != 0)
    }
}

impl Iterator for Jobs {
    type Item = Job;

    fn next(&mut self) -> Option<Job> {
        while self.left > 0 {
            let Some(job) = self.pending.next() else {
                let record = self.records.next()?;
                let batch = &self.batch;
                self.pending =
                    jobs_from_records(vec![record], &batch.default_models, batch.per_model)
                        .into_iter();
                continue;
            };
            let index = self.index;
            self.index += 1;
            if !self.skipped(index) {
                self.left -= 1;
                return Some(job);
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // Exact unless the input changed after its check (then it ends early).
        let left = usize::try_from(self.left).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Jobs {}

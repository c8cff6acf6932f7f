//! The resume index: which jobs an earlier run finished, and how.

use super::line::Status;
use super::resume::ResumeFields;
use crate::job::{job_key, Job, JobKey};
use std::collections::HashMap;

/// What an earlier run already finished, from its outcome file.
#[derive(Debug, Default, Clone)]
pub struct ResumeIndex {
    by_key: HashMap<JobKey, Status>,
}

impl ResumeIndex {
    /// Records one outcome line. A job redone with `--retry-failed` has two
    /// lines; ok wins.
    pub(super) fn insert(&mut self, line: &ResumeFields) {
        let status = self
            .by_key
            .entry(job_key(&line.id, &line.models))
            .or_insert(line.status);
        if line.status == Status::Ok {
            *status = Status::Ok;
        }
    }

    /// Makes the index ready for look-ups.
    pub(super) fn seal(&mut self) {}

    /// Outcome lines indexed (a job redone counts once).
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether no outcome was indexed.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// How `job` ended in the earlier run, if it did.
    pub fn status(&mut self, job: &Job) -> Option<Status> {
        self.by_key.get(&job.key()).copied()
    }

    /// A filter of jobs for the resumed run.
    pub fn filter(self, retry_failed: bool) -> ResumeFilter {
        ResumeFilter {
            index: self,
            retry_failed,
            done: 0,
            earlier_failures: 0,
        }
    }
}

/// Picks the jobs a resumed run still has to send, counting the others.
#[derive(Debug)]
pub struct ResumeFilter {
    index: ResumeIndex,
    retry_failed: bool,
    done: u64,
    earlier_failures: u64,
}

impl ResumeFilter {
    /// Whether `job` is to be sent: it has no outcome, or its outcome is a
    /// failure and failures are to be redone.
    pub fn keep(&mut self, job: &Job) -> bool {
        match self.index.status(job) {
            None => true,
            Some(Status::Ok) => {
                self.done += 1;
                false
            }
            Some(Status::Failed) if self.retry_failed => true,
            Some(Status::Failed) => {
                self.done += 1;
                self.earlier_failures += 1;
                false
            }
        }
    }

    /// Jobs skipped so far: their outcome is already in the file.
    pub fn done(&self) -> u64 {
        self.done
    }

    /// Jobs skipped so far whose earlier outcome is a failure (not redone
    /// without `--retry-failed`).
    pub fn earlier_failures(&self) -> u64 {
        self.earlier_failures
    }
}

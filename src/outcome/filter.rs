//! The jobs a resumed run still sends: the [`ResumeIndex`] claimed in two
//! passes over the input, so that a job takes its own outcome (by id)
//! before any job whose id changed looks for an outcome of the same image.

use super::index::ResumeIndex;
use super::line::Status;
use crate::job::Job;

/// Picks the jobs a resumed run still has to send, counting the others.
///
/// Call [`claim_own`](Self::claim_own) for every job of the input, then
/// [`keep`](Self::keep) for the same jobs in the same order. Without the
/// first pass, `keep` looks each job up alone: a job whose id changed may
/// then take the outcome of a later job sharing its image.
#[derive(Debug)]
pub struct ResumeFilter {
    index: ResumeIndex,
    retry_failed: bool,
    /// What each job of the first pass claimed by its own id: two bits a
    /// job (see [`Own`]).
    own: Vec<u64>,
    /// Jobs of the first pass.
    seen: usize,
    /// Jobs of the second pass.
    next: usize,
    done: u64,
    earlier_failures: u64,
}

/// What a job claimed in the first pass, as two bits.
#[derive(Debug, Clone, Copy)]
#[repr(u64)]
enum Own {
    Nothing = 0,
    Ok = 1,
    Failed = 2,
}

impl ResumeFilter {
    pub(super) fn new(index: ResumeIndex, retry_failed: bool) -> ResumeFilter {
        ResumeFilter {
            index,
            retry_failed,
            own: Vec::new(),
            seen: 0,
            next: 0,
            done: 0,
            earlier_failures: 0,
        }
    }

    /// First pass: takes the earlier outcome with `job`'s own id, if any.
    pub fn claim_own(&mut self, job: &Job) {
        debug_assert_eq!(self.next, 0, "the first pass comes first");
        let own = match self.index.claim_own(job) {
            None => Own::Nothing,
            Some(Status::Ok) => Own::Ok,
            Some(Status::Failed) => Own::Failed,
        };
        if self.seen % 32 == 0 {
            self.own.push(0);
        }
        self.own[self.seen / 32] |= (own as u64) << (2 * (self.seen % 32));
        self.seen += 1;
    }

    /// What the job at `at` claimed in the first pass, if it was in it.
    fn own(&self, at: usize) -> Option<Own> {
        (at < self.seen).then(|| match (self.own[at / 32] >> (2 * (at % 32))) & 3 {
            1 => Own::Ok,
            2 => Own::Failed,
            _ => Own::Nothing,
        })
    }

    /// Second pass: whether `job` is to be sent: it has no outcome, or its
    /// outcome is a failure and failures are to be redone. A job that found
    /// no outcome by its id takes one of its image and models.
    pub fn keep(&mut self, job: &Job) -> bool {
        if self.next == 0 {
            self.index.close_own();
        }
        let claimed = match self.own(self.next) {
            Some(Own::Ok) => Some(Status::Ok),
            Some(Own::Failed) => Some(Status::Failed),
            Some(Own::Nothing) => self.index.claim_any(job),
            None => self.index.claim(job),
        };
        self.next += 1;
        match claimed {
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

    /// Outcome lines that match no job so far (see [`ResumeIndex::unmatched`]).
    pub fn unmatched(&self) -> usize {
        self.index.unmatched()
    }
}

//! The resume index: the outcome lines of an earlier run, each as what its
//! job is (see [`identity`](super::identity)), a hash of the job's id and
//! its status, in 16 bytes per line.
//!
//! It is a multiset: an input may hold the same image with the same models
//! twice (two listings sharing a photo), and each outcome line covers one
//! such job. Lines with the same key and id are one job's history (a
//! failure, then its redo with `--retry-failed`): the job takes its ok line
//! first, and the others are spent with it. A job finds its lines by its
//! id first ([`ResumeIndex::claim_own`]), and only then, when its id
//! changed (an edited input), by its image and models alone
//! ([`ResumeIndex::claim_any`]).

use super::filter::ResumeFilter;
use super::identity::{Key, KeyHasher};
use super::line::Status;
use super::resume::ResumeFields;
use crate::job::Job;
use std::collections::HashMap;
use std::ops::Range;

/// The low bit of a tag: set for a failed line. Ok lines have it clear, so
/// they sort before the failed lines of the same job.
const FAILED: u32 = 1;

/// How far into an image's lines a look by image and models must have
/// gone before where it left off is kept (see [`ResumeIndex::left_off`]):
/// the common image, in one line or two, keeps nothing.
const LEFT_OFF_WORTH_KEEPING: usize = 32;

/// One outcome line: its job's key, and a tag holding the job's 31-bit id
/// hash above the [`FAILED`] bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    key: Key,
    tag: u32,
}

// The figure the README gives for `--resume`.
const _: () = assert!(std::mem::size_of::<Entry>() == 16);

impl Entry {
    fn status(self) -> Status {
        if self.tag & FAILED == 0 {
            Status::Ok
        } else {
            Status::Failed
        }
    }

    /// Whether `other` is a line of the same job: the same key and id.
    fn same_job(self, other: Entry) -> bool {
        self.key == other.key && self.tag >> 1 == other.tag >> 1
    }
}

/// A bit per entry.
#[derive(Debug, Default, Clone)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(len: usize) -> Bits {
        Bits(vec![0; len.div_ceil(64)])
    }

    fn get(&self, at: usize) -> bool {
        self.0[at / 64] & (1 << (at % 64)) != 0
    }

    fn set(&mut self, at: usize) {
        self.0[at / 64] |= 1 << (at % 64);
    }
}

/// What an earlier run already finished, from its outcome file: the sorted
/// entries of its lines, and which of them jobs of this run have taken.
#[derive(Debug, Default, Clone)]
pub struct ResumeIndex {
    hasher: KeyHasher,
    entries: Vec<Entry>,
    /// Entries a job of this run has claimed.
    claimed: Bits,
    /// Entries of the jobs that claimed a line by their own id: closed to
    /// the jobs that look by image and models alone (see [`Self::close_own`]).
    closed: Bits,
    /// Where the last look by image and models at a key's lines of a
    /// status left off: no entry before it is free (entries are only ever
    /// taken or closed). Without it, each pending job of an image repeated
    /// N times walked past the lines the others had taken: N^2 steps
    /// (reviewed: 9 s at 160,000 repeats, minutes at a million, before the
    /// first request).
    left_off: HashMap<(Key, Status), usize>,
}

impl ResumeIndex {
    /// Records one outcome line.
    pub(super) fn insert(&mut self, line: &ResumeFields) {
        let failed = u32::from(line.status == Status::Failed);
        self.entries.push(Entry {
            key: self.hasher.key(&line.image, &line.models),
            tag: self.hasher.id(&line.id) << 1 | failed,
        });
    }

    /// Sorts the entries for look-ups.
    pub(super) fn seal(&mut self) {
        self.entries.sort_unstable();
        self.entries.shrink_to_fit();
        self.claimed = Bits::new(self.entries.len());
        self.closed = Bits::new(self.entries.len());
        self.left_off.clear();
    }

    /// Outcome lines indexed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no outcome was indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn key(&self, job: &Job) -> Key {
        self.hasher.key(&job.image.to_string(), &job.models)
    }

    /// The entries from `from` to `to`, both included.
    fn range(&self, from: Entry, to: Entry) -> Range<usize> {
        let start = self.entries.partition_point(|e| *e < from);
        start..start + self.entries[start..].partition_point(|e| *e <= to)
    }

    /// Claims the first entry in `range` with `status` (any if `None`) that
    /// is neither claimed nor closed; returns where it is.
    fn claim_first(&mut self, range: Range<usize>, status: Option<Status>) -> Option<usize> {
        let at = range.into_iter().find(|&at| {
            !self.claimed.get(at)
                && !self.closed.get(at)
                && status.is_none_or(|s| self.entries[at].status() == s)
        })?;
        self.claimed.set(at);
        Some(at)
    }

    /// [`Self::claim_first`] over `all` of `key`'s entries with `status`,
    /// from where the last such look left off.
    fn claim_first_of_key(&mut self, key: Key, all: Range<usize>, status: Status) -> Option<usize> {
        let from = self
            .left_off
            .get(&(key, status))
            .map_or(all.start, |at| (*at).clamp(all.start, all.end));
        let found = self.claim_first(from..all.end, Some(status));
        let left_off = found.map_or(all.end, |at| at + 1);
        if left_off - all.start >= LEFT_OFF_WORTH_KEEPING {
            self.left_off.insert((key, status), left_off);
        }
        found
    }

    /// Takes an earlier outcome of `job` with its image, models and id, if
    /// there is one not yet taken by another job of this run: an ok one
    /// first, so a failure redone counts as ok.
    pub fn claim_own(&mut self, job: &Job) -> Option<Status> {
        let key = self.key(job);
        let tag = self.hasher.id(&job.id) << 1;
        let own = self.range(
            Entry { key, tag },
            Entry {
                key,
                tag: tag | FAILED,
            },
        );
        let at = self.claim_first(own, None)?;
        Some(self.entries[at].status())
    }

    /// Takes an earlier outcome of a job with the image and models of
    /// `job`, whatever its id (ids shift when lines are added to an input):
    /// an ok one first. Lines of jobs that claimed one by their own id
    /// before [`Self::close_own`] are not taken: they are that job's. The
    /// line taken closes the other lines of its job's history (a failure
    /// redone): another job must not take one of them and be skipped
    /// unsent.
    pub fn claim_any(&mut self, job: &Job) -> Option<Status> {
        let key = self.key(job);
        let all = self.range(Entry { key, tag: 0 }, Entry { key, tag: u32::MAX });
        let at = self
            .claim_first_of_key(key, all.clone(), Status::Ok)
            .or_else(|| self.claim_first_of_key(key, all, Status::Failed))?;
        let taken = self.entries[at];
        let history = self.range(
            Entry {
                key,
                tag: taken.tag & !FAILED,
            },
            Entry {
                key,
                tag: taken.tag | FAILED,
            },
        );
        history.for_each(|line| self.closed.set(line));
        Some(taken.status())
    }

    /// [`Self::claim_own`], else [`Self::claim_any`]: for a job looked up
    /// alone, not in the two passes of a [`ResumeFilter`].
    pub fn claim(&mut self, job: &Job) -> Option<Status> {
        self.claim_own(job).or_else(|| self.claim_any(job))
    }

    /// Ends the pass of [`Self::claim_own`]: every line of a job that
    /// claimed one by its own id is closed to [`Self::claim_any`] (a
    /// failure it redid, a failure it repeated).
    pub fn close_own(&mut self) {
        let entries = &self.entries;
        let mut start = 0;
        for end in 1..=entries.len() {
            if end < entries.len() && entries[end].same_job(entries[start]) {
                continue;
            }
            if (start..end).any(|at| self.claimed.get(at)) {
                (start..end).for_each(|at| self.closed.set(at));
            }
            start = end;
        }
    }

    /// Outcome lines that match no job of this run: ok lines no job took
    /// (each was a job of its own, gone from the input), and failed lines
    /// of an image and models no job took a line of. A failed line no job
    /// took, of an image and models that some job did take, is an earlier
    /// try of a job, not a job gone.
    pub fn unmatched(&self) -> usize {
        let entries = &self.entries;
        let mut unmatched = 0;
        let mut start = 0;
        while start < entries.len() {
            let key = entries[start].key;
            let end = start + entries[start..].partition_point(|e| e.key == key);
            let left = (start..end).filter(|&at| !self.claimed.get(at));
            unmatched += if left.clone().count() == end - start {
                end - start
            } else {
                left.filter(|&at| entries[at].status() == Status::Ok)
                    .count()
            };
            start = end;
        }
        unmatched
    }

    /// A filter of jobs for the resumed run.
    pub fn filter(self, retry_failed: bool) -> ResumeFilter {
        ResumeFilter::new(self, retry_failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ImageSource;

    fn index(lines: &[(&str, &str, &[&str], &str)]) -> ResumeIndex {
        let mut index = ResumeIndex::default();
        for (id, image, models, status) in lines {
            let line = serde_json::json!({
                "id": id, "image": image, "models": models, "status": status,
                "attempts": 1, "rate_limited": 0,
            });
            index.insert(&serde_json::from_value(line).unwrap());
        }
        index.seal();
        index
    }

    fn job(id: &str, image: &str, models: &[&str]) -> Job {
        Job {
            id: id.into(),
            image: ImageSource::parse(image),
            models: models.iter().map(|m| m.to_string()).collect(),
        }
    }

    #[test]
    fn jobs_match_by_image_and_models_not_by_id() {
        let mut resume =
            index(&[("1", "a.jpg", &["m"], "ok"), ("2", "b.jpg", &["m"], "ok")]).filter(false);
        let kept: Vec<bool> = [
            job("1", "new.jpg", &["m"]),
            job("2", "a.jpg", &["m"]),
            job("3", "b.jpg", &["m"]),
        ]
        .iter()
        .map(|job| resume.keep(job))
        .collect();
        assert_eq!(kept, [true, false, false]);
        assert_eq!((resume.done(), resume.unmatched()), (2, 0));
    }

    #[test]
    fn the_endpoint_and_the_model_set_are_part_of_the_job() {
        let mut index = index(&[("1", "a.jpg", &["m", "n"], "ok")]);
        assert_eq!(
            index.claim(&job("1", "a.jpg", &["m"])),
            None,
            "per-model is another job"
        );
        assert_eq!(
            index.claim(&job("1", "a.jpg", &["n", "m"])),
            Some(Status::Ok)
        );
        assert_eq!(index.unmatched(), 0);
    }

    /// Both passes of a resumed run over `jobs`: which are sent.
    fn kept(resume: &mut ResumeFilter, jobs: &[Job]) -> Vec<bool> {
        jobs.iter().for_each(|job| resume.claim_own(job));
        jobs.iter().map(|job| resume.keep(job)).collect()
    }

    #[test]
    fn a_failure_redone_counts_as_ok_and_each_line_covers_one_job() {
        let mut resume = index(&[
            ("1", "a.jpg", &["m"], "failed"),
            ("2", "b.jpg", &["m"], "failed"),
            ("1", "a.jpg", &["m"], "ok"),
            ("3", "c.jpg", &["m"], "ok"),
            ("4", "c.jpg", &["m"], "ok"),
        ])
        .filter(false);
        let jobs = [
            job("1", "a.jpg", &["m"]),
            job("9", "a.jpg", &["m"]),
            job("2", "b.jpg", &["m"]),
            // Two listings sharing a photo: two outcomes, two jobs covered, a third sent.
            job("3", "c.jpg", &["m"]),
            job("4", "c.jpg", &["m"]),
            job("5", "c.jpg", &["m"]),
        ];
        assert_eq!(
            kept(&mut resume, &jobs),
            [false, true, false, false, false, true]
        );
        assert_eq!((resume.done(), resume.earlier_failures()), (4, 1));
    }

    #[test]
    fn a_job_takes_its_own_outcome_before_a_twin_whose_id_changed_looks() {
        // a and b share an image; a failed, b is done. The input was edited:
        // x comes first, with no outcome of its own.
        let lines: &[(&str, &str, &[&str], &str)] = &[
            ("a", "s.jpg", &["m"], "failed"),
            ("b", "s.jpg", &["m"], "ok"),
        ];
        let jobs = [
            job("x", "s.jpg", &["m"]),
            job("a", "s.jpg", &["m"]),
            job("b", "s.jpg", &["m"]),
        ];
        let mut resume = index(lines).filter(true);
        assert_eq!(kept(&mut resume, &jobs), [true, true, false]);
        // Ids shifted: each line is taken by image and models, ok first.
        let shifted = [job("y", "s.jpg", &["m"]), job("z", "s.jpg", &["m"])];
        let mut resume = index(lines).filter(true);
        assert_eq!(kept(&mut resume, &shifted), [false, true]);
    }

    #[test]
    fn the_lines_of_a_job_that_took_its_own_are_not_taken_by_its_twin() {
        let mut resume = index(&[
            ("c", "s.jpg", &["m"], "failed"),
            ("c", "s.jpg", &["m"], "failed"),
            ("e", "t.jpg", &["m"], "failed"),
            ("e", "t.jpg", &["m"], "ok"),
        ])
        .filter(false);
        let jobs = [
            job("d", "s.jpg", &["m"]),
            job("c", "s.jpg", &["m"]),
            job("f", "t.jpg", &["m"]),
            job("e", "t.jpg", &["m"]),
        ];
        assert_eq!(kept(&mut resume, &jobs), [true, false, true, false]);
        assert_eq!((resume.done(), resume.earlier_failures()), (2, 1));
    }

    #[test]
    fn a_history_taken_by_image_and_models_covers_one_job_only() {
        // s.jpg failed, then was redone; then the input was edited: a new
        // first row shifted the ids, and s.jpg is listed a second time.
        let mut resume = index(&[
            ("1", "s.jpg", &["m"], "failed"),
            ("1", "s.jpg", &["m"], "ok"),
        ])
        .filter(false);
        let jobs = [
            job("1", "t.jpg", &["m"]),
            job("2", "s.jpg", &["m"]),
            job("3", "s.jpg", &["m"]),
        ];
        assert_eq!(
            kept(&mut resume, &jobs),
            [true, false, true],
            "the second listing was never sent: it is sent now"
        );
        assert_eq!((resume.done(), resume.earlier_failures()), (1, 0));
        assert_eq!(resume.unmatched(), 0);
    }

    /// Review: each pending job of an image repeated many times walked
    /// past every line the others had taken (quadratic); where the look
    /// leaves off is kept now, and each job still gets the next free line:
    /// the ok ones first, then the failed, then none.
    #[test]
    fn the_jobs_of_an_image_repeated_many_times_share_its_lines_in_turn() {
        let image = "https://x/same.jpg";
        let ids: Vec<String> = (1..=100).map(|n| n.to_string()).collect();
        let lines: Vec<(&str, &str, &[&str], &str)> = ids
            .iter()
            .enumerate()
            .map(|(n, id)| {
                let status = if n < 60 { "ok" } else { "failed" };
                (id.as_str(), image, &["re_logo"][..], status)
            })
            .collect();
        let mut index = index(&lines);
        for id in 1..=30 {
            let own = index.claim_own(&job(&id.to_string(), image, &["re_logo"]));
            assert_eq!(own, Some(Status::Ok));
        }
        index.close_own();
        let claims: Vec<_> = (201..=300)
            .map(|id| index.claim_any(&job(&id.to_string(), image, &["re_logo"])))
            .collect();
        let count = |status| claims.iter().filter(|c| **c == status).count();
        assert_eq!(count(Some(Status::Ok)), 30);
        assert_eq!(count(Some(Status::Failed)), 40);
        assert_eq!(count(None), 30);
        assert!(claims[..30].iter().all(|c| *c == Some(Status::Ok)));
        assert_eq!(index.unmatched(), 0);
    }

    #[test]
    fn failures_are_kept_only_when_asked_and_counted() {
        let lines: &[(&str, &str, &[&str], &str)] = &[("1", "a.jpg", &["m"], "failed")];
        let mut skip = index(lines).filter(false);
        assert!(!skip.keep(&job("1", "a.jpg", &["m"])));
        assert_eq!((skip.done(), skip.earlier_failures()), (1, 1));
        let mut redo = index(lines).filter(true);
        assert!(redo.keep(&job("1", "a.jpg", &["m"])));
        assert_eq!((redo.done(), redo.earlier_failures()), (0, 0));
    }

    #[test]
    fn outcomes_of_images_no_longer_in_the_input_are_counted() {
        let mut resume = index(&[
            ("1", "gone.jpg", &["m"], "ok"),
            ("2", "b.jpg", &["m"], "ok"),
        ])
        .filter(false);
        assert!(!resume.keep(&job("1", "b.jpg", &["m"])));
        assert_eq!(resume.unmatched(), 1);
    }

    #[test]
    fn earlier_tries_of_a_job_match_it_and_lines_of_jobs_gone_do_not() {
        let mut resume = index(&[
            ("1", "a.jpg", &["m"], "failed"),
            ("1", "a.jpg", &["m"], "failed"),
            ("2", "b.jpg", &["m"], "failed"),
            ("3", "b.jpg", &["m"], "ok"),
            ("4", "c.jpg", &["m"], "ok"),
            ("5", "c.jpg", &["m"], "ok"),
            ("6", "d.jpg", &["m"], "failed"),
        ])
        .filter(true);
        let jobs = [
            job("1", "a.jpg", &["m"]),
            job("3", "b.jpg", &["m"]),
            job("4", "c.jpg", &["m"]),
        ];
        assert_eq!(kept(&mut resume, &jobs), [true, false, false]);
        // The second c.jpg listing and d.jpg left the input.
        assert_eq!(resume.unmatched(), 2);
    }
}

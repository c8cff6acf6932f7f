//! The resume index: which jobs an earlier run finished, and how, keyed by
//! what each job is (see [`identity`](super::identity)), in 12 bytes per
//! outcome line.
//!
//! It is a multiset: an input may hold the same image with the same models
//! twice (two listings sharing a photo), and each outcome line covers one
//! such job, claimed in input order.

use super::identity::{Key, KeyHasher};
use super::line::Status;
use super::resume::ResumeFields;
use crate::job::Job;

/// What an earlier run already finished, from its outcome file: a sorted
/// list of the keys of its ok lines and one of its failed lines, and a bit
/// per entry for the jobs of this run that claimed it.
#[derive(Debug, Default, Clone)]
pub struct ResumeIndex {
    hasher: KeyHasher,
    ok: Claims,
    failed: Claims,
}

/// Sorted keys, and which of them a job has claimed.
#[derive(Debug, Default, Clone)]
struct Claims {
    keys: Vec<Key>,
    claimed: Vec<u64>,
}

impl Claims {
    /// Claims one unclaimed entry equal to `key`, if there is one.
    fn claim(&mut self, key: Key) -> bool {
        let start = self.keys.partition_point(|k| *k < key);
        let end = start + self.keys[start..].partition_point(|k| *k == key);
        for at in start..end {
            let (word, bit) = (at / 64, 1u64 << (at % 64));
            if self.claimed[word] & bit == 0 {
                self.claimed[word] |= bit;
                return true;
            }
        }
        false
    }

    fn seal(&mut self) {
        self.keys.sort_unstable();
        self.keys.shrink_to_fit();
        self.claimed = vec![0; self.keys.len().div_ceil(64)];
    }

    fn unclaimed(&self) -> usize {
        let claimed: u32 = self.claimed.iter().map(|word| word.count_ones()).sum();
        self.keys.len() - claimed as usize
    }
}

impl ResumeIndex {
    /// Records one outcome line.
    pub(super) fn insert(&mut self, line: &ResumeFields) {
        let key = self.hasher.key(&line.image, &line.models);
        match line.status {
            Status::Ok => self.ok.keys.push(key),
            Status::Failed => self.failed.keys.push(key),
        }
    }

    /// Sorts the keys for look-ups. A job that failed and was then redone
    /// with `--retry-failed` has a failed line and an ok line: for each key,
    /// as many failed lines as there are ok lines are dropped, so ok wins.
    pub(super) fn seal(&mut self) {
        self.ok.seal();
        self.failed.keys.sort_unstable();
        let ok = &self.ok.keys;
        let mut next_ok = 0;
        self.failed.keys.retain(|key| {
            // Both lists are sorted: walk the ok list along the failed one.
            while next_ok < ok.len() && ok[next_ok] < *key {
                next_ok += 1;
            }
            let redone = next_ok < ok.len() && ok[next_ok] == *key;
            next_ok += usize::from(redone);
            !redone
        });
        self.failed.seal();
    }

    /// Outcome lines indexed (a failure later redone not counted).
    pub fn len(&self) -> usize {
        self.ok.keys.len() + self.failed.keys.len()
    }

    /// Whether no outcome was indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the earlier outcome of `job`, if there is one not yet taken by
    /// another job of this run with the same image and models: an ok one
    /// first.
    pub fn claim(&mut self, job: &Job) -> Option<Status> {
        let key = self.hasher.key(&job.image.to_string(), &job.models);
        if self.ok.claim(key) {
            Some(Status::Ok)
        } else if self.failed.claim(key) {
            Some(Status::Failed)
        } else {
            None
        }
    }

    /// Outcome lines no job of this run has claimed: outcomes of images or
    /// models no longer in the input.
    pub fn unclaimed(&self) -> usize {
        self.ok.unclaimed() + self.failed.unclaimed()
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
        match self.index.claim(job) {
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

    /// Outcome lines no job has claimed so far (see [`ResumeIndex::unclaimed`]).
    pub fn unclaimed(&self) -> usize {
        self.index.unclaimed()
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
        assert_eq!((resume.done(), resume.unclaimed()), (2, 0));
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
        assert_eq!(index.unclaimed(), 0);
    }

    #[test]
    fn a_failure_redone_counts_as_ok_and_each_line_covers_one_job() {
        let mut index = index(&[
            ("1", "a.jpg", &["m"], "failed"),
            ("2", "b.jpg", &["m"], "failed"),
            ("1", "a.jpg", &["m"], "ok"),
            ("3", "c.jpg", &["m"], "ok"),
            ("4", "c.jpg", &["m"], "ok"),
        ]);
        assert_eq!(index.len(), 4, "the failure of a.jpg was redone");
        assert_eq!(index.claim(&job("1", "a.jpg", &["m"])), Some(Status::Ok));
        assert_eq!(index.claim(&job("9", "a.jpg", &["m"])), None);
        assert_eq!(
            index.claim(&job("2", "b.jpg", &["m"])),
            Some(Status::Failed)
        );
        // Two listings sharing a photo: two outcomes, two jobs covered, a third sent.
        assert_eq!(index.claim(&job("3", "c.jpg", &["m"])), Some(Status::Ok));
        assert_eq!(index.claim(&job("4", "c.jpg", &["m"])), Some(Status::Ok));
        assert_eq!(index.claim(&job("5", "c.jpg", &["m"])), None);
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
        assert_eq!(resume.unclaimed(), 1);
    }
}

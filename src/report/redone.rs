//! Which failed lines of an outcome file a later line of the same job redid.

use crate::outcome::OutcomeLine;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// The failed lines of an outcome file that a later line of the same job
/// (its id, image and models) redid, as `--retry-failed` does. It is built
/// in a first pass over the file ([`RedoneFailures::add`]) and asked in a
/// second ([`RedoneFailures::is_redone`]), so that a CSV lists each job as
/// [`Summary`](super::Summary) counts it: every ok line, and a failed line
/// only when it is the last line of its job.
///
/// Memory: a hash and a line position (16 bytes) per job that has a failed
/// line; nothing per ok job.
///
/// # Examples
///
/// ```
/// use restb::outcome::OutcomeLine;
/// use restb::report::RedoneFailures;
///
/// let line = |status: &str| -> OutcomeLine {
///     serde_json::from_str(&format!(
///         r#"{{"id":"1","image":"1.jpg","models":["re_logo"],"status":"{status}","attempts":1,"rate_limited":0}}"#
///     ))
///     .unwrap()
/// };
/// let lines = [line("failed"), line("ok")];
/// let mut redone = RedoneFailures::new();
/// for line in &lines {
///     redone.add(line);
/// }
/// assert!(redone.is_redone(0, &lines[0]));
/// assert!(!redone.is_redone(1, &lines[1]));
/// ```
#[derive(Debug, Clone, Default)]
pub struct RedoneFailures {
    /// The position of the last line of each job that has a failed line,
    /// by [`job_hash`].
    last_line: HashMap<u64, u64>,
    /// Lines added so far: the position of the next one.
    added: u64,
}

impl RedoneFailures {
    /// An empty index.
    pub fn new() -> RedoneFailures {
        RedoneFailures::default()
    }

    /// Notes the next line of the file, in the file's order.
    pub fn add(&mut self, line: &OutcomeLine) {
        let position = self.added;
        self.added += 1;
        let job = job_hash(line);
        if !line.is_ok() {
            self.last_line.insert(job, position);
        } else if let Some(last) = self.last_line.get_mut(&job) {
            *last = position;
        }
    }

    /// Whether `line`, the one added at `position` (counted from 0), is a
    /// failure that a later line of its job redid.
    pub fn is_redone(&self, position: u64, line: &OutcomeLine) -> bool {
        !line.is_ok()
            && self
                .last_line
                .get(&job_hash(line))
                .is_some_and(|&last| last > position)
    }
}

/// What a line's job is: its id, image and models, hashed.
pub(super) fn job_hash(line: &OutcomeLine) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    (&line.id, &line.image, &line.models).hash(&mut hasher);
    hasher.finish()
}

//! `--resume`: what an earlier run already finished, read from its outcome
//! file by the one [reader](super::Outcomes), and the file made ready to
//! append to.

use super::index::ResumeIndex;
use super::line::Status;
use super::read::{Outcomes, ReadError};
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Seek, SeekFrom, Write};
use std::path::Path;

/// The fields of an outcome line that `--resume` keeps. The others are
/// still checked, with the types of [`OutcomeLine`](super::OutcomeLine), so
/// `--resume` and `restb report` accept the same lines; only `solutions`
/// is skimmed rather than copied.
#[derive(Debug, Deserialize)]
pub(super) struct ResumeFields {
    pub(super) id: String,
    pub(super) image: String,
    pub(super) models: Vec<String>,
    pub(super) status: Status,
    #[serde(default)]
    #[allow(dead_code)] // read to check its type, as the report does
    http_status: Option<u16>,
    #[allow(dead_code)]
    attempts: u32,
    #[allow(dead_code)]
    rate_limited: u32,
    #[serde(default)]
    #[allow(dead_code)]
    latency_ms: Option<f64>,
    #[serde(default)]
    #[allow(dead_code)]
    solutions: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    error: Option<String>,
}

/// Why the outcome file could not be made ready for `--resume`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeError {
    /// It could not be opened or read, or a line in it is not an outcome line.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Another run holds it, or it could not be locked (see
    /// [`super::lock_for_writing`]).
    #[error(transparent)]
    Lock(#[from] super::LockError),
    /// It is not a regular file: a pipe, a terminal or a device holds no
    /// outcomes to read back (and reading `/dev/stdout` on a pipe would
    /// wait for the run's own output).
    #[error(
        "{} is not a regular file: there are no outcomes to resume from in a pipe, a \
         terminal or a device; give the outcome file itself",
        path.display()
    )]
    NotAFile {
        /// The path given.
        path: std::path::PathBuf,
    },
    /// Dropping its torn last line, or ending its last line, failed.
    #[error("{}: cannot repair its end: {source}", path.display())]
    Repair {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// Opens `path` to append after resuming: reads the outcomes in it into a
/// [`ResumeIndex`], drops a torn last line (a run killed mid-write, reported
/// as a warning), ends a whole last line that lacks its newline, and returns
/// the file positioned at its end, locked for writing (see
/// [`super::lock_for_writing`]). A missing file is created empty.
///
/// # Errors
/// [`ResumeError::Read`] when the file cannot be opened or read, or a line
/// other than a torn last one is not an outcome line (named `FILE:LINE`);
/// [`ResumeError::Lock`] when another run holds it;
/// [`ResumeError::NotAFile`] for a pipe, a terminal or a device;
/// [`ResumeError::Repair`] when its end cannot be fixed.
pub fn open_for_resume(path: &Path) -> Result<(File, ResumeIndex), ResumeError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|source| ReadError::Open {
            path: path.to_path_buf(),
            source,
        })?;
    if !super::lock::is_regular(&file) {
        return Err(ResumeError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    // Before anything is read: another run's last line may be half written.
    super::lock_for_writing(&file, path)?;
    let (index, good_len, unterminated) = index_of(&file, path)?;
    let repair = |source| ResumeError::Repair {
        path: path.to_path_buf(),
        source,
    };
    file.set_len(good_len).map_err(repair)?;
    file.seek(SeekFrom::Start(good_len)).map_err(repair)?;
    if unterminated {
        file.write_all(b"\n").map_err(repair)?;
    }
    Ok((file, index))
}

/// What [`open_for_resume`] would find in `path`, read without changing
/// it (for a dry run): a missing file is an empty index, a torn last line
/// is skipped with the same warning, and nothing is created or repaired.
///
/// # Errors
/// [`ResumeError::Read`] as [`open_for_resume`] gives it.
pub fn read_for_resume(path: &Path) -> Result<ResumeIndex, ResumeError> {
    // Before opening: opening a FIFO to read waits for a writer.
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return Err(ResumeError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            let mut index = ResumeIndex::default();
            index.seal();
            return Ok(index);
        }
        Err(source) => {
            return Err(ReadError::Open {
                path: path.to_path_buf(),
                source,
            }
            .into())
        }
    };
    Ok(index_of(&file, path)?.0)
}

/// The sealed index of the outcome lines in `file`, with the length of its
/// whole lines and whether the last of them lacks its newline.
fn index_of(file: &File, path: &Path) -> Result<(ResumeIndex, u64, bool), ResumeError> {
    let mut index = ResumeIndex::default();
    let mut lines: Outcomes<_, ResumeFields> = Outcomes::new(
        BufReader::with_capacity(64 * 1024, file),
        path.display().to_string(),
    );
    for line in lines.by_ref() {
        index.insert(&line?);
    }
    index.seal();
    Ok((index, lines.good_len(), lines.unterminated()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::OutcomeLine;

    #[test]
    fn resume_and_report_accept_the_same_lines() {
        let lines = [
            r#"{"id":"1","image":"a","models":["m"],"status":"ok","attempts":1,"rate_limited":0}"#,
            r#"{"id":"1","image":"a","models":["m"],"status":"ok","attempts":1,"rate_limited":0,"solutions":{"m":[1,{"x":null}]},"latency_ms":3.5,"http_status":200}"#,
            r#"{"id":"1","image":"a","models":["m"],"status":"failed","attempts":1,"rate_limited":0,"error":"x","extra":true}"#,
            r#"{"id":1,"image":"a","models":["m"],"status":"ok","attempts":1,"rate_limited":0}"#,
            r#"{"id":"1","image":"a","models":["m"],"status":"done","attempts":1,"rate_limited":0}"#,
            r#"{"id":"1","image":"a","models":["m"],"status":"ok","attempts":-1,"rate_limited":0}"#,
            r#"{"id":"1","image":"a","models":["m"],"status":"ok","rate_limited":0}"#,
            r#"{"id":"1","image":"a","models":["m"],"status":"ok","attempts":1,"rate_limited":0,"http_status":"200"}"#,
            r#"{"id":"1","image":"a","models":["m"],"status":"ok","attempts":1,"rate_limited":0,"latency_ms":"3"}"#,
            r#"{"id":"1","image":"a","models":"m","status":"ok","attempts":1,"rate_limited":0}"#,
            r#"{"id":"1","image":"a","models":["m"],"status":"failed","attempts":1,"rate_limited":0,"error":5}"#,
            r#"{"id":"1","image":"a","models":["m"],"status":"ok","attempts":1,"rate_limited":0,"solutions":{"m":[1,}}"#,
        ];
        for line in lines {
            let report = serde_json::from_str::<OutcomeLine>(line).is_ok();
            let resume = serde_json::from_str::<ResumeFields>(line).is_ok();
            assert_eq!(report, resume, "{line}");
        }
    }
}

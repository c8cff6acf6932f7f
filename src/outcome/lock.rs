//! One writer per outcome file: a run holds an exclusive lock on the file
//! (an advisory `flock`, released when the file is closed, a killed
//! process included) for as long as it writes. Two runs on one file, an
//! overlapping cron job, would otherwise each write from its own offset
//! over the other's lines: lost outcomes, duplicated ones, and a file that
//! `--resume` refuses to read.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// Why an outcome file could not be taken for writing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another process (another run) holds it.
    #[error(
        "{}: another run is writing it (it holds the file's lock); two runs on one \
         outcome file would write over each other's lines",
        path.display()
    )]
    InUse {
        /// The file.
        path: PathBuf,
    },
    /// It holds outcomes, and the caller did not ask to replace them.
    #[error(
        "{} already holds outcomes ({len} bytes); add --resume to keep them and send only \
         the jobs without one, or --overwrite to replace them",
        path.display()
    )]
    HoldsOutcomes {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: u64,
    },
    /// It could not be opened, locked or emptied.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// Takes `file` (opened from `path`) for writing: an exclusive lock, or
/// [`LockError::InUse`] at once when another process holds one. Only a
/// regular file: `/dev/null` or a pipe holds no lines to write over, and
/// many runs may share it. A file system without locks (some network
/// mounts) is written unlocked, with a warning.
///
/// # Errors
/// [`LockError::InUse`] as above; [`LockError::Io`] when locking failed
/// otherwise.
pub fn lock_for_writing(file: &File, path: &Path) -> Result<(), LockError> {
    if !is_regular(file) {
        return Ok(());
    }
    match try_lock(file) {
        Ok(true) => Ok(()),
        Ok(false) => Err(LockError::InUse {
            path: path.to_path_buf(),
        }),
        Err(error) if unsupported(&error) => {
            log::warn!(
                "{}: its file system cannot lock it; make sure no other run writes it",
                path.display()
            );
            Ok(())
        }
        Err(source) => Err(LockError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// An exclusive `flock` without waiting: `false` when another holds one.
#[cfg(unix)]
fn try_lock(file: &File) -> io::Result<bool> {
    use rustix::fs::{flock, FlockOperation};
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(errno) => Err(errno.into()),
    }
}

/// No advisory locks to take here: written unlocked, with the warning.
#[cfg(not(unix))]
fn try_lock(_file: &File) -> io::Result<bool> {
    Err(io::ErrorKind::Unsupported.into())
}

/// A file system without `flock` (some network mounts).
fn unsupported(error: &io::Error) -> bool {
    #[cfg(unix)]
    if let Some(code) = error.raw_os_error() {
        return code == libc::ENOLCK || code == libc::EOPNOTSUPP;
    }
    error.kind() == io::ErrorKind::Unsupported
}

/// What [`create_locked`] does with a file that already holds outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Empty it: its outcomes are gone.
    Replace,
    /// Leave it as it is and fail with [`LockError::HoldsOutcomes`]: each
    /// line is a request paid for.
    Refuse,
}

/// Creates the outcome file at `path` afresh, locked for writing: emptied
/// only once the lock is held, so a run refused for another's lock leaves
/// that run's outcomes as they were (`/dev/null` is taken as it is). A
/// regular file that is not empty is replaced or refused, as `existing`
/// says.
///
/// # Errors
/// As [`lock_for_writing`]; [`LockError::HoldsOutcomes`] (see
/// [`Existing::Refuse`]); [`LockError::Io`] when the file cannot be
/// created or emptied.
pub fn create_locked(path: &Path, existing: Existing) -> Result<File, LockError> {
    let io_error = |source| LockError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_error)?;
    lock_for_writing(&file, path)?;
    let regular_len = file
        .metadata()
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    match (regular_len, existing) {
        (Some(len), Existing::Refuse) if len > 0 => Err(LockError::HoldsOutcomes {
            path: path.to_path_buf(),
            len,
        }),
        (Some(_), _) => {
            file.set_len(0).map_err(io_error)?;
            Ok(file)
        }
        (None, _) => Ok(file),
    }
}

pub(super) fn is_regular(file: &File) -> bool {
    file.metadata().is_ok_and(|m| m.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_second_writer_is_refused_and_leaves_the_first_ones_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let mut first = create_locked(&path, Existing::Replace).unwrap();
        first.write_all(b"{\"id\":\"1\"}\n").unwrap();
        let refused = create_locked(&path, Existing::Replace).unwrap_err();
        assert!(matches!(refused, LockError::InUse { .. }), "{refused}");
        assert!(refused.to_string().contains("out.jsonl"), "{refused}");
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"id\":\"1\"}\n");
        drop(first);
        let second = create_locked(&path, Existing::Replace).unwrap();
        assert_eq!(second.metadata().unwrap().len(), 0, "afresh once free");
    }

    #[test]
    fn a_device_is_written_by_any_number_of_runs() {
        let null = Path::new("/dev/null");
        let _first = create_locked(null, Existing::Refuse).unwrap();
        let _second = create_locked(null, Existing::Refuse).unwrap();
    }
}

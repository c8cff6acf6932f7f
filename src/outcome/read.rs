//! The one reader of outcome files, for `restb report` and `--resume` alike.
//!
//! A run killed while writing leaves a last line without its newline and
//! whose JSON is cut short (or zeros, after a crash): that line is dropped
//! and reported (a warning naming `FILE:LINE`, and
//! [`Outcomes::torn_line`]), never taken as an error, because the job it
//! would record simply has no outcome yet. Any other line that is not an
//! outcome line is an error naming `FILE:LINE`: a file damaged in the middle
//! is not something to skip past silently.

use super::line::OutcomeLine;
use serde::de::{DeserializeOwned, IgnoredAny};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// Longest outcome line read, in bytes.
pub const MAX_LINE_BYTES: u64 = 64 * 1024 * 1024;

/// Why an outcome file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The outcome file could not be opened.
    #[error("cannot open {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Reading the outcome file failed part-way.
    #[error("{name}:{line}: cannot read: {source}")]
    Read {
        /// The file, as named to the user.
        name: String,
        /// The 1-based line being read.
        line: usize,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A line is not an outcome line (and not a torn last line).
    #[error("{name}:{line}: not an outcome line: {reason}")]
    BadLine {
        /// The file, as named to the user.
        name: String,
        /// The 1-based line.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// The outcome lines of a file, one at a time: an iterator of
/// `Result<T, ReadError>` that ends after the first error.
///
/// `T` is what is kept of each line: the whole [`OutcomeLine`] by default,
/// or a smaller type for a reader that needs only a few fields (every line
/// is still checked as JSON to its end).
///
/// Blank lines are skipped. A last line without a newline whose JSON is cut
/// short (or holds zeros) is a torn line (a run killed while writing it): it
/// is skipped with a warning and noted in [`Outcomes::torn_line`]. A last
/// line without a newline that is whole JSON is read: an outcome, or an
/// error like any other line that is not one.
#[derive(Debug)]
pub struct Outcomes<R, T = OutcomeLine> {
    reader: R,
    name: String,
    line: usize,
    buffer: Vec<u8>,
    torn_line: Option<usize>,
    done: bool,
    good_len: u64,
    unterminated: bool,
    kept: PhantomData<fn() -> T>,
}

/// Opens the outcome file at `path`.
///
/// # Errors
/// [`ReadError::Open`] when the file cannot be opened or is a directory.
/// Errors of its lines come from the iterator, as `FILE:LINE: reason`.
///
/// # Examples
///
/// ```no_run
/// use restb::outcome::read_outcomes;
///
/// let mut failed = 0;
/// for line in read_outcomes("outcomes.jsonl".as_ref())? {
///     failed += u64::from(!line?.is_ok());
/// }
/// println!("{failed} failed");
/// # Ok::<(), restb::outcome::ReadError>(())
/// ```
pub fn read_outcomes(path: &Path) -> Result<Outcomes<BufReader<File>>, ReadError> {
    Outcomes::open(path)
}

impl<T: DeserializeOwned> Outcomes<BufReader<File>, T> {
    /// Opens the outcome file at `path`, keeping `T` of each line.
    ///
    /// # Errors
    /// [`ReadError::Open`] when the file cannot be opened or is a directory.
    pub fn open(path: &Path) -> Result<Outcomes<BufReader<File>, T>, ReadError> {
        let open_error = |source| ReadError::Open {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(open_error)?;
        if file.metadata().map_err(open_error)?.is_dir() {
            return Err(open_error(io::Error::other("is a directory")));
        }
        Ok(Outcomes::new(
            BufReader::with_capacity(64 * 1024, file),
            path.display().to_string(),
        ))
    }
}

impl<R: BufRead, T: DeserializeOwned> Outcomes<R, T> {
    /// The outcome lines read from `reader`; `name` names it in errors and
    /// warnings (`FILE:LINE: ...`).
    pub fn new(reader: R, name: impl Into<String>) -> Outcomes<R, T> {
        Outcomes {
            reader,
            name: name.into(),
            line: 0,
            buffer: Vec::new(),
            torn_line: None,
            done: false,
            good_len: 0,
            unterminated: false,
            kept: PhantomData,
        }
    }

    /// The number of the torn last line that was skipped, if there was one.
    pub fn torn_line(&self) -> Option<usize> {
        self.torn_line
    }

    /// Bytes from the start to the end of the last line read and kept (blank
    /// lines included, a torn line not): where a resumed run appends.
    pub fn good_len(&self) -> u64 {
        self.good_len
    }

    /// Whether the last line kept has no newline after it (a whole outcome
    /// at the very end of the file): an appender must write one first.
    pub fn unterminated(&self) -> bool {
        self.unterminated
    }

    /// The reader, positioned after the last line read: a caller reading
    /// the file a second time seeks it back to the start.
    pub fn into_inner(self) -> R {
        self.reader
    }

    /// The next non-blank line, or `None` at the end.
    fn next_line(&mut self) -> Option<Result<T, ReadError>> {
        loop {
            self.buffer.clear();
            self.line += 1;
            let read = (&mut self.reader)
                .take(MAX_LINE_BYTES + 1)
                .read_until(b'\n', &mut self.buffer);
            match read {
                Ok(0) => return None,
                Ok(_) => {}
                Err(source) => {
                    return Some(Err(ReadError::Read {
                        name: self.name.clone(),
                        line: self.line,
                        source,
                    }))
                }
            }
            let whole = self.buffer.last() == Some(&b'\n');
            if !whole && self.buffer.len() as u64 > MAX_LINE_BYTES {
                // Not a torn end: dropping it would drop every line after it.
                return Some(Err(self.bad_line(format!(
                    "longer than {} MiB",
                    MAX_LINE_BYTES / (1024 * 1024)
                ))));
            }
            if self.buffer.iter().all(u8::is_ascii_whitespace) {
                self.keep(whole);
                continue;
            }
            return match serde_json::from_slice::<T>(&self.buffer) {
                Ok(outcome) => {
                    self.keep(whole);
                    Some(Ok(outcome))
                }
                Err(_) if !whole && is_torn(&self.buffer) => {
                    log::warn!(
                        "{}:{}: ignoring a torn last line (a run was killed while writing it)",
                        self.name,
                        self.line
                    );
                    self.torn_line = Some(self.line);
                    None
                }
                Err(error) => Some(Err(self.bad_line(error.to_string()))),
            };
        }
    }

    /// Counts the line just read as kept.
    fn keep(&mut self, whole: bool) {
        self.good_len += self.buffer.len() as u64;
        self.unterminated = !whole;
    }

    fn bad_line(&self, reason: String) -> ReadError {
        ReadError::BadLine {
            name: self.name.clone(),
            line: self.line,
            reason,
        }
    }
}

/// Whether a last line without its newline is a write cut short: it is not
/// whole JSON (every cut of an outcome line fails to parse, most at their
/// end, a number cut after its `.` or `e` with "invalid number"; the zeros a
/// crash can leave are no JSON either). A last line that is whole JSON is
/// no torn write, outcome or not.
fn is_torn(line: &[u8]) -> bool {
    serde_json::from_slice::<IgnoredAny>(line).is_err()
}

impl<R: BufRead, T: DeserializeOwned> Iterator for Outcomes<R, T> {
    type Item = Result<T, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.next_line();
        self.done = !matches!(next, Some(Ok(_)));
        next
    }
}

impl<R: BufRead, T: DeserializeOwned> std::iter::FusedIterator for Outcomes<R, T> {}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str =
        r#"{"id":"1","image":"a.jpg","models":["m"],"status":"ok","attempts":1,"rate_limited":0}"#;

    fn read(text: &str) -> (Vec<Result<OutcomeLine, ReadError>>, Outcomes<&[u8]>) {
        let mut outcomes = Outcomes::new(text.as_bytes(), "out.jsonl");
        let lines: Vec<_> = outcomes.by_ref().collect();
        (lines, outcomes)
    }

    #[test]
    fn a_torn_last_line_is_skipped() {
        let text = format!("{OK}\n\n{OK}\n{{\"id\":\"3\",\"ima");
        let (lines, outcomes) = read(&text);
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(Result::is_ok));
        assert_eq!(outcomes.torn_line(), Some(4));
        assert_eq!(outcomes.good_len() as usize, 2 * OK.len() + 3);
        assert!(!outcomes.unterminated());
    }

    #[test]
    fn a_whole_last_line_without_newline_is_read() {
        let text = format!("{OK}\n{OK}");
        let (lines, outcomes) = read(&text);
        assert_eq!(lines.len(), 2);
        assert_eq!(outcomes.torn_line(), None);
        assert_eq!(outcomes.good_len() as usize, text.len());
        assert!(outcomes.unterminated());
    }

    #[test]
    fn a_bad_line_is_named_and_ends_the_reading() {
        let (lines, _) = read(&format!("{OK}\nnot json\n{OK}\n"));
        assert_eq!(lines.len(), 2);
        let error = lines[1].as_ref().unwrap_err().to_string();
        assert!(
            error.starts_with("out.jsonl:2: not an outcome line: "),
            "{error}"
        );
    }

    #[test]
    fn every_cut_of_an_outcome_line_is_torn() {
        let line = r#"{"id":"é7","image":"https://x/caf\u00e9/ö.jpg","models":["re_logo","m"],"status":"failed","http_status":503,"attempts":12,"rate_limited":0,"latency_ms":1164.25,"solutions":{"m":[true,false,null,-1.5e3]},"error":"x"}"#;
        assert!(serde_json::from_str::<OutcomeLine>(line).is_ok());
        for cut in 1..line.len() {
            let cut = &line.as_bytes()[..cut];
            assert!(is_torn(cut), "{}", String::from_utf8_lossy(cut));
        }
        assert!(!is_torn(line.as_bytes()));
    }

    #[test]
    fn a_whole_json_last_line_that_is_no_outcome_is_an_error_not_a_torn_one() {
        for tail in [r#"{"note":"x"}"#, "[1,2]", "7", " {} "] {
            let text = format!("{OK}\n{tail}");
            let (lines, outcomes) = read(&text);
            assert_eq!(lines.len(), 2, "{tail}");
            let error = lines[1].as_ref().unwrap_err().to_string();
            assert!(error.starts_with("out.jsonl:2: not an outcome"), "{error}");
            assert_eq!(outcomes.torn_line(), None);
        }
    }

    #[test]
    fn zeros_left_by_a_crash_are_a_torn_line() {
        for tail in ["\0\0\0", "{\"id\":\"3\",\"im\0\0", "{\"note\":\"x\"}\0"] {
            let text = format!("{OK}\n{tail}");
            let (lines, outcomes) = read(&text);
            assert_eq!(lines.len(), 1, "{tail:?}");
            assert!(lines[0].is_ok());
            assert_eq!(outcomes.torn_line(), Some(2));
        }
    }

    #[test]
    fn a_bad_whole_last_line_is_an_error_not_a_torn_one() {
        let text = format!("{OK}\n{{\"id\":\"3\",\"ima\n");
        let (lines, outcomes) = read(&text);
        assert_eq!(lines.len(), 2);
        assert!(lines[1]
            .as_ref()
            .unwrap_err()
            .to_string()
            .starts_with("out.jsonl:2: "));
        assert_eq!(outcomes.torn_line(), None);
    }
}

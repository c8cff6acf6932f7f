//! Reading an outcome file line by line, with line-numbered errors.

use super::error::ReportError;
use crate::output::OutcomeLine;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// Longest outcome line read, in bytes.
pub const MAX_LINE_BYTES: u64 = 64 * 1024 * 1024;

/// The outcome lines of a file, one at a time: an iterator of
/// `Result<OutcomeLine, ReportError>` that ends after the first error.
///
/// Blank lines are skipped. A last line without a newline that does not
/// parse is a torn line (a run killed while writing it, which `--resume`
/// drops too): it is skipped with a warning and noted in
/// [`Outcomes::torn_line`], not reported as an error.
#[derive(Debug)]
pub struct Outcomes<R> {
    reader: R,
    name: String,
    line: usize,
    buffer: Vec<u8>,
    torn_line: Option<usize>,
    done: bool,
}

/// Opens the outcome file at `path`.
///
/// # Errors
/// [`ReportError::Open`] when the file cannot be opened or is a directory.
/// Errors of its lines come from the iterator, as `FILE:LINE: reason`.
///
/// # Examples
///
/// ```no_run
/// use restb::report::{read_outcomes, Summary};
///
/// let mut summary = Summary::new();
/// for line in read_outcomes("outcomes.jsonl".as_ref())? {
///     summary.add(&line?);
/// }
/// print!("{}", summary.render_text());
/// # Ok::<(), restb::report::ReportError>(())
/// ```
pub fn read_outcomes(path: &Path) -> Result<Outcomes<BufReader<File>>, ReportError> {
    let open_error = |source| ReportError::Open {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(open_error)?;
    if file.metadata().map_err(open_error)?.is_dir() {
        return Err(open_error(std::io::Error::other("is a directory")));
    }
    Ok(Outcomes::new(
        BufReader::with_capacity(64 * 1024, file),
        path.display().to_string(),
    ))
}

impl<R: BufRead> Outcomes<R> {
    /// The outcome lines read from `reader`; `name` names it in errors and
    /// warnings (`FILE:LINE: ...`).
    pub fn new(reader: R, name: impl Into<String>) -> Outcomes<R> {
        Outcomes {
            reader,
            name: name.into(),
            line: 0,
            buffer: Vec::new(),
            torn_line: None,
            done: false,
        }
    }

    /// The number of the torn last line that was skipped, if there was one.
    pub fn torn_line(&self) -> Option<usize> {
        self.torn_line
    }

    /// The next non-blank line, or `None` at the end.
    fn next_line(&mut self) -> Option<Result<OutcomeLine, ReportError>> {
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
                    return Some(Err(ReportError::Read {
                        name: self.name.clone(),
                        line: self.line,
                        source,
                    }))
                }
            }
            let whole = self.buffer.last() == Some(&b'\n');
            if !whole && self.buffer.len() as u64 > MAX_LINE_BYTES {
                return Some(Err(self.bad_line(format!(
                    "longer than {} MiB",
                    MAX_LINE_BYTES / (1024 * 1024)
                ))));
            }
            if self.buffer.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return match serde_json::from_slice::<OutcomeLine>(&self.buffer) {
                Ok(outcome) => Some(Ok(outcome)),
                Err(_) if !whole => {
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

    fn bad_line(&self, reason: String) -> ReportError {
        ReportError::BadLine {
            name: self.name.clone(),
            line: self.line,
            reason,
        }
    }
}

impl<R: BufRead> Iterator for Outcomes<R> {
    type Item = Result<OutcomeLine, ReportError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.next_line();
        self.done = !matches!(next, Some(Ok(_)));
        next
    }
}

impl<R: BufRead> std::iter::FusedIterator for Outcomes<R> {}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str =
        r#"{"id":"1","image":"a.jpg","models":["m"],"status":"ok","attempts":1,"rate_limited":0}"#;

    fn read(text: &str) -> (Vec<Result<OutcomeLine, ReportError>>, Option<usize>) {
        let mut outcomes = Outcomes::new(text.as_bytes(), "out.jsonl");
        let lines: Vec<_> = outcomes.by_ref().collect();
        (lines, outcomes.torn_line())
    }

    #[test]
    fn a_torn_last_line_is_skipped() {
        let (lines, torn) = read(&format!("{OK}\n\n{OK}\n{{\"id\":\"3\",\"ima"));
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(Result::is_ok));
        assert_eq!(torn, Some(4));
    }

    #[test]
    fn a_whole_last_line_without_newline_is_read() {
        let (lines, torn) = read(&format!("{OK}\n{OK}"));
        assert_eq!(lines.len(), 2);
        assert_eq!(torn, None);
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
}

//! A line reader that never holds more than one bounded line, and checks
//! each line is UTF-8 as it goes.

use std::io::{BufRead, Read};

use super::blocks::read_error_reason;
use super::InputError;

/// The longest line accepted, in bytes, not counting its line ending: 1 MiB.
pub const MAX_LINE_BYTES: usize = 1 << 20;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Whether `text` holds a CR before its trailing ones.
fn holds_lone_cr(text: &[u8]) -> bool {
    let end = text.iter().rposition(|b| *b != b'\r').unwrap_or(0);
    text[..end].contains(&b'\r')
}

/// Reads lines of at most [`MAX_LINE_BYTES`], numbering them from 1.
///
/// A UTF-8 byte-order mark at the very start is dropped.
#[derive(Debug)]
pub(super) struct LineReader<R> {
    inner: R,
    source_name: String,
    /// The number of the line in `buf`; 0 before the first.
    number: usize,
    /// The current line, with its line ending.
    buf: Vec<u8>,
    /// The length of the current line without its line ending.
    text_len: usize,
    /// Whether a first line holding a lone CR is refused (see
    /// [`LineReader::refuse_lone_cr`]).
    lone_cr_refused: bool,
}

impl<R: BufRead> LineReader<R> {
    pub(super) fn new(inner: R, source_name: &str) -> Self {
        LineReader {
            inner,
            source_name: source_name.to_string(),
            number: 0,
            buf: Vec::new(),
            text_len: 0,
            lone_cr_refused: false,
        }
    }

    /// Refuses a first line holding a lone CR: a file whose lines end in CR
    /// alone, which this format cannot read (a CSV can).
    pub(super) fn refuse_lone_cr(mut self) -> Self {
        self.lone_cr_refused = true;
        self
    }

    /// Reads the next line; `Ok(None)` at the end of the input.
    ///
    /// # Errors
    ///
    /// A read error, a line longer than [`MAX_LINE_BYTES`], or a line that is
    /// not UTF-8, each at the line it happened on.
    pub(super) fn next_line(&mut self) -> Result<Option<usize>, InputError> {
        self.buf.clear();
        self.text_len = 0;
        let number = self.number + 1;
        // Room for a full-length line and a "\r\n"; one byte more is too long.
        let limit = (MAX_LINE_BYTES + 2) as u64;
        let read = (&mut self.inner)
            .take(limit)
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| InputError::at(&self.source_name, number, read_error_reason(&e)))?;
        if read == 0 {
            return Ok(None);
        }
        self.number = number;
        if number == 1 && self.buf.starts_with(BOM) {
            self.buf.drain(..BOM.len());
        }
        let mut text_len = self.buf.len();
        if self.buf.last() == Some(&b'\n') {
            text_len -= 1;
            if text_len > 0 && self.buf[text_len - 1] == b'\r' {
                text_len -= 1;
            }
        }
        // A CR inside the first line (or one too long), not only at its end
        // (`\r\r\n`, as Python's csv module writes on Windows, is fine), is
        // a file whose lines end in CR alone (classic Mac OS, Excel's "CSV
        // (Macintosh)"): read as one line. A CSV reads CR line ends itself
        // (only its errors would all name line 1), unless one is too long.
        let checked = (number == 1 && self.lone_cr_refused) || text_len > MAX_LINE_BYTES;
        if checked && holds_lone_cr(&self.buf[..text_len]) {
            return Err(self.error(
                "lines end in a lone CR (classic Mac OS line endings), which restb does not \
                 read: convert the file first (tr '\\r' '\\n' < FILE > NEW_FILE)",
            ));
        }
        if text_len > MAX_LINE_BYTES {
            return Err(self.error("line is longer than 1 MiB"));
        }
        if let Err(e) = std::str::from_utf8(&self.buf) {
            let reason = format!("invalid UTF-8 at byte {} of the line", e.valid_up_to() + 1);
            return Err(self.error(reason));
        }
        self.text_len = text_len;
        Ok(Some(number))
    }

    /// The current line without its line ending.
    pub(super) fn text(&self) -> &str {
        // `next_line` checked the whole buffer is UTF-8, and `text_len` ends
        // before an ASCII line ending, so this slice is UTF-8 too.
        std::str::from_utf8(&self.buf[..self.text_len]).unwrap_or_default()
    }

    /// The current line with its line ending, as read.
    pub(super) fn raw(&self) -> &[u8] {
        &self.buf
    }

    /// The number of the current line (0 before the first).
    pub(super) fn number(&self) -> usize {
        self.number
    }

    /// The input's name, for error messages.
    pub(super) fn source_name(&self) -> &str {
        &self.source_name
    }

    /// An error at the current line.
    pub(super) fn error(&self, reason: impl Into<String>) -> InputError {
        InputError::at(&self.source_name, self.number, reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Result<Vec<(usize, String)>, InputError> {
        let mut reader = LineReader::new(input, "t");
        let mut out = Vec::new();
        while let Some(n) = reader.next_line()? {
            out.push((n, reader.text().to_string()));
        }
        Ok(out)
    }

    #[test]
    fn endings_and_bom_are_stripped() {
        let got = lines(b"\xEF\xBB\xBFa\r\nb\n\nc").unwrap();
        let want = [(1, "a"), (2, "b"), (3, ""), (4, "c")];
        let want: Vec<_> = want.iter().map(|(n, s)| (*n, s.to_string())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn bad_utf8_names_the_line() {
        let err = lines(b"ok\nab\xFFc\n").unwrap_err();
        assert_eq!(err.to_string(), "t:2: invalid UTF-8 at byte 3 of the line");
    }

    #[test]
    fn long_lines_are_refused_without_reading_them_whole() {
        let mut input = b"x\n".to_vec();
        input.extend(std::iter::repeat_n(b'a', 3 * MAX_LINE_BYTES));
        let err = lines(&input).unwrap_err();
        assert_eq!(err.to_string(), "t:2: line is longer than 1 MiB");
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_accepted() {
        let mut input = vec![b'a'; MAX_LINE_BYTES];
        input.extend(b"\r\nb");
        let got = lines(&input).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1.len(), MAX_LINE_BYTES);
        let mut input = vec![b'a'; MAX_LINE_BYTES + 1];
        input.push(b'\n');
        assert!(lines(&input).is_err());
    }
}

//! The plain list: one image URL or local path per line.

use std::io::BufRead;

use super::collect::Fields;
use super::line_reader::LineReader;
use super::validate::Field;
use super::InputError;

/// Reads every non-blank line that does not start with `#` as one record.
#[derive(Debug)]
pub(super) struct PlainParser<R> {
    lines: LineReader<R>,
}

impl<R: BufRead> PlainParser<R> {
    pub(super) fn new(lines: LineReader<R>) -> Self {
        PlainParser { lines }
    }

    /// The next record and its line; `Ok(None)` at the end.
    ///
    /// # Errors
    ///
    /// The first bad line, as [`super::read_records`] describes.
    pub(super) fn next(&mut self) -> Result<Option<(usize, Fields<'_>)>, InputError> {
        loop {
            let Some(line) = self.lines.next_line()? else {
                return Ok(None);
            };
            let text = self.lines.text().trim();
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            // Re-borrowed here so the loop above may read on.
            let text = self.lines.text().trim();
            let fields = Fields {
                id: None,
                field: Field::Any,
                image: text,
                models: None,
            };
            return Ok(Some((line, fields)));
        }
    }
}

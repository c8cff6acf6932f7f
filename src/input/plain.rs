//! The plain list: one image URL or local path per line.

use std::io::BufRead;

use super::collect::{Collector, Fields};
use super::line_reader::LineReader;
use super::validate::Field;
use super::InputError;

/// Reads every non-blank line that does not start with `#` as one record.
///
/// # Errors
///
/// The first bad line, as [`super::read_records`] describes.
pub(super) fn read<R: BufRead>(
    lines: &mut LineReader<'_, R>,
    collector: &mut Collector<'_>,
) -> Result<(), InputError> {
    while let Some(line) = lines.next_line()? {
        let text = lines.text().trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let fields = Fields {
            id: None,
            field: Field::Any,
            image: text,
            models: None,
        };
        collector.push(line, fields)?;
    }
    Ok(())
}

//! One pull-based reader over the three formats: the next record's fields
//! and line, on demand, so a caller can stream an input of any size.

use std::io::BufRead;

use super::collect::Fields;
use super::csv_format::CsvParser;
use super::jsonl::JsonlParser;
use super::line_reader::LineReader;
use super::plain::PlainParser;
use super::{Format, InputError};

/// A reader of one format.
#[derive(Debug)]
pub(super) enum Parser<R> {
    /// CSV with a header row.
    Csv(Box<CsvParser<R>>),
    /// JSON Lines.
    Jsonl(JsonlParser<R>),
    /// A plain list.
    Lines(PlainParser<R>),
}

impl<R: BufRead> Parser<R> {
    /// A reader of `format` over `reader`, named `source_name` in errors
    /// (a CSV header is read here).
    ///
    /// # Errors
    ///
    /// A bad CSV header or a read error, at its line.
    pub(super) fn new(reader: R, source_name: &str, format: Format) -> Result<Self, InputError> {
        let lines = LineReader::new(reader, source_name);
        Ok(match format {
            Format::Csv => Parser::Csv(Box::new(CsvParser::new(lines)?)),
            Format::Jsonl => Parser::Jsonl(JsonlParser::new(lines.refuse_lone_cr())),
            Format::Lines => Parser::Lines(PlainParser::new(lines.refuse_lone_cr())),
        })
    }

    /// Whether a record may give its own id; if not, ids are the record
    /// numbers and cannot repeat.
    pub(super) fn names_ids(&self) -> bool {
        match self {
            Parser::Csv(csv) => csv.names_ids(),
            Parser::Jsonl(_) => true,
            Parser::Lines(_) => false,
        }
    }

    /// The next record's fields and the line it starts on; `Ok(None)` at
    /// the end.
    ///
    /// # Errors
    ///
    /// The first bad line, as [`super::read_records`] describes.
    pub(super) fn next(&mut self) -> Result<Option<(usize, Fields<'_>)>, InputError> {
        match self {
            Parser::Csv(csv) => csv.next(),
            Parser::Jsonl(jsonl) => jsonl.next(),
            Parser::Lines(plain) => plain.next(),
        }
    }
}

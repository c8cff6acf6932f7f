//! CSV with a header row: a `url` or `path` column, optional `id` and
//! `models` (`;`-separated) columns.
//!
//! The `csv` crate splits fields; it reads through [`CsvSource`], which hands
//! it one checked line at a time (bounded, UTF-8) and refuses quoting the
//! crate would silently accept, so every error names its line.

use std::collections::VecDeque;
use std::io::{self, BufRead, Read};

use super::collect::Fields;
use super::line_reader::{LineReader, MAX_LINE_BYTES};
use super::validate::{self, Field};
use super::InputError;

/// Reads the header row, then one data row at a time.
#[derive(Debug)]
pub(super) struct CsvParser<R> {
    reader: csv::Reader<CsvSource<R>>,
    record: csv::StringRecord,
    /// `None` for an input without even a header (it has no records).
    columns: Option<Columns>,
}

impl<R: BufRead> CsvParser<R> {
    /// Reads the header row.
    ///
    /// # Errors
    ///
    /// A bad header line, as [`super::read_records`] describes.
    pub(super) fn new(lines: LineReader<R>) -> Result<Self, InputError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(false)
            .from_reader(CsvSource::new(lines));
        let mut record = csv::StringRecord::new();
        let columns = if next_record(&mut reader, &mut record)? {
            let source = reader.get_mut();
            let header_line = source.record_start();
            let columns = Columns::from_header(&record).map_err(|reason| {
                InputError::at(source.lines.source_name(), header_line, reason)
            })?;
            Some(columns)
        } else {
            None
        };
        Ok(CsvParser {
            reader,
            record,
            columns,
        })
    }

    /// Whether rows may name their own ids (the header has an `id` column).
    pub(super) fn names_ids(&self) -> bool {
        self.columns.as_ref().is_some_and(|c| c.id.is_some())
    }

    /// The next data row and the line it starts on; `Ok(None)` at the end.
    ///
    /// # Errors
    ///
    /// The first bad line, as [`super::read_records`] describes.
    pub(super) fn next(&mut self) -> Result<Option<(usize, Fields<'_>)>, InputError> {
        let Some(columns) = &self.columns else {
            return Ok(None);
        };
        if !next_record(&mut self.reader, &mut self.record)? {
            return Ok(None);
        }
        let source = self.reader.get_mut();
        let line = source.record_start();
        let fields = columns
            .fields(&self.record)
            .map_err(|reason| InputError::at(source.lines.source_name(), line, reason))?;
        Ok(Some((line, fields)))
    }
}

/// Reads the next record; `Ok(false)` at the end.
fn next_record<R: BufRead>(
    reader: &mut csv::Reader<CsvSource<R>>,
    record: &mut csv::StringRecord,
) -> Result<bool, InputError> {
    reader.read_record(record).map_err(|error| {
        let source = reader.get_mut();
        if let Some(error) = source.error.take() {
            return error;
        }
        // The record the crate was reading when it failed, if it had begun one.
        let line = source
            .quoting
            .starts
            .front()
            .copied()
            .unwrap_or_else(|| source.lines.number());
        let reason = match error.kind() {
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => format!(
                "row has {len} field{}, but the header has {expected_len}",
                if *len == 1 { "" } else { "s" }
            ),
            _ => format!("malformed CSV: {error}"),
        };
        InputError::at(source.lines.source_name(), line, reason)
    })
}

/// Where the columns this tool reads are.
#[derive(Debug, Default)]
struct Columns {
    url: Option<usize>,
    path: Option<usize>,
    id: Option<usize>,
    models: Option<usize>,
    /// The other columns whose names read as `models` mistyped, as the
    /// header spells them: read only where `models` is missing, to refuse
    /// one that holds model ids (see `validate::model_for_models`).
    typos: Vec<(usize, String)>,
}

impl Columns {
    /// Finds the columns by name, trimmed and ignoring ASCII case.
    ///
    /// # Errors
    ///
    /// No `url` or `path` column (naming the columns found), or a column twice.
    fn from_header(header: &csv::StringRecord) -> Result<Columns, String> {
        let mut columns = Columns::default();
        for (index, original) in header.iter().enumerate() {
            let name = original.trim().to_ascii_lowercase();
            let slot = match name.as_str() {
                "url" => &mut columns.url,
                "path" => &mut columns.path,
                "id" => &mut columns.id,
                "models" => &mut columns.models,
                // Not ours: only looked at, never refused for appearing twice.
                _ => {
                    if validate::looks_like_models(&name) {
                        columns.typos.push((index, original.trim().to_string()));
                    }
                    continue;
                }
            };
            if slot.is_some() {
                return Err(format!("column `{name}` appears twice in the header"));
            }
            *slot = Some(index);
        }
        if columns.url.is_none() && columns.path.is_none() {
            let found: Vec<String> = header
                .iter()
                .map(|name| format!("{:?}", name.trim()))
                .collect();
            return Err(format!(
                "the header has no `url` or `path` column (found: {})",
                found.join(", ")
            ));
        }
        Ok(columns)
    }

    /// The fields of one data row.
    ///
    /// # Errors
    ///
    /// No image in the row, or both a URL and a path.
    fn fields<'r>(&self, row: &'r csv::StringRecord) -> Result<Fields<'r>, String> {
        let cell = |index: Option<usize>| index.and_then(|i| row.get(i)).map_or("", str::trim);
        let (url, path) = (cell(self.url), cell(self.path));
        let (field, image) = match (url.is_empty(), path.is_empty()) {
            (false, true) => (Field::Url, url),
            (true, false) => (Field::Any, path),
            (false, false) => {
                return Err("both `url` and `path` are filled in: fill one".to_string())
            }
            (true, true) => return Err(self.no_image()),
        };
        let id = Some(cell(self.id))
            .filter(|id| !id.is_empty())
            .map(str::to_string);
        if self.models.is_none() {
            for (index, name) in &self.typos {
                let values = cell(Some(*index)).split(';');
                if let Some(reason) = validate::model_for_models(name, values) {
                    return Err(reason);
                }
            }
        }
        let models = validate::clean_models(cell(self.models).split(';'));
        Ok(Fields {
            id,
            field,
            image,
            models,
        })
    }

    fn no_image(&self) -> String {
        match (self.url, self.path) {
            (Some(_), Some(_)) => "no image: the `url` and `path` cells are both empty",
            (Some(_), None) => "no image: the `url` cell is empty",
            _ => "no image: the `path` cell is empty",
        }
        .to_string()
    }
}

/// The bytes the `csv` crate reads: checked lines from a [`LineReader`], one
/// at a time, with quoting checked as they pass.
#[derive(Debug)]
struct CsvSource<R> {
    lines: LineReader<R>,
    /// How much of the current line the crate has taken.
    taken: usize,
    /// The error that stopped the input; the crate only sees an `io::Error`.
    error: Option<InputError>,
    quoting: Quoting,
    done: bool,
}

impl<R: BufRead> CsvSource<R> {
    fn new(lines: LineReader<R>) -> Self {
        CsvSource {
            lines,
            taken: 0,
            error: None,
            quoting: Quoting::default(),
            done: false,
        }
    }

    /// The line where the record the crate just returned started.
    fn record_start(&mut self) -> usize {
        // Each record the crate returns began with a byte `Quoting` saw, so a
        // start is queued; fall back to the current line all the same.
        self.quoting
            .next_start()
            .unwrap_or_else(|| self.lines.number())
    }

    /// Moves to the next line, checking its quoting; `Ok(false)` at the end.
    fn advance(&mut self) -> Result<bool, InputError> {
        let Some(line) = self.lines.next_line()? else {
            return match self.quoting.finish() {
                Some((opened, reason)) => {
                    Err(InputError::at(self.lines.source_name(), opened, reason))
                }
                None => Ok(false),
            };
        };
        self.taken = 0;
        self.quoting
            .feed(self.lines.raw(), line)
            .map_err(|(at, reason)| InputError::at(self.lines.source_name(), at, reason))?;
        Ok(true)
    }
}

impl<R: BufRead> Read for CsvSource<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.error.is_some() {
            return Err(io::Error::other("input error"));
        }
        while self.taken >= self.lines.raw().len() {
            if self.done {
                return Ok(0);
            }
            match self.advance() {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    return Ok(0);
                }
                Err(error) => {
                    self.error = Some(error);
                    return Err(io::Error::other("input error"));
                }
            }
        }
        let rest = &self.lines.raw()[self.taken..];
        let n = rest.len().min(out.len());
        out[..n].copy_from_slice(&rest[..n]);
        self.taken += n;
        Ok(n)
    }
}

/// Where the quote checker is within a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum QuoteState {
    /// At the start of a field.
    #[default]
    FieldStart,
    /// In spaces at the start of a field.
    LeadingSpace,
    /// In a field that did not start with a quote.
    Unquoted,
    /// In a quoted field.
    Quoted,
    /// Just after a quote in a quoted field: its end, or half of a `""`.
    AfterQuote,
}

/// A strict check of RFC 4180 quoting, which the `csv` crate reads leniently
/// (a stray quote would silently become part of a value, and an unclosed one
/// would swallow the rest of the file). It also bounds a record to 1 MiB and
/// notes the line each record starts on: the crate's own positions do not
/// count the blank lines it skips.
#[derive(Debug, Default)]
struct Quoting {
    state: QuoteState,
    /// Whether a record has started and not ended.
    in_record: bool,
    /// The line the current record started on.
    record_line: usize,
    /// The bytes of the current record so far.
    record_bytes: usize,
    /// The line the open quoted field started on.
    quote_line: usize,
    /// The start lines of the records not yet taken by [`Quoting::next_start`].
    starts: VecDeque<usize>,
}

impl Quoting {
    /// Checks one line (with its line ending).
    ///
    /// # Errors
    ///
    /// The line to report and the reason.
    fn feed(&mut self, bytes: &[u8], line: usize) -> Result<(), (usize, String)> {
        for &byte in bytes {
            let terminator = matches!(byte, b'\n' | b'\r');
            if !self.in_record {
                if terminator {
                    continue; // the csv crate skips blank lines too
                }
                self.in_record = true;
                self.record_line = line;
                self.record_bytes = 0;
                self.starts.push_back(line);
            }
            self.state = self.step(byte, line)?;
            if self.state == QuoteState::FieldStart && terminator {
                self.in_record = false;
                continue;
            }
            self.record_bytes += 1;
            if self.record_bytes > MAX_LINE_BYTES {
                return Err(if self.state == QuoteState::Quoted {
                    (
                        self.quote_line,
                        "quoted field is not closed within 1 MiB".to_string(),
                    )
                } else {
                    (self.record_line, "record is longer than 1 MiB".to_string())
                });
            }
        }
        Ok(())
    }

    /// The state after `byte`.
    fn step(&mut self, byte: u8, line: usize) -> Result<QuoteState, (usize, String)> {
        use QuoteState::*;
        let reason = match (self.state, byte) {
            (Quoted, b'"') => return Ok(AfterQuote),
            (Quoted, _) => return Ok(Quoted),
            (AfterQuote, b'"') => return Ok(Quoted),
            (FieldStart, b'"') => {
                self.quote_line = line;
                return Ok(Quoted);
            }
            (FieldStart | LeadingSpace, b' ' | b'\t') => return Ok(LeadingSpace),
            (_, b',' | b'\n' | b'\r') => return Ok(FieldStart),
            (FieldStart | LeadingSpace | Unquoted, _) if byte != b'"' => return Ok(Unquoted),
            (LeadingSpace, _) => {
                "a quoted field must start right after the comma (remove the space before the quote)"
            }
            (Unquoted | FieldStart, _) => {
                "quote inside an unquoted field (quote the whole field and double the quotes in it)"
            }
            (AfterQuote, _) => {
                "text after the closing quote of a field (double a quote inside a quoted field)"
            }
        };
        Err((line, reason.to_string()))
    }

    /// The start line of the next record the `csv` crate returns.
    fn next_start(&mut self) -> Option<usize> {
        self.starts.pop_front()
    }

    /// At the end of the input: the line and reason of an unclosed quote.
    fn finish(&self) -> Option<(usize, String)> {
        (self.state == QuoteState::Quoted)
            .then(|| (self.quote_line, "quoted field is never closed".to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str) -> Result<(), (usize, String)> {
        let mut quoting = Quoting::default();
        for (i, line) in input.split_inclusive('\n').enumerate() {
            quoting.feed(line.as_bytes(), i + 1)?;
        }
        quoting.finish().map_or(Ok(()), Err)
    }

    #[test]
    fn good_quoting_passes() {
        for input in [
            "a,b\n1,2\n",
            "\"a\",\"b \"\"c\"\"\"\r\n\"x\ny\",2",
            "a, b\n,\n\"\"\n",
        ] {
            assert_eq!(check(input), Ok(()), "{input:?}");
        }
    }

    #[test]
    fn bad_quoting_names_the_line() {
        let cases = [
            ("a,b\nx,y\"z\n", 2, "quote inside an unquoted field"),
            ("a,b\nx, \"y\"\n", 2, "must start right after the comma"),
            ("a,b\n\"x\"y,1\n", 2, "text after the closing quote"),
            ("a,b\n1,2\n\"x,1\n2,3\n", 3, "never closed"),
        ];
        for (input, line, reason) in cases {
            let (at, got) = check(input).unwrap_err();
            assert_eq!(at, line, "{input:?}");
            assert!(got.contains(reason), "{input:?}: {got}");
        }
    }
}

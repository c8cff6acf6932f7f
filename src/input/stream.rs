//! An input of any size, read twice and never held: a checking pass that
//! keeps only counts, one 64-bit hash per id and one per 64 KiB of input,
//! then a second pass that hands out the records one at a time.
//!
//! Both passes read the same open file, so a file renamed or replaced
//! between them is not read in its place. One changed in place is found by
//! [`BlockReader`]: the second pass hands on no byte that differs from the
//! first's. Standard input cannot be read twice: [`Input::spool`] first
//! copies it to an unnamed temporary file (in `$TMPDIR`, else `/tmp`; the
//! system removes it when the process ends), which costs disk space equal
//! to the input, not memory.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufRead, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use super::blocks::{self, BlockHashes, BlockReader};
use super::collect::Checker;
use super::ids::{self, IdHashes};
use super::parser::Parser;
use super::{InputError, ReadOptions, Record};

/// What the checking pass found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Checked {
    /// Records in the input.
    pub records: u64,
}

/// An open input, ready to be checked and then streamed.
///
/// # Examples
///
/// ```
/// use restb::input::{Format, Input, ReadOptions};
///
/// let text = "id,url\na,https://example.com/1.jpg\nb,https://example.com/2.jpg\n";
/// let mut input = Input::spool(text.as_bytes(), "<stdin>", &ReadOptions::new(Format::Csv)).unwrap();
/// let mut seen = 0;
/// let checked = input.check(|_record| seen += 1).unwrap();
/// assert_eq!((checked.records, seen), (2, 2));
/// let ids: Vec<String> = input.records().unwrap().map(|r| r.id).collect();
/// assert_eq!(ids, ["a", "b"]);
/// ```
#[derive(Debug)]
pub struct Input {
    file: File,
    source_name: String,
    options: ReadOptions,
    checked: Option<Checked>,
    /// The bytes the checking pass read, which later passes must find again.
    blocks: Option<Arc<BlockHashes>>,
}

impl Input {
    /// Opens the file at `path`, named by its path in errors. One that is
    /// not a regular file (a pipe: `<(zcat list.gz)`, `/dev/stdin`, a FIFO)
    /// cannot be read twice, so it is copied first, as standard input is.
    ///
    /// # Errors
    ///
    /// A file that cannot be opened (`FILE: cannot open: ...`), a
    /// directory, or a pipe that cannot be copied.
    pub fn open(path: &Path, options: &ReadOptions) -> Result<Input, InputError> {
        let source_name = path.display().to_string();
        let file = File::open(path)
            .map_err(|e| InputError::whole(&source_name, format!("cannot open: {e}")))?;
        match file.metadata() {
            Ok(meta) if meta.is_dir() => {
                return Err(InputError::whole(
                    &source_name,
                    "is a directory, not a file",
                ));
            }
            Ok(meta) if !meta.is_file() => return Input::spool(file, &source_name, options),
            _ => {}
        }
        Ok(Input::new(file, &source_name, options))
    }

    /// Copies `reader` (standard input) to an unnamed temporary file, so it
    /// can be read twice; `source_name` names it in errors.
    ///
    /// # Errors
    ///
    /// The temporary file cannot be made or written, or `reader` fails.
    pub fn spool(
        mut reader: impl Read,
        source_name: &str,
        options: &ReadOptions,
    ) -> Result<Input, InputError> {
        let spool_error = |e: io::Error| {
            InputError::whole(
                source_name,
                format!("cannot copy to a temporary file (set TMPDIR to a roomier place): {e}"),
            )
        };
        let mut file = tempfile::tempfile().map_err(spool_error)?;
        io::copy(&mut reader, &mut file).map_err(spool_error)?;
        Ok(Input::new(file, source_name, options))
    }

    fn new(file: File, source_name: &str, options: &ReadOptions) -> Input {
        Input {
            file,
            source_name: source_name.to_string(),
            options: options.clone(),
            checked: None,
            blocks: None,
        }
    }

    /// The checking pass: reads every record, hands each to `visit`, and
    /// keeps none. Repeated ids are found from one 64-bit hash per id, then
    /// confirmed in full by a second look at the suspects only.
    ///
    /// # Errors
    ///
    /// The first problem, as [`super::read_records`] describes; a repeated
    /// id only once the rest of the input is known good.
    pub fn check(&mut self, mut visit: impl FnMut(&Record)) -> Result<Checked, InputError> {
        let mut reader = BlockReader::noting(self.rewound()?);
        let (mut parser, mut checker) = self.parse(&mut reader, &self.options)?;
        let mut ids = parser.names_ids().then(IdHashes::default);
        while let Some(record) = next_record(&mut parser, &mut checker)? {
            if let Some(ids) = ids.as_mut() {
                ids.push(&record.id);
            }
            visit(&record);
        }
        drop(parser);
        self.blocks = Some(Arc::new(reader.into_noted()));
        if checker.count() == 0 {
            return Err(InputError::whole(&self.source_name, "no images in input"));
        }
        if let Some(ids) = ids {
            let suspects = ids.suspects();
            if !suspects.is_empty() {
                self.find_repeat(&suspects)?;
            }
        }
        let checked = Checked {
            records: checker.count(),
        };
        self.checked = Some(checked);
        Ok(checked)
    }

    /// A second look at the records whose id hash is a suspect: the first
    /// id used twice, if any (a hash collision is not one).
    fn find_repeat(&self, suspects: &HashSet<u64>) -> Result<(), InputError> {
        let (mut parser, mut checker) = self.pass(&self.options)?;
        let mut first_use: HashMap<String, Record> = HashMap::new();
        while let Some(record) = next_record(&mut parser, &mut checker)? {
            if !suspects.contains(&ids::hash(&record.id)) {
                continue;
            }
            if let Some(first) = first_use.get(&record.id) {
                return Err(super::collect::duplicate_error(
                    &self.source_name,
                    first,
                    &record,
                ));
            }
            first_use.insert(record.id.clone(), record);
        }
        Ok(())
    }

    /// The records, one at a time, from the start of the input. After
    /// [`Input::check`] the stream knows how many there are, and reads them
    /// only from bytes equal to those checked.
    ///
    /// # Errors
    ///
    /// The file cannot be read from its start, or its CSV header is bad.
    pub fn records(&self) -> Result<Records, InputError> {
        // A local image removed since the check is that job's failure when
        // it is read, not a changed input that stops every job after it.
        let stream_options = ReadOptions {
            check_files: false,
            ..self.options.clone()
        };
        let (parser, checker) = self.pass(&stream_options)?;
        Ok(Records {
            parser,
            checker,
            expected: self.checked.map(|c| c.records),
            error: None,
        })
    }

    /// A reader and a checker with `options`, from the start of the file;
    /// once the input is checked, the reader compares its bytes.
    fn pass(
        &self,
        options: &ReadOptions,
    ) -> Result<(Parser<BlockReader<File>>, Checker), InputError> {
        let file = self.rewound()?;
        let reader = match &self.blocks {
            Some(blocks) => BlockReader::comparing(file, Arc::clone(blocks)),
            None => BlockReader::noting(file),
        };
        self.parse(reader, options)
    }

    /// The file, from its start.
    fn rewound(&self) -> Result<File, InputError> {
        let rewind_error =
            |e: io::Error| InputError::whole(&self.source_name, format!("cannot read: {e}"));
        // The clone shares the file's offset; the passes never overlap.
        let mut file = self.file.try_clone().map_err(rewind_error)?;
        file.seek(SeekFrom::Start(0)).map_err(rewind_error)?;
        Ok(file)
    }

    /// A parser over `reader` and a checker with `options`.
    fn parse<R: BufRead>(
        &self,
        reader: R,
        options: &ReadOptions,
    ) -> Result<(Parser<R>, Checker), InputError> {
        let parser = Parser::new(reader, &self.source_name, self.options.format)?;
        Ok((parser, Checker::new(&self.source_name, options)))
    }
}

/// The records of an [`Input`], in input order. It stops at the first
/// problem (an input changed since it was checked) and keeps it for
/// [`Records::error`]; it never yields more records than were checked, nor
/// one read from bytes other than those checked (compared 64 KiB at a time,
/// before any record of them is handed out).
#[derive(Debug)]
pub struct Records {
    parser: Parser<BlockReader<File>>,
    checker: Checker,
    expected: Option<u64>,
    error: Option<InputError>,
}

impl Records {
    /// Why the stream stopped early, if it did.
    pub fn error(&self) -> Option<&InputError> {
        self.error.as_ref()
    }

    fn changed(&mut self, reason: String, line: Option<usize>) {
        let reason = blocks::as_change(reason);
        let name = self.checker.source_name();
        self.error = Some(match line {
            Some(line) => InputError::at(name, line, reason),
            None => InputError::whole(name, reason),
        });
    }
}

impl Iterator for Records {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        if self.error.is_some() {
            return None;
        }
        let all_read = self.expected == Some(self.checker.count());
        match next_record(&mut self.parser, &mut self.checker) {
            Ok(Some(record)) if !all_read => Some(record),
            Ok(Some(record)) => {
                self.changed("more records than before".into(), Some(record.line));
                None
            }
            Ok(None) if all_read || self.expected.is_none() => None,
            Ok(None) => {
                let reason = format!(
                    "{} records instead of {}",
                    self.checker.count(),
                    self.expected.unwrap_or_default()
                );
                self.changed(reason, None);
                None
            }
            Err(error) => {
                self.changed(error.reason, error.line);
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.expected {
            Some(expected) if self.error.is_none() => {
                let left = usize::try_from(expected - self.checker.count()).unwrap_or(usize::MAX);
                (left, Some(left))
            }
            Some(_) => (0, Some(0)),
            None => (0, None),
        }
    }
}

/// The next record of `parser`, checked; `Ok(None)` at the end.
pub(super) fn next_record<R: BufRead>(
    parser: &mut Parser<R>,
    checker: &mut Checker,
) -> Result<Option<Record>, InputError> {
    match parser.next()? {
        Some((line, fields)) => checker.record(line, fields).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Format;

    #[test]
    fn a_hash_suspect_that_is_not_a_repeat_passes() {
        let text = "id,url\na,https://x/1\nb,https://x/2\n";
        let options = ReadOptions::new(Format::Csv);
        let input = Input::spool(text.as_bytes(), "in", &options).unwrap();
        // As if "a" and "b" had collided: the full ids differ, so no error.
        let suspects = HashSet::from([ids::hash("a"), ids::hash("b")]);
        assert_eq!(input.find_repeat(&suspects), Ok(()));
    }
}

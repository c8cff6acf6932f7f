//! Batch input readers: CSV, JSON Lines and plain lists of images, checked
//! whole before anything is sent.
//!
//! [`Input`] checks an input of any size in one pass that keeps only counts
//! and id hashes, then streams its records in a second; [`read_records`]
//! holds them all, for small inputs.
//!
//! Every problem is an [`InputError`] whose message reads `FILE:LINE: reason`,
//! so a user can fix the input before one request is spent.
//!
//! | format | one record | image | `id` | `models` |
//! |---|---|---|---|---|
//! | [`Format::Csv`] | a data row after the header | `url` or `path` column | `id` column | `models` column, `;`-separated |
//! | [`Format::Jsonl`] | a non-blank line holding an object | `url` or `path` key | `id`: string or integer | `models`: array of strings |
//! | [`Format::Lines`] | a non-blank line not starting with `#` | the whole line | - | - |
//!
//! A record without an id is numbered: the first data record is `"1"`.
//!
//! # Examples
//!
//! ```
//! use restb::api::ImageSource;
//! use restb::input::{read_records, Format, ReadOptions};
//!
//! let input = "id,url,models\na1,https://example.com/1.jpg,re_logo;caption\n";
//! let options = ReadOptions::new(Format::Csv);
//! let records = read_records(input.as_bytes(), "<stdin>", &options).unwrap();
//! assert_eq!(records[0].id, "a1");
//! assert_eq!(records[0].image, ImageSource::Url("https://example.com/1.jpg".into()));
//! assert_eq!(records[0].models.as_deref(), Some(&["re_logo".to_string(), "caption".to_string()][..]));
//!
//! let err = read_records(&b"ftp://example.com/1.jpg\n"[..], "<stdin>", &ReadOptions::new(Format::Lines))
//!     .unwrap_err();
//! assert!(err.to_string().starts_with("<stdin>:1: unsupported URL scheme `ftp`"));
//! ```

mod blocks;
mod collect;
mod csv_format;
mod error;
mod format;
mod ids;
mod jsonl;
mod line_reader;
mod parser;
mod plain;
mod stream;
mod validate;

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::api::ImageSource;

pub use error::InputError;
pub use format::{Format, ParseFormatError};
pub use line_reader::MAX_LINE_BYTES;
pub use stream::{Checked, Input, Records};

use collect::{duplicate_error, first_duplicate, Checker};
use parser::Parser;

/// One image of the batch, as the input gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The record's `id`, or else the 1-based number of the data record
    /// (the CSV header and skipped lines do not count) as a string.
    pub id: String,
    /// The image: a URL the API fetches, or a local file to upload.
    pub image: ImageSource,
    /// The models this record asks for; `None` when it does not say, and the
    /// caller then uses `--models`.
    pub models: Option<Vec<String>>,
    /// The 1-based line of the input where this record starts.
    pub line: usize,
}

/// How to read an input.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadOptions {
    /// The input's format.
    pub format: Format,
    /// Accept model ids this tool does not know (`--allow-unknown-models`).
    pub allow_unknown_models: bool,
    /// Check that every local image path is an existing regular file.
    pub check_files: bool,
}

impl ReadOptions {
    /// Options for `format` that refuse unknown model ids and check local
    /// files exist.
    pub fn new(format: Format) -> ReadOptions {
        ReadOptions {
            format,
            allow_unknown_models: false,
            check_files: true,
        }
    }
}

/// Reads and checks every record of an input, and keeps them all; for an
/// input of any size, [`Input`] streams them instead.
///
/// `source_name` names the input in errors: its path, or `<stdin>`. The
/// input is read line by line; no line may exceed [`MAX_LINE_BYTES`].
///
/// # Errors
///
/// The first problem found, as an [`InputError`] at its line:
/// - bytes that are not UTF-8, or a line longer than 1 MiB;
/// - csv: no `url`/`path` column in the header, a row whose field count
///   differs from the header's, bad quoting, a row with neither or both of a
///   URL and a path;
/// - jsonl: a line that is not a JSON object, a field of the wrong type, an
///   object with neither or both of `url` and `path`;
/// - a URL that is not `http://` or `https://` with a host, or a scheme-less
///   text that looks like a web address and is not a file;
/// - a model id unknown to [`crate::models::is_known`], unless
///   [`ReadOptions::allow_unknown_models`];
/// - with [`ReadOptions::check_files`], a local path that is not an existing
///   regular file;
/// - two records with the same id (reported at the second, naming the first);
/// - an input with no records at all (`FILE: no images in input`);
/// - a read error.
pub fn read_records(
    reader: impl Read,
    source_name: &str,
    options: &ReadOptions,
) -> Result<Vec<Record>, InputError> {
    let mut parser = Parser::new(BufReader::new(reader), source_name, options.format)?;
    let mut checker = Checker::new(source_name, options);
    let mut records = Vec::new();
    while let Some(record) = stream::next_record(&mut parser, &mut checker)? {
        records.push(record);
    }
    if records.is_empty() {
        return Err(InputError::whole(source_name, "no images in input"));
    }
    if let Some((first, second)) = first_duplicate(&records) {
        return Err(duplicate_error(
            source_name,
            &records[first],
            &records[second],
        ));
    }
    Ok(records)
}

/// Opens the file at `path` and reads it with [`read_records`], naming it by
/// its path in errors. `-` is an ordinary file name here: the caller passes
/// standard input to [`read_records`] as `<stdin>`.
///
/// # Errors
///
/// A file that cannot be opened (`FILE: cannot open: ...`), or any error of
/// [`read_records`].
pub fn read_path(path: &Path, options: &ReadOptions) -> Result<Vec<Record>, InputError> {
    let source_name = path.display().to_string();
    let file = File::open(path)
        .map_err(|e| InputError::whole(&source_name, format!("cannot open: {e}")))?;
    read_records(file, &source_name, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(format: Format, input: &str) -> Result<Vec<Record>, InputError> {
        let options = ReadOptions {
            check_files: false,
            ..ReadOptions::new(format)
        };
        read_records(input.as_bytes(), "in", &options)
    }

    fn err(format: Format, input: &str) -> String {
        read(format, input).unwrap_err().to_string()
    }

    fn ids(records: &[Record]) -> Vec<&str> {
        records.iter().map(|r| r.id.as_str()).collect()
    }

    #[test]
    fn csv_reads_columns_by_trimmed_case_blind_names() {
        let input = "\u{feff} Models ,ID,Url,Path\n\
                     re_logo; caption ;,a,https://x/1.jpg,\n\
                     \n\
                     ,,,photos/2.jpg\n\
                     \"\",b,\"https://x/3.jpg?a=1,2\",\n";
        let records = read(Format::Csv, input).unwrap();
        assert_eq!(ids(&records), ["a", "2", "b"]);
        assert_eq!(
            records[0].models,
            Some(vec!["re_logo".into(), "caption".into()])
        );
        assert_eq!(records[1].image, ImageSource::File("photos/2.jpg".into()));
        assert_eq!(records[1].models, None);
        assert_eq!(
            records[2].image,
            ImageSource::Url("https://x/3.jpg?a=1,2".into())
        );
        let lines: Vec<usize> = records.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 4, 5]);
    }

    #[test]
    fn csv_multiline_record_starts_on_its_first_line() {
        let input = "id,path\n\"a\nb\",1.jpg\nc,2.jpg\n";
        let records = read(Format::Csv, input).unwrap();
        assert_eq!(ids(&records), ["a\nb", "c"]);
        assert_eq!(records[1].line, 4);
    }

    #[test]
    fn csv_lines_count_crlf_and_skipped_blank_lines() {
        let input = "\r\n\nid,url\r\n1,https://x/1\r\n\r\n  \r\n2,https://x/2";
        assert_eq!(
            err(Format::Csv, input),
            "in:6: row has 1 field, but the header has 2"
        );
        let input = "\r\n\nid,url\r\n1,https://x/1\r\n\r\n2,https://x/2";
        let records = read(Format::Csv, input).unwrap();
        assert_eq!(records.iter().map(|r| r.line).collect::<Vec<_>>(), [4, 6]);
        assert_eq!(
            err(Format::Csv, "\n\nname\n"),
            "in:3: the header has no `url` or `path` column (found: \"name\")"
        );
    }

    #[test]
    fn csv_errors_name_their_line() {
        let cases = [
            (
                "name,image\nx,y\n",
                "in:1: the header has no `url` or `path` column (found: \"name\", \"image\")",
            ),
            ("url,url\n", "in:1: column `url` appears twice in the header"),
            ("url,id\nhttps://x/1,a\nhttps://x/2\n", "in:3: row has 1 field, but the header has 2"),
            ("url,path\nhttps://x/1,\n,\n", "in:3: no image: the `url` and `path` cells are both empty"),
            ("url,path\nhttps://x/1,a.jpg\n", "in:2: both `url` and `path` are filled in: fill one"),
            ("url\nhttps://x/1\n\"https://x/2\n", "in:3: quoted field is never closed"),
            ("url\nhttps://x/\"1\"\n", "in:2: quote inside an unquoted field (quote the whole field and double the quotes in it)"),
            ("url\nphotos/1.jpg\n", "in:2: `url` value `photos/1.jpg` is not a URL: a URL needs http:// or https:// (put local files in a `path` field)"),
            ("url\n", "in: no images in input"),
            ("", "in: no images in input"),
        ];
        for (input, want) in cases {
            assert_eq!(err(Format::Csv, input), want, "{input:?}");
        }
    }

    #[test]
    fn jsonl_reads_objects() {
        let input = "{\"url\":\"https://x/1.jpg\",\"id\":7,\"extra\":true}\n\
                     \n\
                     {\"path\":\"a.jpg\",\"models\":[\"re_logo\",\" \"],\"id\":null}\r\n\
                     {\"url\":\"https://x/3.jpg\",\"id\":\"x\",\"models\":[]}";
        let records = read(Format::Jsonl, input).unwrap();
        assert_eq!(ids(&records), ["7", "2", "x"]);
        assert_eq!(records[1].models, Some(vec!["re_logo".into()]));
        assert_eq!(records[1].line, 3);
        assert_eq!(records[2].models, None);
    }

    #[test]
    fn jsonl_errors_name_their_line() {
        let ok = "{\"url\":\"https://x/1.jpg\"}\n";
        let cases = [
            ("{\"url\":", "in:2: invalid JSON: EOF while parsing a value (column 7)"),
            ("[1]", "in:2: bad record: expected a JSON object, found an array"),
            ("hello", "in:2: invalid JSON: expected value (column 1)"),
            ("{\"url\":5}", "in:2: bad record: invalid type: integer `5`, expected a string (column 8)"),
            ("{\"url\":\"https://x/2\",\"id\":1.5}", "in:2: bad record: invalid type: floating point `1.5`, expected a string or an integer (column 29)"),
            ("{\"url\":\"https://x/2\",\"models\":\"re_logo\"}", "in:2: bad record: invalid type: string \"re_logo\", expected a sequence (column 39)"),
            ("{}", "in:2: no image: give a non-empty `url` or `path`"),
            ("{\"url\":\"https://x/2\",\"path\":\"a.jpg\"}", "in:2: both `url` and `path` are given: give one"),
            ("{\"url\":\"https://x/2\",\"id\":\" \"}", "in:2: empty `id`: leave it out to number the record"),
            ("{\"url\":\"https://x/2\",\"id\":\"1\"}", "in:2: duplicate id \"1\": already used on line 1"),
        ];
        for (line, want) in cases {
            assert_eq!(err(Format::Jsonl, &format!("{ok}{line}\n")), want, "{line}");
        }
    }

    #[test]
    fn lines_skip_blanks_and_comments() {
        let input = "# images\n  https://x/1.jpg  \n\n   # not this\nphotos/2.jpg\n";
        let records = read(Format::Lines, input).unwrap();
        assert_eq!(ids(&records), ["1", "2"]);
        assert_eq!(records[0].image, ImageSource::Url("https://x/1.jpg".into()));
        assert_eq!(records[1].line, 5);
        assert_eq!(err(Format::Lines, "# only\n\n"), "in: no images in input");
    }

    #[test]
    fn checks_shared_by_all_formats() {
        assert_eq!(
            err(Format::Lines, "https://x/1\nhttps://\n"),
            "in:2: URL has no host: `https://`"
        );
        assert_eq!(
            err(Format::Csv, "id,url\n2,https://x/1\n,https://x/2\n"),
            "in:3: duplicate id \"2\": already used on line 2"
        );
        assert_eq!(
            err(Format::Csv, "url,models\nhttps://x/1,re_logoo\n"),
            "in:2: unknown model id `re_logoo` (use --allow-unknown-models to send it anyway)"
        );
        let options = ReadOptions {
            allow_unknown_models: true,
            check_files: false,
            format: Format::Csv,
        };
        let input = &b"url,models\nhttps://x/1,re_new\n"[..];
        assert!(read_records(input, "in", &options).is_ok());
    }
}

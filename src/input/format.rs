//! Which of the three input formats a file is in.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// The format of a batch input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// Comma-separated values with a header row: a `url` or `path` column,
    /// optional `id` and `models` (`;`-separated) columns.
    Csv,
    /// One JSON object per line: `url` or `path`, optional `id` and `models`.
    Jsonl,
    /// One image URL or local path per line; blank and `#` lines skipped.
    Lines,
}

impl Format {
    /// The format a file name implies: `.csv` is [`Format::Csv`], `.jsonl` and
    /// `.ndjson` are [`Format::Jsonl`], anything else is [`Format::Lines`].
    /// The extension is compared case-insensitively.
    ///
    /// # Examples
    ///
    /// ```
    /// use restb::input::Format;
    /// use std::path::Path;
    ///
    /// assert_eq!(Format::from_path(Path::new("photos.CSV")), Format::Csv);
    /// assert_eq!(Format::from_path(Path::new("batch.ndjson")), Format::Jsonl);
    /// assert_eq!(Format::from_path(Path::new("urls.txt")), Format::Lines);
    /// ```
    pub fn from_path(path: &Path) -> Format {
        let ext = path
            .extension()
            .and_then(|ext| ext.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("csv") => Format::Csv,
            Some("jsonl") | Some("ndjson") => Format::Jsonl,
            _ => Format::Lines,
        }
    }

    /// The name used on the command line: `csv`, `jsonl` or `lines`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Lines => "lines",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing a [`Format`] from a name that is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParseFormatError {
    /// The text that was given.
    pub given: String,
}

impl fmt::Display for ParseFormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown input format `{}`: expected csv, jsonl, ndjson or lines",
            self.given
        )
    }
}

impl std::error::Error for ParseFormatError {}

impl FromStr for Format {
    type Err = ParseFormatError;

    /// Parses `csv`, `jsonl`, `ndjson` (the same as `jsonl`) or `lines`,
    /// ignoring ASCII case.
    ///
    /// # Errors
    ///
    /// [`ParseFormatError`] for any other text; its message lists the valid names.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "jsonl" | "ndjson" => Ok(Format::Jsonl),
            "lines" => Ok(Format::Lines),
            _ => Err(ParseFormatError {
                given: text.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_pick_the_format() {
        let cases = [
            ("a.csv", Format::Csv),
            ("dir/a.Csv", Format::Csv),
            ("a.jsonl", Format::Jsonl),
            ("a.NDJSON", Format::Jsonl),
            ("a.json", Format::Lines),
            ("a.txt", Format::Lines),
            ("csv", Format::Lines),
            ("-", Format::Lines),
        ];
        for (path, format) in cases {
            assert_eq!(Format::from_path(Path::new(path)), format, "{path}");
        }
    }

    #[test]
    fn names_parse_and_round_trip() {
        assert_eq!("ndjson".parse(), Ok(Format::Jsonl));
        assert_eq!("CSV".parse(), Ok(Format::Csv));
        for format in [Format::Csv, Format::Jsonl, Format::Lines] {
            assert_eq!(format.to_string().parse(), Ok(format));
        }
        let err = "json".parse::<Format>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown input format `json`: expected csv, jsonl, ndjson or lines"
        );
    }
}

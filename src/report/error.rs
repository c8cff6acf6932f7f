//! The errors of reading an outcome file and writing a report.

use std::io;
use std::path::PathBuf;

/// Why an outcome file could not be read, or a report not written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
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
    /// Writing the CSV failed.
    #[error("cannot write the CSV: {0}")]
    Csv(#[from] csv::Error),
    /// Writing the report failed.
    #[error("cannot write the report: {0}")]
    Write(#[from] io::Error),
}

//! The errors of reading an outcome file and writing a report.

use crate::outcome::ReadError;
use std::io;

/// Why an outcome file could not be read, or a report not written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The outcome file could not be opened or read, or a line of it is not
    /// an outcome line.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Writing the CSV failed.
    #[error("cannot write the CSV: {0}")]
    Csv(#[from] csv::Error),
    /// Writing the report failed.
    #[error("cannot write the report: {0}")]
    Write(#[from] io::Error),
}

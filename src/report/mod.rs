//! Reports of an outcome file: a [`Summary`] built one line at a time in
//! bounded memory (counts, latency, readings per model, failures by reason),
//! a per-image-and-model [`results_table`], and a CSV for spreadsheets
//! ([`write_csv`]). `restb report` and `restb demo` are built on it; the
//! lines come from the outcome file's one reader,
//! [`read_outcomes`](crate::outcome::read_outcomes).
//!
//! # Examples
//!
//! Summarise an outcome file and write it as CSV in one pass:
//!
//! ```no_run
//! use restb::outcome::read_outcomes;
//! use restb::report::{CsvWriter, Summary};
//! use std::fs::File;
//!
//! let mut summary = Summary::new();
//! let mut csv = CsvWriter::new(File::create("outcomes.csv")?)?;
//! for line in read_outcomes("outcomes.jsonl".as_ref())? {
//!     let line = line?; // a bad line: "outcomes.jsonl:12: not an outcome line: ..."
//!     summary.add(&line);
//!     csv.write(&line)?;
//! }
//! csv.finish()?;
//! print!("{}", summary.render_text());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod capped;
mod csv_out;
mod error;
mod reading;
mod results;
mod summary;

pub use capped::CappedCounts;
pub use csv_out::{write_csv, CsvWriter, CSV_HEADER};
pub use error::ReportError;
pub use reading::{describe, labels, render, top_prediction};
pub use results::{results_rows, results_table, RESULTS_HEADER};
pub use summary::{FailureReason, ModelSummary, Summary, DEFAULT_CAP, OTHER_MODELS};

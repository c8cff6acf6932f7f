//! Reports of an outcome file: a [`Summary`] built one line at a time in
//! bounded memory (counts, latency, readings per model, failures by reason),
//! a per-image-and-model [`results_table`], and a CSV for spreadsheets
//! ([`write_csv`]). `restb report` and `restb demo` are built on it; the
//! lines come from the outcome file's one reader,
//! [`read_outcomes`](crate::outcome::read_outcomes).
//!
//! # Examples
//!
//! Summarise an outcome file, then write it as CSV in a second pass that
//! leaves out the failures a later line (`--retry-failed`) redid, as the
//! summary counts them:
//!
//! ```no_run
//! use restb::outcome::read_outcomes;
//! use restb::report::{CsvWriter, RedoneFailures, Summary};
//! use std::fs::File;
//! use std::path::Path;
//!
//! let path = Path::new("outcomes.jsonl");
//! let mut summary = Summary::new();
//! let mut redone = RedoneFailures::new();
//! for line in read_outcomes(path)? {
//!     let line = line?; // a bad line: "outcomes.jsonl:12: not an outcome line: ..."
//!     summary.add(&line);
//!     redone.add(&line);
//! }
//! let mut csv = CsvWriter::new(File::create("outcomes.csv")?)?;
//! for (position, line) in (0..).zip(read_outcomes(path)?) {
//!     let line = line?;
//!     if !redone.is_redone(position, &line) {
//!         csv.write(&line)?;
//!     }
//! }
//! csv.finish()?;
//! print!("{}", summary.render_text());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod capped;
mod csv_out;
mod error;
mod reading;
mod redone;
mod results;
mod summary;

pub use capped::CappedCounts;
pub use csv_out::{write_csv, CsvWriter, CSV_HEADER};
pub use error::ReportError;
pub use reading::{describe, labels, render, top_prediction};
pub use redone::RedoneFailures;
pub use results::{results_rows, results_table, RESULTS_HEADER};
pub use summary::{FailureReason, ModelSummary, Summary, DEFAULT_CAP, OTHER_MODELS};

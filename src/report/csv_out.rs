//! The outcome file as CSV: one row per job and model, for a spreadsheet.

use super::error::ReportError;
use super::reading::{describe, top_prediction};
use super::results::{failure_reason, row_models};
use crate::outcome::OutcomeLine;
use std::borrow::Borrow;
use std::io::Write;

/// The CSV header row.
pub const CSV_HEADER: [&str; 12] = [
    "id",
    "image",
    "model",
    "status",
    "http_status",
    "attempts",
    "rate_limited",
    "latency_ms",
    "reading",
    "top_label",
    "confidence",
    "error",
];

/// Writes outcome lines as CSV rows under [`CSV_HEADER`], one per (job,
/// model). The job's columns (`http_status`, `attempts`, `rate_limited`,
/// `latency_ms`, `error`) repeat on each of its models' rows; `reading` is
/// the short reading of [`describe`] (empty for a failed job), `top_label`
/// and `confidence` are filled when the solution has a `top_prediction`.
/// Absent values are empty cells. It writes every line it is given: to list
/// a job redone by a later line once, skip what [`RedoneFailures`] names.
///
/// [`RedoneFailures`]: super::RedoneFailures
#[derive(Debug)]
pub struct CsvWriter<W: Write> {
    inner: csv::Writer<W>,
    rows: u64,
}

impl<W: Write> CsvWriter<W> {
    /// A writer to `out`; writes the header row.
    ///
    /// # Errors
    /// [`ReportError::Csv`] when the header cannot be written.
    pub fn new(out: W) -> Result<CsvWriter<W>, ReportError> {
        let mut inner = csv::Writer::from_writer(out);
        inner.write_record(CSV_HEADER)?;
        Ok(CsvWriter { inner, rows: 0 })
    }

    /// Writes the rows of one line.
    ///
    /// # Errors
    /// [`ReportError::Csv`] when a row cannot be written.
    pub fn write(&mut self, line: &OutcomeLine) -> Result<(), ReportError> {
        let optional = |value: Option<String>| value.unwrap_or_default();
        let http_status = optional(line.http_status.map(|s| s.to_string()));
        let attempts = line.attempts.to_string();
        let rate_limited = line.rate_limited.to_string();
        let latency = optional(line.latency_ms.map(|ms| ms.to_string()));
        let error = if line.is_ok() {
            line.error.clone().unwrap_or_default()
        } else {
            failure_reason(line)
        };
        for model in row_models(line) {
            let solution = line
                .solutions
                .as_ref()
                .filter(|_| line.is_ok())
                .and_then(|solutions| solutions.get(model));
            let reading = match solution {
                Some(solution) => describe(solution),
                None if line.is_ok() => "(no answer)".to_string(),
                None => String::new(),
            };
            let (top_label, confidence) = match solution.and_then(top_prediction) {
                Some((label, confidence)) => (label, optional(confidence.map(|c| c.to_string()))),
                None => (String::new(), String::new()),
            };
            self.inner.write_record([
                line.id.as_str(),
                &line.image,
                model,
                line.status.as_str(),
                &http_status,
                &attempts,
                &rate_limited,
                &latency,
                &reading,
                &top_label,
                &confidence,
                &error,
            ])?;
            self.rows += 1;
        }
        Ok(())
    }

    /// Rows written so far, the header not counted.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Flushes and returns the underlying writer.
    ///
    /// # Errors
    /// [`ReportError::Write`] when the flush fails.
    pub fn finish(self) -> Result<W, ReportError> {
        self.inner
            .into_inner()
            .map_err(|error| ReportError::Write(error.into_error()))
    }
}

/// Writes `lines` as CSV to `out` (see [`CsvWriter`] for the columns) and
/// returns the number of rows written, the header not counted.
///
/// # Errors
/// [`ReportError::Csv`] or [`ReportError::Write`] when writing fails.
///
/// # Examples
///
/// ```
/// use restb::outcome::OutcomeLine;
/// use restb::report::write_csv;
///
/// let line: OutcomeLine = serde_json::from_str(
///     r#"{"id":"1","image":"1.jpg","models":["re_roomtype_global_v2"],"status":"ok","http_status":200,
///         "attempts":1,"rate_limited":0,"latency_ms":812.5,"solutions":{"re_roomtype_global_v2":
///         {"top_prediction":{"label":"kitchen","confidence":0.97}}}}"#,
/// )?;
/// let mut out = Vec::new();
/// assert_eq!(write_csv([line], &mut out)?, 1);
/// let text = String::from_utf8(out)?;
/// assert_eq!(text.lines().nth(1), Some("1,1.jpg,re_roomtype_global_v2,ok,200,1,0,812.5,kitchen (0.97),kitchen,0.97,"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_csv<I, W>(lines: I, out: W) -> Result<u64, ReportError>
where
    I: IntoIterator,
    I::Item: Borrow<OutcomeLine>,
    W: Write,
{
    let mut writer = CsvWriter::new(out)?;
    for line in lines {
        writer.write(line.borrow())?;
    }
    let rows = writer.rows();
    writer.finish()?;
    Ok(rows)
}

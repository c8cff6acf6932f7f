//! `restb report`: summarise an outcome file, optionally as CSV.

use super::{Exit, UsageError};
use clap::Args;
use restb::outcome::{read_outcomes, Outcomes, ReadError};
use restb::report::{CsvWriter, RedoneFailures, ReportError, Summary};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const REPORT_EXAMPLES: &str = "Examples:
  restb report outcomes.jsonl                       # totals, readings per model, failures by reason
  restb report outcomes.jsonl --csv outcomes.csv    # the same, and one CSV row per image and model
  restb report outcomes.jsonl --csv - > out.csv     # only the CSV, on standard output";

/// `restb report`.
#[derive(Debug, Args)]
#[command(after_help = REPORT_EXAMPLES)]
pub struct ReportArgs {
    /// The JSONL outcome file of `restb run -o` (`-`: standard input).
    #[arg(value_name = "OUTCOMES.jsonl")]
    pub outcomes: PathBuf,
    /// Also write one CSV row per job and model to FILE (`-`: the CSV on standard output, instead of the text report).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
}

/// Where the CSV goes.
enum CsvTarget {
    /// Standard output, instead of the text report.
    Stdout,
    /// A file (`path`, as given): a regular one is written under a
    /// temporary name (`write_to`) and renamed over the real one
    /// (`rename_to`) when complete; a pipe or device is written directly.
    File {
        path: PathBuf,
        write_to: PathBuf,
        rename_to: Option<PathBuf>,
    },
}

impl CsvTarget {
    /// The target for `--csv path`. A link is written through to what it
    /// points at (not replaced); neither the file nor its temporary name
    /// may be the outcome file.
    fn file(outcomes: &Path, path: &Path) -> Result<CsvTarget, UsageError> {
        let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        refuse_same_file(outcomes, &real, path)?;
        if std::fs::metadata(&real).is_ok_and(|m| !m.is_file()) {
            // A FIFO or a device: renaming a file over it would replace it.
            return Ok(CsvTarget::File {
                path: path.to_path_buf(),
                write_to: real,
                rename_to: None,
            });
        }
        let mut partial = real.clone().into_os_string();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        refuse_same_file(outcomes, &partial, path)?;
        Ok(CsvTarget::File {
            path: path.to_path_buf(),
            write_to: partial,
            rename_to: Some(real),
        })
    }
}

pub(super) fn report(args: &ReportArgs) -> Result<Exit, UsageError> {
    let target = match &args.csv {
        None => None,
        Some(path) if path.as_os_str() == "-" => Some(CsvTarget::Stdout),
        Some(path) => Some(CsvTarget::file(&args.outcomes, path)?),
    };
    let result = summarise_and_write(&args.outcomes, target.as_ref());
    if let Some(CsvTarget::File {
        path,
        write_to,
        rename_to: Some(real),
    }) = &target
    {
        let renamed = match result {
            Err(_) => Ok(()),
            Ok(_) => std::fs::rename(write_to, real),
        };
        // Nothing is left under the temporary name, whatever happened.
        let _ = std::fs::remove_file(write_to);
        crate::signals::keep_on_quit(write_to);
        renamed.map_err(|e| {
            UsageError(format!(
                "--csv {}: cannot rename {} to it: {e}",
                path.display(),
                write_to.display()
            ))
        })?;
    }
    let summary = match result {
        Ok(summary) => summary,
        // The reader of standard output went away (`| head`): nothing more to say.
        Err(Stopped::OutputClosed) => return Ok(Exit::Success),
        Err(Stopped::Usage(error)) => return Err(error),
    };
    if !matches!(target, Some(CsvTarget::Stdout)) {
        let mut stdout = io::stdout().lock();
        let written = stdout
            .write_all(summary.render_text().as_bytes())
            .and_then(|()| stdout.flush());
        if let Err(error) = written {
            if error.kind() != io::ErrorKind::BrokenPipe {
                return Err(UsageError(format!(
                    "cannot write to standard output: {error}"
                )));
            }
        }
    }
    Ok(Exit::Success)
}

/// Why [`summarise`] stopped early.
enum Stopped {
    /// A bad line, or a CSV that cannot be written.
    Usage(UsageError),
    /// Standard output, where the CSV goes, was closed by its reader.
    OutputClosed,
}

impl From<UsageError> for Stopped {
    fn from(error: UsageError) -> Stopped {
        Stopped::Usage(error)
    }
}

/// The summary of the outcome file and, with a target, its CSV. The file is
/// read twice, so that no line is held: a first pass for the summary and the
/// failures that later lines redid, a second for the CSV rows, which leave
/// those failures out as the summary does.
fn summarise_and_write(outcomes: &Path, target: Option<&CsvTarget>) -> Result<Summary, Stopped> {
    let stdin = outcomes.as_os_str() == "-";
    let Some(target) = target else {
        return Ok(if stdin {
            summarise(&mut Outcomes::new(io::stdin().lock(), "<stdin>"), None)?
        } else {
            summarise(&mut read_outcomes(outcomes).map_err(usage)?, None)?
        });
    };
    let (mut first, name) = if stdin {
        let file = spool_stdin()?;
        (
            Outcomes::new(BufReader::new(file), "<stdin>"),
            "<stdin>".into(),
        )
    } else {
        let first = read_outcomes(outcomes).map_err(usage)?;
        (first, outcomes.display().to_string())
    };
    let mut redone = RedoneFailures::new();
    let summary = summarise(&mut first, Some(&mut redone))?;
    // Only what the first pass read: not a torn line, nor lines a run appended since.
    let read = first.good_len();
    let mut file = first.into_inner().into_inner();
    file.seek(SeekFrom::Start(0))
        .map_err(|e| UsageError(format!("{name}: cannot read it again: {e}")))?;
    let second = Outcomes::new(BufReader::new(file.take(read)), name);
    write_rows(second, &redone, target)?;
    Ok(summary)
}

/// Copies standard input to an unnamed temporary file, to read it twice.
fn spool_stdin() -> Result<File, UsageError> {
    let spool_error = |e: io::Error| {
        UsageError(format!(
            "<stdin>: cannot copy to a temporary file (set TMPDIR to a roomier place): {e}"
        ))
    };
    let mut file = tempfile::tempfile().map_err(spool_error)?;
    io::copy(&mut io::stdin().lock(), &mut file).map_err(spool_error)?;
    file.seek(SeekFrom::Start(0)).map_err(spool_error)?;
    Ok(file)
}

/// Reads every line into a summary, and into `redone` if given.
fn summarise<R: io::BufRead>(
    outcomes: &mut Outcomes<R>,
    mut redone: Option<&mut RedoneFailures>,
) -> Result<Summary, UsageError> {
    let mut summary = Summary::new();
    for line in outcomes {
        let line = line.map_err(usage)?;
        summary.add(&line);
        if let Some(redone) = redone.as_deref_mut() {
            redone.add(&line);
        }
    }
    Ok(summary)
}

/// Writes the CSV rows of every line but the failures a later line redid.
fn write_rows<R: io::BufRead>(
    outcomes: Outcomes<R>,
    redone: &RedoneFailures,
    target: &CsvTarget,
) -> Result<(), Stopped> {
    let mut csv = CsvWriter::new(open_csv(target)?).map_err(|e| csv_error(target, e))?;
    for (position, line) in (0..).zip(outcomes) {
        let line = line.map_err(usage)?;
        if !redone.is_redone(position, &line) {
            csv.write(&line).map_err(|e| csv_error(target, e))?;
        }
    }
    csv.finish().map_err(|e| csv_error(target, e))?;
    Ok(())
}

/// The writer of the CSV: standard output, or the file's temporary name.
fn open_csv(target: &CsvTarget) -> Result<Box<dyn Write>, UsageError> {
    Ok(match target {
        CsvTarget::Stdout => Box::new(BufWriter::new(io::stdout().lock())),
        CsvTarget::File {
            path,
            write_to,
            rename_to,
        } => {
            if rename_to.is_some() {
                crate::signals::remove_on_quit(write_to);
            }
            let file = File::create(write_to).map_err(|e| {
                UsageError(format!("--csv {}: cannot create it: {e}", path.display()))
            })?;
            Box::new(BufWriter::new(file))
        }
    })
}

/// Refuses a CSV file (`written`, for `--csv given`) that is the outcome
/// file itself (creating it would empty it).
fn refuse_same_file(outcomes: &Path, written: &Path, given: &Path) -> Result<(), UsageError> {
    if super::run_files::same_file(outcomes, written) {
        return Err(UsageError(format!(
            "--csv {}: it would write over the outcome file {}; name another file",
            given.display(),
            outcomes.display()
        )));
    }
    Ok(())
}

fn usage(error: ReadError) -> UsageError {
    UsageError(error.to_string())
}

fn csv_error(target: &CsvTarget, error: ReportError) -> Stopped {
    let io_kind = match &error {
        ReportError::Write(error) => Some(error.kind()),
        ReportError::Csv(error) => match error.kind() {
            csv::ErrorKind::Io(error) => Some(error.kind()),
            _ => None,
        },
        _ => None,
    };
    match target {
        CsvTarget::Stdout if io_kind == Some(io::ErrorKind::BrokenPipe) => Stopped::OutputClosed,
        CsvTarget::Stdout => Stopped::Usage(UsageError(format!("--csv -: {error}"))),
        CsvTarget::File { path, .. } => {
            Stopped::Usage(UsageError(format!("--csv {}: {error}", path.display())))
        }
    }
}

//! The files `restb run` writes, settled before anything is written: `-`
//! means standard output (as it means standard input for the input), and
//! the outcome file and `--stats-json` are neither the input nor each other
//! (a run would overwrite what it reads, or its outcomes with its stats);
//! nor are `bench --json` and `--svg` one file (the chart would replace the
//! figures).
//! A file the CLI replaces (`--stats-json`, `bench --json`/`--svg`) is opened
//! before the work, so a bad path costs nothing, and emptied only when its
//! new content comes, so a failure before then leaves the old content.

use super::args::RunArgs;
use super::UsageError;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The name of a standard stream in place of a file.
const STANDARD_STREAM: &str = "-";
/// Standard output as a file, for telling whether `--output` is it.
const STANDARD_OUTPUT: &str = "/dev/fd/1";

fn is_standard_stream(path: &Path) -> bool {
    path == Path::new(STANDARD_STREAM)
}

/// `-o -` is the default, standard output; `--stats-json -` is standard
/// output too, where nothing else is written to it.
pub(super) fn standard_streams(args: &mut RunArgs) -> Result<(), UsageError> {
    if args.output.as_deref().is_some_and(is_standard_stream) {
        if args.resume {
            return Err(UsageError(
                "--resume: needs --output FILE (standard output cannot be read back)".into(),
            ));
        }
        args.output = None;
    }
    let stats_to_stdout = args.stats_json.as_deref().is_some_and(is_standard_stream);
    // `-o /dev/stdout` is standard output by another name.
    let outcomes_to_stdout = args
        .output
        .as_deref()
        .is_none_or(|output| same_file(output, Path::new(STANDARD_OUTPUT)));
    if stats_to_stdout && (outcomes_to_stdout || args.dry_run) {
        let what = if args.dry_run {
            "the dry run's estimate"
        } else if args.output.is_some() {
            "the outcomes (--output is standard output too)"
        } else {
            "the outcomes (give --output FILE)"
        };
        return Err(UsageError(format!(
            "--stats-json -: standard output already carries {what}; or give --stats-json a file"
        )));
    }
    Ok(())
}

/// The input, `--output` and `--stats-json` are three different files.
pub(super) fn check_distinct(args: &RunArgs) -> Result<(), UsageError> {
    let mut files: Vec<(&str, &Path)> = Vec::new();
    if !is_standard_stream(&args.input) {
        files.push(("the input", &args.input));
    }
    if let Some(output) = &args.output {
        files.push(("--output", output));
    }
    if let Some(stats) = args
        .stats_json
        .as_deref()
        .filter(|p| !is_standard_stream(p))
    {
        files.push(("--stats-json", stats));
    }
    refuse_one_file_twice(&files, "the run")
}

/// Refuses two of `files` (each named as the user gave it: a flag, "the
/// input") that are one file (see [`same_file`]): `writer` would overwrite
/// one with the other.
pub(super) fn refuse_one_file_twice(
    files: &[(&str, &Path)],
    writer: &str,
) -> Result<(), UsageError> {
    for (i, (first, first_path)) in files.iter().enumerate() {
        for (second, second_path) in &files[i + 1..] {
            if same_file(first_path, second_path) {
                return Err(UsageError(format!(
                    "{second} is {first} ({}): {writer} would overwrite it; give another file",
                    second_path.display()
                )));
            }
        }
    }
    Ok(())
}

/// Whether two paths name one file: by device and inode where both exist
/// (links included), else by their absolute form.
pub(super) fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    if let (Ok(a), Ok(b)) = (std::fs::metadata(a), std::fs::metadata(b)) {
        use std::os::unix::fs::MetadataExt;
        return a.dev() == b.dev() && a.ino() == b.ino();
    }
    resolved(a).is_some_and(|a| Some(a) == resolved(b))
}

/// `path` made absolute through its parent directory, which must exist
/// (the file itself need not yet).
fn resolved(path: &Path) -> Option<PathBuf> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    Some(parent.canonicalize().ok()?.join(path.file_name()?))
}

/// Where `--stats-json` goes: a file, opened before the run so a bad path
/// sends nothing, or standard output.
pub(super) struct StatsOut<'a> {
    /// `None`: standard output.
    file: Option<File>,
    path: &'a Path,
}

impl StatsOut<'_> {
    /// Writes `stats` as pretty JSON.
    pub(super) fn write(self, stats: &impl Serialize) -> Result<(), UsageError> {
        let written = match self.file {
            Some(file) => {
                let mut out = io::BufWriter::new(file);
                serde_json::to_writer_pretty(&mut out, stats)
                    .map_err(io::Error::from)
                    .and_then(|()| writeln!(out))
                    .and_then(|()| out.flush())
            }
            None => {
                let mut out = io::stdout().lock();
                serde_json::to_writer_pretty(&mut out, stats)
                    .map_err(io::Error::from)
                    .and_then(|()| writeln!(out))
                    .and_then(|()| out.flush())
            }
        };
        written.map_err(|e| {
            UsageError(format!(
                "--stats-json: cannot write {}: {e}",
                self.path.display()
            ))
        })
    }
}

/// `--stats-json`, opened (a file) before the run so a bad path sends
/// nothing, but not emptied: a check after it that fails (a refused
/// `--resume`) leaves the stats of the run before as they were.
/// [`empty_stats_file`] empties it once every check has passed.
pub(super) fn create_stats_file(args: &RunArgs) -> Result<Option<StatsOut<'_>>, UsageError> {
    let Some(path) = &args.stats_json else {
        return Ok(None);
    };
    if is_standard_stream(path) {
        return Ok(Some(StatsOut { file: None, path }));
    }
    let file = open_kept(path).map_err(|e| {
        UsageError(format!(
            "--stats-json: cannot create {}: {e}",
            path.display()
        ))
    })?;
    Ok(Some(StatsOut {
        file: Some(file),
        path,
    }))
}

/// Empties the `--stats-json` file of [`create_stats_file`], after the
/// last check: the run's figures replace the previous ones.
pub(super) fn empty_stats_file(stats: &Option<StatsOut<'_>>) -> Result<(), UsageError> {
    match stats {
        Some(StatsOut {
            file: Some(file),
            path,
        }) => empty_for_writing(file).map_err(|e| {
            UsageError(format!(
                "--stats-json: cannot empty {}: {e}",
                path.display()
            ))
        }),
        _ => Ok(()),
    }
}

/// Opens (or creates) `path` for writing, keeping what it holds (see the
/// module docs).
pub(super) fn open_kept(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// Empties a file of [`open_kept`] for its new content. Only a regular file:
/// `/dev/stdout` (a pipe, a terminal) or a device cannot be emptied, nor
/// need be.
pub(super) fn empty_for_writing(file: &File) -> io::Result<()> {
    if file.metadata()?.is_file() {
        file.set_len(0)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_and_a_file_not_yet_made_are_told_apart_or_matched() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.txt");
        std::fs::write(&input, "x\n").unwrap();
        let link = dir.path().join("link.txt");
        std::fs::hard_link(&input, &link).unwrap();
        assert!(same_file(&input, &link), "a hard link is the same file");
        let new = dir.path().join("new.jsonl");
        let other = dir.path().join("other.jsonl");
        let roundabout = dir.path().join("sub/../new.jsonl");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        assert!(same_file(&new, &roundabout), "neither exists yet");
        assert!(!same_file(&new, &other));
        assert!(!same_file(&input, &new));
    }
}

//! The `restb` command line: arguments, and one module per subcommand.
//!
//! `main.rs` only parses, installs the signal handler and maps [`Exit`] to a
//! process status; everything else is here so tests can call it.

mod args;
mod batch;
mod bench;
#[cfg(feature = "redis")]
mod bench_shared;
mod budget;
mod completions;
mod demo;
mod dry_run;
mod plan;
mod progress;
mod report;
mod run;
mod run_files;
mod serve;
#[cfg(feature = "redis")]
mod shared;
mod stdout;
mod table;

pub use args::{Cli, Command};

use restb::pool::Ending;
use restb::stop::Stop;
use std::fmt;

/// How a command ended, as the process exit status of DESIGN.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every job ok.
    Success,
    /// A job failed, or the API refused the key.
    Failure,
    /// Bad usage, input or configuration.
    Usage,
    /// The run stopped itself before every job finished, resumably: the
    /// `--max-requests` or `--shared-budget` budget was spent, or the gateway
    /// held every request longer than `--max-pause`.
    Resumable,
    /// Interrupted by SIGINT, SIGTERM or SIGHUP.
    Interrupted,
}

impl Exit {
    /// The process exit status.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::Resumable => 3,
            Exit::Interrupted => 130,
        }
    }

    /// The status of a pool run that ended with `ending` after `failed` jobs
    /// got a failure as their outcome: the one mapping `run`, `demo` and
    /// `bench` share. Each prints its own message for the ending.
    pub fn from_ending(ending: &Ending, failed: u64) -> Exit {
        match ending {
            Ending::Completed if failed == 0 => Exit::Success,
            Ending::Stopped => Exit::Interrupted,
            // Resumable whatever failed so far: the next step is --resume.
            Ending::BudgetSpent | Ending::LongPause(_) => Exit::Resumable,
            // A failed job, a refused key, an engine error, outcomes that
            // could not be written, or an ending the engine adds later:
            // not a clean run.
            _ => Exit::Failure,
        }
    }
}

/// A problem found before any request was sent: bad usage, input or
/// configuration. The message names the flag, or the file and line, to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Runs a parsed command line. `stop` is given by the signal handler.
pub fn execute(cli: Cli, stop: &Stop) -> Exit {
    // A signal quits at once until the work starts: `run` says when (after
    // its checks), these stop their work gracefully from the start, and
    // `report` and `completions` have nothing to finish.
    if matches!(
        cli.command,
        Command::Demo(_) | Command::Mock(_) | Command::Bench(_)
    ) {
        crate::signals::stop_gracefully_from_now();
    }
    let result = match cli.command {
        Command::Run(mut args) => {
            run_files::standard_streams(&mut args).and_then(|()| run::run(&args, cli.quiet, stop))
        }
        Command::Demo(args) => demo::demo(&args, stop),
        Command::Mock(args) => serve::serve(&args, stop),
        Command::Bench(args) => bench::bench(&args, cli.quiet, stop),
        Command::Report(args) => report::report(&args),
        Command::Completions(args) => completions::completions(&args),
    };
    result.unwrap_or_else(|error| {
        eprintln!("Error: {error}");
        Exit::Usage
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use restb::pool::AbortReason;

    #[test]
    fn one_mapping_from_a_runs_ending_to_the_exit_status() {
        let refused = Ending::Aborted {
            reason: AbortReason::Job,
        };
        let disk_full = Ending::SinkFailed {
            kind: std::io::ErrorKind::Other,
            message: "disk full".into(),
        };
        assert_eq!(Exit::from_ending(&Ending::Completed, 0), Exit::Success);
        assert_eq!(Exit::from_ending(&Ending::Completed, 3), Exit::Failure);
        assert_eq!(Exit::from_ending(&Ending::Stopped, 0), Exit::Interrupted);
        assert_eq!(Exit::from_ending(&Ending::Stopped, 3), Exit::Interrupted);
        assert_eq!(Exit::from_ending(&Ending::BudgetSpent, 2), Exit::Resumable);
        assert_eq!(Exit::Resumable.code(), 3);
        assert_eq!(Exit::from_ending(&refused, 0), Exit::Failure);
        assert_eq!(Exit::from_ending(&disk_full, 0), Exit::Failure);
    }
}

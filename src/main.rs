//! The `restb` binary: parse, install the signal handler, run, exit.

mod bench;
mod cli;
mod logging;
mod signals;

use clap::Parser;
use cli::{execute, Cli};
use restb::stop::Stop;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.quiet);
    // A panic inside a job is caught and recorded as that job's failure; say
    // so in one line instead of the default hook's stack-trace hint.
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        eprintln!(
            "Error: internal error in thread {}: {info}",
            thread.name().unwrap_or("?")
        );
    }));
    let stop = Stop::new();
    signals::install(&stop);
    ExitCode::from(execute(cli, &stop).code())
}

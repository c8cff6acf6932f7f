//! The `restb` binary: parse, install the signal handler, run, exit.

mod bench;
mod cli;
mod logging;

use clap::Parser;
use cli::{execute, Cli, Exit};
use restb::stop::Stop;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};

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
    let signals = AtomicU32::new(0);
    let handler_stop = stop.clone();
    // First SIGINT/SIGTERM: finish the requests in flight and exit 130.
    // Second: exit at once (outcome lines are written whole, so the file stays resumable).
    let installed = ctrlc::set_handler(move || {
        if signals.fetch_add(1, Ordering::SeqCst) == 0 {
            eprintln!(
                "interrupted: finishing the requests in flight (interrupt again to quit at once)"
            );
            handler_stop.stop();
        } else {
            std::process::exit(i32::from(Exit::Interrupted.code()));
        }
    });
    if let Err(error) = installed {
        log::warn!("cannot install the signal handler: {error}");
    }
    ExitCode::from(execute(cli, &stop).code())
}

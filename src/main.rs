//! The `restb` binary: parse, install the signal handler, run, exit.

/// std's `eprintln!` panics when standard error is gone (EIO once the
/// terminal hangs up, EPIPE once a pipe's reader exits), and a panic whose
/// hook writes to stderr again aborts the process (SIGABRT) mid-run. A
/// message nobody can read is not worth the run: this one drops the write
/// error. Defined before the modules so that it shadows std's macro in every
/// one of them, including lines added later. The client key is hidden in
/// what it prints (`hidden_key`): the library hides it in its own messages,
/// and this catches any that did not come through it.
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let line = ::std::format!($($arg)*);
        let _ = ::std::writeln!(::std::io::stderr(), "{}", crate::hidden_key::redact(&line));
    }};
}

/// `eprint!` that ignores a failed write and hides the key; see [`eprintln!`].
macro_rules! eprint {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let text = ::std::format!($($arg)*);
        let _ = ::std::write!(::std::io::stderr(), "{}", crate::hidden_key::redact(&text));
    }};
}

mod bench;
mod cli;
mod hidden_key;
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
    // so in one line instead of the default hook's stack-trace hint. The
    // write must not fail loudly: a panic inside the hook aborts.
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

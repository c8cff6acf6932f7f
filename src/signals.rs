//! The binary's signal handling: SIGINT, SIGTERM and SIGHUP stop the run
//! gracefully (requests in flight finish, their outcomes are written, exit
//! 130, resumable); a second signal quits at once. Before the work starts
//! ([`stop_gracefully_from_now`]: checking a plan, reading standard input,
//! `restb report`) nothing is in flight and a graceful stop would have nothing
//! to stop: the first signal quits at once.
//!
//! A signal the parent process set to be ignored stays ignored: `nohup restb
//! run ... &` must survive the terminal closing (SIGHUP), and a background job
//! of a non-interactive shell ignores SIGINT. ctrlc's `termination` feature
//! installs its handlers over such an inherited ignore, so on Unix we use
//! signal-hook and register only the signals that are not ignored.

use crate::cli::Exit;
use restb::stop::Stop;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the first signal stops gracefully (the work has started) or
/// quits at once (it has not).
static GRACEFUL: AtomicBool = AtomicBool::new(false);

/// From now on the first signal gives the stop and lets the requests in
/// flight finish; call it just before the work that the stop ends starts.
pub fn stop_gracefully_from_now() {
    GRACEFUL.store(true, Ordering::SeqCst);
}

/// Whether the first signal should stop gracefully; otherwise, or for any
/// later signal (`seen` counts this one), the process quits at once.
fn graceful(seen: u32) -> bool {
    seen == 1 && GRACEFUL.load(Ordering::SeqCst)
}

/// Files half written that a signal quitting at once removes first (the
/// temporary CSV of `restb report --csv`).
static REMOVE_ON_QUIT: parking_lot::Mutex<Vec<PathBuf>> = parking_lot::Mutex::new(Vec::new());

/// `path` is half written until [`keep_on_quit`]: a signal that quits at
/// once removes it.
pub fn remove_on_quit(path: &Path) {
    REMOVE_ON_QUIT.lock().push(path.to_path_buf());
}

/// `path` is done with (renamed or removed): a signal leaves it alone.
pub fn keep_on_quit(path: &Path) {
    REMOVE_ON_QUIT.lock().retain(|kept| kept != path);
}

/// What a signal that quits at once says first, unless it is a second one,
/// and the half-written files it removes.
fn say_quitting(seen: u32, signal: &str) {
    for path in REMOVE_ON_QUIT.lock().drain(..) {
        let _ = std::fs::remove_file(path);
    }
    if seen == 1 {
        eprintln!("interrupted by {signal}: nothing in flight yet, quitting");
    }
}

/// What the first signal prints; the second one exits at once. (`restb run`
/// says at its end how `--resume` finishes the batch; `mock`, `demo` and
/// `bench` have none.)
const FIRST_SIGNAL: &str = "finishing the requests in flight (signal again to quit at once)";

/// Installs the handlers; a failure is logged and the run goes on (it can
/// then only be stopped the hard way, which `--resume` still recovers from).
pub fn install(stop: &Stop) {
    if let Err(error) = platform::install(stop.clone()) {
        log::warn!("cannot install the signal handler: {error}");
    }
}

#[cfg(unix)]
mod platform {
    use super::{graceful, say_quitting, Exit, Stop, FIRST_SIGNAL};
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    use signal_hook::iterator::Signals;
    use std::os::raw::c_int;

    /// Registers SIGTERM, and SIGINT and SIGHUP unless inherited as ignored,
    /// and starts the thread that turns them into a stop.
    pub(super) fn install(stop: Stop) -> std::io::Result<()> {
        let ignored = inherited_ignores();
        let wanted: Vec<c_int> = [SIGINT, SIGTERM, SIGHUP]
            .into_iter()
            // SIGTERM is the ordinary way to ask a process to stop: always heard.
            .filter(|&signal| signal == SIGTERM || !is_ignored(ignored, signal))
            .collect();
        let mut signals = Signals::new(&wanted)?;
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let mut seen = 0u32;
                for signal in signals.forever() {
                    seen += 1;
                    if !graceful(seen) {
                        say_quitting(seen, name(signal));
                        std::process::exit(i32::from(Exit::Interrupted.code()));
                    }
                    // Stop first: the message may not get out (a hung-up
                    // terminal), and the run must stop either way.
                    stop.stop();
                    eprintln!("interrupted by {}: {FIRST_SIGNAL}", name(signal));
                }
            })?;
        Ok(())
    }

    fn name(signal: c_int) -> &'static str {
        match signal {
            SIGINT => "SIGINT",
            SIGTERM => "SIGTERM",
            SIGHUP => "SIGHUP",
            _ => "a signal",
        }
    }

    /// Whether `signal` is set in the ignore mask `ignored`.
    fn is_ignored(ignored: u64, signal: c_int) -> bool {
        (1..=64).contains(&signal) && ignored & (1u64 << (signal - 1)) != 0
    }

    /// The signals this process inherited as ignored, as the kernel's mask
    /// (bit `n - 1` for signal `n`). Read from `/proc/self/status` because
    /// the other way, `sigaction` with a null new action, is an unsafe call
    /// and the crate forbids unsafe code. Where there is no `/proc` (not
    /// Linux) the mask is unknown and taken as empty: every signal is handled.
    fn inherited_ignores() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| ignore_mask(&status))
            .unwrap_or(0)
    }

    /// The `SigIgn:` mask of a `/proc/PID/status` text.
    fn ignore_mask(status: &str) -> Option<u64> {
        status
            .lines()
            .find_map(|line| line.strip_prefix("SigIgn:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_ignore_mask_is_read_bit_by_bit() {
            let status = "Name:\trestb\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000001001\n";
            let mask = ignore_mask(status).unwrap();
            assert!(is_ignored(mask, SIGHUP));
            assert!(!is_ignored(mask, SIGINT));
            assert!(!is_ignored(mask, SIGTERM));
            assert!(is_ignored(mask, 13), "SIGPIPE");
            assert_eq!(ignore_mask("Name:\tx\n"), None);
        }
    }
}

#[cfg(not(unix))]
mod platform {
    use super::{graceful, say_quitting, Exit, Stop, FIRST_SIGNAL};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Ctrl-C and console close: there is no inherited ignore to respect.
    pub(super) fn install(stop: Stop) -> Result<(), ctrlc::Error> {
        let seen = AtomicU32::new(0);
        ctrlc::set_handler(move || {
            let seen = seen.fetch_add(1, Ordering::SeqCst) + 1;
            if !graceful(seen) {
                say_quitting(seen, "Ctrl-C");
                std::process::exit(i32::from(Exit::Interrupted.code()));
            }
            stop.stop();
            eprintln!("interrupted: {FIRST_SIGNAL}");
        })
    }
}

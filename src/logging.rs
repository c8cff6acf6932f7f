//! Logging set-up for the binary: env_logger, printing above the progress
//! bar, behind the library's guard against records that quote the client
//! key ([`KeySafeLog`]).

use indicatif::ProgressBar;
use log::{LevelFilter, Log, Metadata, Record};
use parking_lot::Mutex;
use restb::api::KeySafeLog;
use std::borrow::Cow;

/// The progress bar on screen, if any: log lines are printed above it.
static PROGRESS: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Prints log lines above `bar` from now on (`None`: no bar any more).
pub fn set_progress(bar: Option<ProgressBar>) {
    *PROGRESS.lock() = bar;
}

/// env_logger, printing above the progress bar.
struct AboveProgress {
    inner: env_logger::Logger,
}

impl Log for AboveProgress {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.inner.matches(record) {
            return;
        }
        let bar = PROGRESS.lock().clone();
        let print = || with_key_hidden(record, |record| self.inner.log(record));
        match bar {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

/// Calls `log` with `record`, or with a copy of it whose text has the
/// client key hidden when it held the key.
fn with_key_hidden(record: &Record<'_>, log: impl FnOnce(&Record<'_>)) {
    let text = record.args().to_string();
    match crate::hidden_key::redact(&text) {
        Cow::Borrowed(_) => log(record),
        Cow::Owned(hidden) => log(&Record::builder()
            .args(format_args!("{hidden}"))
            .metadata(record.metadata().clone())
            .module_path(record.module_path())
            .file(record.file())
            .line(record.line())
            .build()),
    }
}

/// Installs the process logger. `RUST_LOG` decides when set; otherwise info
/// lines of restb (not one per request), or warnings only when `quiet`.
pub fn init(quiet: bool) {
    let mut builder = env_logger::Builder::new();
    // Standard error through env_logger's own writer, which drops a failed
    // write (a hung-up terminal, a closed pipe) instead of panicking; never
    // its test target, which prints with a panicking `eprint!`.
    builder
        .format_timestamp_millis()
        .target(env_logger::Target::Stderr);
    match std::env::var("RUST_LOG") {
        Ok(filters) if !quiet => {
            builder.parse_filters(&filters);
        }
        _ if quiet => {
            builder.filter_level(LevelFilter::Warn);
        }
        _ => {
            builder
                .filter_level(LevelFilter::Warn)
                .filter_module("restb", LevelFilter::Info)
                .filter_module("restb::request", LevelFilter::Warn);
        }
    }
    let inner = builder.build();
    let max_level = inner.filter();
    if log::set_boxed_logger(Box::new(KeySafeLog(AboveProgress { inner }))).is_ok() {
        log::set_max_level(max_level);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hidden_key::{hide, TEST_KEY};

    #[test]
    fn a_record_quoting_the_key_is_printed_without_it() {
        hide(&restb::api::ClientKey::new(TEST_KEY).unwrap());
        let printed = |args: std::fmt::Arguments<'_>| {
            let mut text = None;
            let record = Record::builder()
                .args(args)
                .level(log::Level::Warn)
                .target("ureq")
                .build();
            with_key_hidden(&record, |record| {
                assert_eq!(record.level(), log::Level::Warn);
                assert_eq!(record.target(), "ureq");
                text = Some(record.args().to_string());
            });
            text.unwrap()
        };
        assert_eq!(
            printed(format_args!("GET /x?client_key={TEST_KEY} failed")),
            "GET /x?client_key=*** failed"
        );
        assert_eq!(printed(format_args!("no key here")), "no key here");
    }
}

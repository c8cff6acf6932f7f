//! Keeping the client key out of an embedder's logs. The key travels in the
//! query string (the API's rule), and ureq quotes request URLs whole in its
//! trace records, and in the debug line of each request whenever its trace
//! level is enabled (otherwise it prints the query as `******`). restb's own
//! records never hold the key; ureq's are beyond its reach, so a tool that
//! logs at trace wraps its logger in [`KeySafeLog`] (the `restb` binary
//! does).

use log::{Level, Log, Metadata, Record};

/// Whether a record of `metadata` may quote a request URL, key and all:
/// ureq's trace level.
pub fn may_quote_the_key(metadata: &Metadata<'_>) -> bool {
    metadata.level() == Level::Trace && metadata.target().starts_with("ureq")
}

/// A logger that drops the records that may quote the key (see
/// [`may_quote_the_key`]) and says ureq's trace level is off, so ureq
/// masks the query in the rest.
///
/// # Examples
///
/// ```
/// use restb::api::KeySafeLog;
///
/// struct Stderr;
/// impl log::Log for Stderr {
///     fn enabled(&self, _: &log::Metadata) -> bool { true }
///     fn log(&self, record: &log::Record) { eprintln!("{}", record.args()) }
///     fn flush(&self) {}
/// }
///
/// static LOGGER: KeySafeLog<Stderr> = KeySafeLog(Stderr);
/// if log::set_logger(&LOGGER).is_ok() {
///     log::set_max_level(log::LevelFilter::Trace);
/// }
/// ```
#[derive(Debug)]
pub struct KeySafeLog<L>(pub L);

impl<L: Log> Log for KeySafeLog<L> {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        !may_quote_the_key(metadata) && self.0.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if !may_quote_the_key(record.metadata()) {
            self.0.log(record);
        }
    }

    fn flush(&self) {
        self.0.flush();
    }
}

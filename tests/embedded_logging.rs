//! An embedding tool that logs at trace keeps the client key out of its
//! logs by wrapping its logger in `KeySafeLog`: ureq quotes request URLs,
//! key and all, when its trace level is on.

mod common;

use common::tiny_server::{answer_no_logo, TinyServer};
use log::{Log, Metadata, Record};
use parking_lot::Mutex;
use restb::api::{ImageSource, KeySafeLog, Verdict};
use restb::{Client, ClientConfig, ClientKey};

const KEY: &str = "embedded-secret-key-0123";

/// Every record, formatted.
static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl Log for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &Record<'_>) {
        let line = format!("{} {} {}", record.level(), record.target(), record.args());
        LINES.lock().push(line);
    }

    fn flush(&self) {}
}

#[test]
fn a_trace_logger_wrapped_in_key_safe_log_never_sees_the_key() {
    log::set_boxed_logger(Box::new(KeySafeLog(Capture))).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    let server = TinyServer::start(|_, stream| answer_no_logo(stream));
    let mut config = ClientConfig::default();
    config.base_url = server.base_url();
    let client = Client::new(ClientKey::new(KEY).unwrap(), &config).unwrap();
    let reply = client.predict(
        &ImageSource::Url("https://example.com/a.jpg".into()),
        &["re_logo".to_string()],
    );
    assert!(matches!(reply.verdict, Verdict::Ok(_)), "{reply:?}");
    let lines = LINES.lock();
    let from_ureq = lines.iter().filter(|line| line.contains(" ureq")).count();
    assert!(from_ureq > 0, "ureq logged nothing: the test shows nothing");
    let leaks: Vec<_> = lines.iter().filter(|line| line.contains(KEY)).collect();
    assert!(leaks.is_empty(), "{leaks:?}");
}

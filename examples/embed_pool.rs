//! A synchronous tool embedding restb's pool for its own blocking work:
//! "upload" files at 20 per second from a thread pool that sizes itself,
//! with retries, and a report in the tutorial's form at the end.
//!
//! Run: `cargo run --example embed_pool`

use restb::limiter::Rate;
use restb::pool::{Attempt, Pool, PoolConfig, Work};
use restb::stop::Stop;
use std::time::Duration;

/// The legacy tool's own blocking call, here a stand-in that sleeps and now
/// and then fails in a way worth retrying.
struct Upload;

impl Work for Upload {
    type Job = String;
    type Output = String;

    fn attempt(&self, path: &String) -> Attempt<String> {
        std::thread::sleep(Duration::from_millis(80));
        if path.ends_with("7.jpg") && fastrand::bool() {
            return Attempt::Transient(format!("{path}: server busy"));
        }
        Attempt::Success(format!("{path}: stored"))
    }

    fn panicked(&self, path: &String, message: &str) -> String {
        format!("{path}: {message}")
    }
}

fn main() {
    let mut config = PoolConfig::default();
    config.rate = Rate::per_second(20.0);
    // Give `stop` to a signal handler to interrupt cleanly; unused here.
    let pool = Pool::new(config, Stop::new());
    let files: Vec<String> = (1..=40).map(|n| format!("photos/{n}.jpg")).collect();
    let summary = pool.run(&Upload, files, |done| {
        println!("{} (after {} attempts)", done.output, done.attempts);
        Ok(())
    });
    eprintln!("{}", summary.report);
}

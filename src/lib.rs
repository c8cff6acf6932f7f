//! restb: send batches of images to the Restb.ai Vision API at the allotted
//! rate, from plain blocking threads, without losing or duplicating a result.
//!
//! This is the library a blocking tool embeds; the `restb` command line is
//! built on it (with the default `cli` feature) but is not part of it.
//!
//! # The map
//!
//! The engine, generic over the work it runs:
//! - [`pool`]: blocking worker threads on one MPMC queue. You implement
//!   [`Work`] (one [`Attempt`] per call), give a [`PoolConfig`] and a
//!   [`Stop`], and get every job back exactly once.
//! - [`limiter`]: the shared pacing ([`Rate`]) that keeps every thread
//!   together within the allotted rate, and learns from the gateway's replies.
//! - [`retry`]: which failures are retried, how often and after what wait.
//! - [`stats`]: counts and latency percentiles of a run, as it goes.
//! - [`stop`]: the signal that ends a run cleanly (give it to your handler).
//!
//! The Restb.ai side:
//! - [`api`]: the client ([`Client`], [`ClientConfig`], [`ClientKey`]) and
//!   the classification of its replies.
//! - [`job`]: Restb.ai jobs, and the [`Work`] that runs them through the client.
//! - [`models`]: the model ids restb knows, and the default set.
//! - [`input`]: batch readers (plain lines, CSV, JSONL) with line-numbered errors.
//! - [`outcome`]: the JSONL outcome file: its line, writer, one reader, and
//!   the resume index.
//! - [`report`]: reading an outcome file back into a summary, a table or CSV.
//! - `mock` (feature `mock`, on by default): a stand-in gateway on
//!   loopback, for tests and demos.
//! - `shared_limit` (feature `redis`, on by default): one schedule for
//!   every process on a client key, held in Redis.
//!
//! # Features
//!
//! - `cli` (default): the `restb` binary and the crates only it needs (clap,
//!   clap_complete, indicatif, env_logger, and signal-hook or ctrlc).
//! - `mock` (default): the stand-in gateway, module `restb::mock`.
//! - `redis` (default): the shared limit, module `restb::shared_limit`
//!   (the `redis` crate's blocking client; no async runtime).
//!
//! An embedder that needs neither writes
//! `restb = { version = "0.1", default-features = false }`.
//!
//! # Examples
//!
//! Run your own blocking jobs at 50 per second on a pool that sizes itself:
//!
//! ```
//! use restb::{Attempt, Pool, PoolConfig, Rate, Stop, Work};
//!
//! struct Square;
//! impl Work for Square {
//!     type Job = u64;
//!     type Output = u64;
//!     fn attempt(&self, job: &u64) -> Attempt<u64> {
//!         Attempt::Success(job * job) // a blocking call of yours goes here
//!     }
//!     fn panicked(&self, _job: &u64, _message: &str) -> u64 {
//!         0
//!     }
//! }
//!
//! let mut config = PoolConfig::default();
//! config.rate = Rate::per_second(50.0);
//! let pool = Pool::new(config, Stop::new());
//! let mut total = 0;
//! let summary = pool.run(&Square, 1..=10, |finished| {
//!     total += finished.output;
//!     Ok(())
//! });
//! assert_eq!(total, 385);
//! assert_eq!(summary.report.succeeded, 10);
//! ```
//!
//! Call the API directly (here against the mock gateway, on loopback; the
//! example needs the `mock` feature):
//!
//! ```
//! # #[cfg(feature = "mock")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use restb::api::{ImageSource, Verdict};
//! use restb::mock::{MockConfig, MockServer};
//! use restb::{Client, ClientConfig, ClientKey};
//!
//! let gateway = MockServer::start(MockConfig::default())?;
//! let mut config = ClientConfig::default();
//! config.base_url = gateway.base_url();
//! let client = Client::new(ClientKey::new("your-key").unwrap(), &config)?;
//! let image = ImageSource::Url("https://demo.restb.ai/images/demo/demo-1.jpg".into());
//! let reply = client.predict(&image, &["re_roomtype_global_v2".to_string()]);
//! assert_eq!(reply.http_status, Some(200));
//! if let Verdict::Ok(solutions) = reply.verdict {
//!     println!("{}", solutions["re_roomtype_global_v2"]["top_prediction"]["label"]);
//! }
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "mock"))]
//! # fn main() {}
//! ```
#![forbid(unsafe_code)]

pub mod api;
mod calendar;
pub mod input;
pub mod job;
pub mod limiter;
#[cfg(feature = "mock")]
pub mod mock;
pub mod models;
pub mod outcome;
pub mod pool;
pub mod report;
pub mod retry;
#[cfg(feature = "redis")]
pub mod shared_limit;
pub mod stats;
pub mod stop;

// The names nearly every embedder uses; each stays reachable by its module path too.
pub use api::{Client, ClientConfig, ClientKey};
pub use limiter::Rate;
pub use pool::{Attempt, Pool, PoolConfig, PoolSummary, Work};
pub use stop::Stop;

/// The README's Rust examples compile and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

//! restb: send batches of images to the Restb.ai Vision API at the allotted
//! rate, from plain blocking threads, without losing or duplicating a result.
//!
//! The pieces, each usable on its own:
//! - [`pool`]: blocking worker threads on one MPMC queue, paced by a shared
//!   [`limiter`], with retries ([`retry`]), statistics ([`stats`]) and a
//!   [`stop`] signal. Generic over the [`pool::Work`] it runs.
//! - [`api`]: the Restb.ai client ([`api::Client`]) and reply classification.
//! - [`job`]: Restb.ai jobs and the work that runs them through the client.
//! - [`input`] / [`output`]: batch readers and the JSONL outcome file.
//! - [`mock`]: a stand-in gateway on loopback, for tests and demos.
//!
//! # Examples
//!
//! Run your own blocking jobs at 50 per second on a pool that sizes itself:
//!
//! ```
//! use restb::limiter::Rate;
//! use restb::pool::{Attempt, Pool, PoolConfig, Work};
//! use restb::stop::Stop;
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
//! let config = PoolConfig { rate: Rate::per_second(50.0), ..PoolConfig::default() };
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
//! Call the API directly (here against the mock gateway, on loopback):
//!
//! ```
//! use restb::api::{Client, ClientConfig, ClientKey, ImageSource, Verdict};
//! use restb::mock::{MockConfig, MockServer};
//!
//! let gateway = MockServer::start(MockConfig::default())?;
//! let config = ClientConfig { base_url: gateway.base_url(), ..ClientConfig::default() };
//! let client = Client::new(ClientKey::new("your-key").unwrap(), &config)?;
//! let image = ImageSource::Url("https://demo.restb.ai/images/demo/demo-1.jpg".into());
//! let reply = client.predict(&image, &["re_roomtype_global_v2".to_string()]);
//! assert_eq!(reply.http_status, Some(200));
//! if let Verdict::Ok(solutions) = reply.verdict {
//!     println!("{}", solutions["re_roomtype_global_v2"]["top_prediction"]["label"]);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod api;
pub mod bench;
pub mod cli;
pub mod input;
pub mod job;
pub mod limiter;
pub mod logging;
pub mod mock;
pub mod models;
pub mod output;
pub mod pool;
pub mod report;
pub mod retry;
#[cfg(feature = "redis")]
pub mod shared_limit;
pub mod stats;
pub mod stop;

/// The README's Rust examples compile and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

//! Thread-count sweeps: throughput against threads, with a table, JSON and an SVG chart.
//!
//! [`sweep()`] runs the engine ([`restb::pool`]) with a fixed thread count at
//! every point of a grid of thread counts x allotted rates, each request one
//! `/vision/v2/predict` call on [`sweep::BENCH_MODEL`], against the built-in mock
//! gateway ([`Target::Mock`], a fresh one per point playing the account's
//! fixed-window gateway) or an external one ([`Target::Gateway`]). Each
//! [`Point`] holds the sustained rate (as a run's stats define it: successful
//! starts per whole wall-clock second between the first and the last), the
//! throughput (successes per second over the span), 429s, transient errors,
//! latency percentiles and Little's-law prediction `min(threads / latency,
//! rps)`: with the tutorial's 1.16 s latency, 4 threads can never sustain 4
//! per second.
//!
//! Results come out as table rows ([`table_rows`] under [`TABLE_HEADER`]),
//! a JSON document ([`SweepReport`]) and a chart ([`render_svg`]).
//!
//! [`shared_sweep`] (feature `redis`) measures P holders of one key sharing
//! an allotment through `--shared-limit` instead.
//!
//! This is the binary's code, not library API: `restb bench` is its user.
//! Its tests (`tests.rs`) run one small sweep against the mock end to end.

mod config;
mod point;
mod report;
mod scale;
#[cfg(feature = "redis")]
mod shared;
mod svg;
mod sweep;

pub use config::{validate, BenchError, Pacing, SweepConfig, Target};
pub use point::Point;
pub use report::{table_rows, SweepReport, TABLE_HEADER};
#[cfg(feature = "redis")]
pub use shared::{shared_sweep, SharedPoint, SharedSweepConfig};
pub use svg::render_svg;
pub use sweep::sweep;

#[cfg(test)]
use point::{littles_law, LatencyBasis};

#[cfg(test)]
mod tests;

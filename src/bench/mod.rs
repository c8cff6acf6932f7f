//! Thread-count sweeps: throughput against threads, with a table, JSON and an SVG chart.
//!
//! [`sweep`] runs the engine ([`crate::pool`]) with a fixed thread count at
//! every point of a grid of thread counts x allotted rates, each request one
//! `/vision/v2/predict` call on [`BENCH_MODEL`], against the built-in mock
//! gateway ([`Target::Mock`], a fresh one per point playing the account's
//! fixed-window gateway) or an external one ([`Target::Gateway`]). Each
//! [`Point`] holds the sustained rate (successes per second over the span),
//! 429s, transient errors, latency percentiles and Little's-law prediction
//! `min(threads / latency, rps)`: with the tutorial's 1.16 s latency, 4
//! threads can never sustain 4 per second.
//!
//! Results come out as table rows ([`table_rows`] under [`TABLE_HEADER`]),
//! a JSON document ([`SweepReport`]) and a chart ([`render_svg`]).
//!
//! # Examples
//!
//! ```
//! use restb::bench::{render_svg, sweep, table_rows, SweepConfig, SweepReport, Target};
//! use restb::stop::Stop;
//! use std::num::NonZeroUsize;
//! use std::time::Duration;
//!
//! let config = SweepConfig {
//!     threads: vec![NonZeroUsize::new(2).unwrap()],
//!     rates: vec![50.0],
//!     requests: NonZeroUsize::new(5).unwrap(),
//!     ..SweepConfig::default()
//! };
//! let target = Target::Mock { latency: Duration::from_millis(10), jitter: Duration::ZERO };
//! let points = sweep(&config, &target, &Stop::new(), |point| {
//!     eprintln!("{} threads: {:.1}/s", point.threads, point.sustained_rps);
//! })?;
//! assert_eq!(points.len(), 1);
//! assert_eq!(points[0].succeeded, 5);
//! assert_eq!(table_rows(&points).len(), 1);
//! let svg = render_svg(&points, "2 threads at 50/s");
//! assert_eq!(svg.matches("<polyline").count(), 1);
//! let json = serde_json::to_string(&SweepReport::new(&config, &target, points))?;
//! assert!(json.contains("\"prediction_latency\":\"configured\""));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod point;
mod report;
mod scale;
mod svg;
mod sweep;

pub use config::{validate, BenchError, Pacing, SweepConfig, Target};
pub use point::{littles_law, LatencyBasis, Point};
pub use report::{table_rows, SweepReport, TABLE_HEADER};
pub use svg::render_svg;
pub use sweep::{bench_jobs, sweep, BENCH_MODEL};

//! One measured point of a sweep, and the Little's-law figure it is held against.

use restb::pool::{Ending, PoolSummary};
use restb::stats::StatsReport;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Which latency the Little's-law prediction uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencyBasis {
    /// The built-in mock's configured latency (known in advance).
    Configured,
    /// The mean latency of the point's successes (an external gateway).
    MeasuredMean,
}

/// What one (threads, rate) point of a sweep measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Worker threads.
    pub threads: usize,
    /// Allotted requests per second.
    pub rps: f64,
    /// Requests the point was to send.
    pub requests: usize,
    /// Requests answered with a success.
    pub succeeded: u64,
    /// Requests whose terminal outcome was a failure.
    pub failed: u64,
    /// Rate-limit replies (429) received.
    pub rate_limited: u64,
    /// Transient errors (5xx, network, timeouts) received.
    pub transient: u64,
    /// Seconds from the first request's start to the last one's end.
    pub span_s: f64,
    /// The sustained rate, as a run's stats define it (the README's
    /// "sustained"; [`StatsReport::sustained`] computes both): successful
    /// starts per whole wall-clock second strictly between the first and the
    /// last second with one. `None` (JSON `null`) for a point whose successes
    /// started within fewer than three wall-clock seconds.
    pub sustained_rps: Option<f64>,
    /// Successes per second over the span ([`StatsReport::throughput`], the
    /// tutorial's "total throughput"). Over a batch of only a few seconds it
    /// can exceed `rps` without a single 429: a fixed-window gateway lets
    /// each window's budget through as early as the window opens, and the
    /// limiter spends it so once it has read the gateway's headers. Some 10
    /// windows' worth of requests (`requests >= 10 x rps`) keep that edge
    /// effect near 10%.
    pub throughput_rps: f64,
    /// Mean latency of the successes, in milliseconds.
    pub mean_ms: f64,
    /// Median latency of the successes, in milliseconds.
    pub p50_ms: f64,
    /// 95th percentile latency, in milliseconds.
    pub p95_ms: f64,
    /// 99th percentile latency, in milliseconds.
    pub p99_ms: f64,
    /// Little's law: `min(threads / latency, rps)`; `None` when the latency
    /// is the measured one and nothing succeeded.
    pub predicted_rps: Option<f64>,
    /// False when the sweep was stopped during this point (fewer requests sent).
    pub complete: bool,
    /// True when the gateway refused the key: the sweep ended here.
    pub aborted: bool,
}

impl Point {
    /// The point measured by a pool run with `threads` at `rps`. `latency`
    /// is the configured latency for the prediction, or `None` to use the
    /// measured mean.
    pub fn from_summary(
        threads: usize,
        rps: f64,
        requests: usize,
        summary: &PoolSummary,
        latency: Option<Duration>,
    ) -> Point {
        Point {
            complete: summary.unfinished == 0,
            aborted: matches!(summary.ending, Ending::Aborted { .. }),
            ..Point::from_report(threads, rps, requests, &summary.report, latency)
        }
    }

    /// The figures of a complete point whose run's statistics are `report`:
    /// every rate comes from the report's own definition, so a bench point and
    /// a `restb run` never mean two things by one word.
    pub(crate) fn from_report(
        threads: usize,
        rps: f64,
        requests: usize,
        report: &StatsReport,
        latency: Option<Duration>,
    ) -> Point {
        let latency = match latency {
            Some(configured) => Some(configured),
            None if report.succeeded > 0 => Some(report.mean_latency),
            None => None,
        };
        Point {
            threads,
            rps,
            requests,
            succeeded: report.succeeded,
            failed: report.failed,
            rate_limited: report.rate_limited,
            transient: report.transient,
            span_s: round(report.span.as_secs_f64(), 6),
            sustained_rps: report.sustained.map(|r| round(r, 4)),
            throughput_rps: round(report.throughput(), 4),
            mean_ms: millis(report.mean_latency),
            p50_ms: millis(report.p50),
            p95_ms: millis(report.p95),
            p99_ms: millis(report.p99),
            predicted_rps: latency.map(|l| round(littles_law(threads, l, rps), 4)),
            complete: true,
            aborted: false,
        }
    }
}

/// Little's law: `threads` workers each busy `latency` per request complete
/// `threads / latency` requests per second, and the allotment caps that at
/// `rps`. A zero latency leaves the allotment as the only limit.
pub fn littles_law(threads: usize, latency: Duration, rps: f64) -> f64 {
    let seconds = latency.as_secs_f64();
    if seconds > 0.0 {
        (threads as f64 / seconds).min(rps)
    } else {
        rps
    }
}

/// Milliseconds to the microsecond.
fn millis(duration: Duration) -> f64 {
    round(duration.as_secs_f64() * 1000.0, 3)
}

/// `value` to `digits` decimals, so the JSON does not carry float noise.
fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn littles_law_is_capped_by_the_allotment() {
        let latency = Duration::from_millis(1160);
        assert!((littles_law(1, latency, 4.0) - 0.862).abs() < 0.001);
        assert!((littles_law(4, latency, 4.0) - 3.448).abs() < 0.001);
        assert_eq!(littles_law(8, latency, 4.0), 4.0);
        assert_eq!(littles_law(1, Duration::ZERO, 4.0), 4.0);
    }
}

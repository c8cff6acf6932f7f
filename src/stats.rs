//! Shared run statistics and the final report.
//!
//! Workers record every attempt under one `parking_lot` mutex; the report's
//! first line keeps the tutorial's exact form so existing scripts parse it.

use crate::limiter::PacingStatus;
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How one attempt (one request) ended, as far as the statistics care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttemptKind {
    /// A success: counts toward throughput and mean latency.
    Success,
    /// A permanent failure.
    Failure,
    /// A rate-limit reply.
    RateLimited,
    /// A transient failure (5xx, network, timeout, unreadable body).
    Transient,
}

/// Counters and latencies of a run, guarded by one mutex.
#[derive(Debug)]
pub struct Stats {
    inner: Mutex<Tally>,
}

#[derive(Debug, Clone)]
struct Tally {
    succeeded: u64,
    failed_replies: u64,
    transient: u64,
    rate_limited: u64,
    retried: u64,
    failed_jobs: u64,
    first_start: Option<Instant>,
    last_end: Option<Instant>,
    /// Successful starts per wall-clock second: the sustained rate is their
    /// mean over the whole seconds inside the run.
    success_starts_per_second: BTreeMap<u64, u64>,
    success_latency: Duration,
    /// Latencies of successes in microseconds, 3 significant digits.
    latency_us: Histogram<u64>,
    /// Moving average of recent reply latencies, for sizing the pool.
    recent_latency: Option<Duration>,
    /// What the limiter was doing when the pool last looked.
    pacing: PacingStatus,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats::new()
    }
}

impl Tally {
    fn empty() -> Tally {
        let latency_us = Histogram::new_with_bounds(1, 3_600_000_000, 3)
            .expect("bounds 1..1h with 3 digits are valid for hdrhistogram");
        Tally {
            succeeded: 0,
            failed_replies: 0,
            transient: 0,
            rate_limited: 0,
            retried: 0,
            failed_jobs: 0,
            first_start: None,
            last_end: None,
            success_starts_per_second: BTreeMap::new(),
            success_latency: Duration::ZERO,
            latency_us,
            recent_latency: None,
            pacing: PacingStatus::default(),
        }
    }
}

impl Stats {
    /// Empty statistics.
    pub fn new() -> Stats {
        Stats {
            inner: Mutex::new(Tally::empty()),
        }
    }

    /// Forgets everything recorded: a pool run again reports its new run
    /// alone.
    pub fn reset(&self) {
        *self.inner.lock() = Tally::empty();
    }

    /// Records one attempt that ran from `start` to `end`.
    pub fn record(&self, kind: AttemptKind, start: Instant, end: Instant) {
        let latency = end.saturating_duration_since(start);
        let mut tally = self.inner.lock();
        tally.first_start = Some(tally.first_start.map_or(start, |s| s.min(start)));
        tally.last_end = Some(tally.last_end.map_or(end, |e| e.max(end)));
        if matches!(kind, AttemptKind::Success | AttemptKind::Failure) {
            tally.recent_latency = Some(match tally.recent_latency {
                Some(average) => average.mul_f64(0.8) + latency.mul_f64(0.2),
                None => latency,
            });
        }
        match kind {
            AttemptKind::Success => {
                tally.succeeded += 1;
                let started = SystemTime::now()
                    .checked_sub(start.elapsed())
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_secs());
                *tally.success_starts_per_second.entry(started).or_default() += 1;
                tally.success_latency += latency;
                let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                tally.latency_us.saturating_record(micros.max(1));
            }
            AttemptKind::Failure => tally.failed_replies += 1,
            AttemptKind::RateLimited => tally.rate_limited += 1,
            AttemptKind::Transient => tally.transient += 1,
        }
    }

    /// A moving average of recent reply latencies (successes and permanent
    /// failures), once there is one.
    pub fn latency_estimate(&self) -> Option<Duration> {
        self.inner.lock().recent_latency
    }

    /// Records what the limiter is doing (the pool copies it in while it runs).
    pub fn set_pacing(&self, status: PacingStatus) {
        self.inner.lock().pacing = status;
    }

    /// What the limiter was doing when the pool last looked: the rate in
    /// force, the pause in force and the paused time.
    pub fn pacing(&self) -> PacingStatus {
        self.inner.lock().pacing
    }

    /// Counts a job that will be tried again after a transient failure.
    pub fn record_retry(&self) {
        self.inner.lock().retried += 1;
    }

    /// Counts a job whose terminal outcome is a failure.
    pub fn record_failed_job(&self) {
        self.inner.lock().failed_jobs += 1;
    }

    /// A snapshot of the figures so far.
    pub fn report(&self) -> StatsReport {
        let tally = self.inner.lock().clone();
        let span = match (tally.first_start, tally.last_end) {
            (Some(start), Some(end)) => end.saturating_duration_since(start),
            _ => Duration::ZERO,
        };
        let mean_latency = if tally.succeeded == 0 {
            Duration::ZERO
        } else {
            tally.success_latency / u32::try_from(tally.succeeded).unwrap_or(u32::MAX)
        };
        let percentile = |q: f64| {
            if tally.succeeded == 0 {
                Duration::ZERO
            } else {
                Duration::from_micros(tally.latency_us.value_at_quantile(q))
            }
        };
        let seconds = &tally.success_starts_per_second;
        // The whole seconds strictly between the first and the last with a
        // successful start; a run that touches fewer than three wall-clock
        // seconds has none, and no sustained rate.
        let sustained = match (seconds.keys().next(), seconds.keys().next_back()) {
            (Some(&first), Some(&last)) if last >= first + 2 => {
                let inside: u64 = seconds.range(first + 1..last).map(|(_, n)| n).sum();
                Some(inside as f64 / (last - first - 1) as f64)
            }
            _ => None,
        };
        StatsReport {
            sustained,
            paused: tally.pacing.paused_total,
            rate_in_force: tally.pacing.rate_in_force.map(|r| r.per_second_f64()),
            rate_cuts: tally.pacing.rate_cuts,
            succeeded: tally.succeeded,
            failed: tally.failed_jobs,
            transient: tally.transient,
            rate_limited: tally.rate_limited,
            retried: tally.retried,
            span,
            mean_latency,
            p50: percentile(0.50),
            p90: percentile(0.90),
            p95: percentile(0.95),
            p99: percentile(0.99),
            max: percentile(1.0),
        }
    }
}

/// The figures of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsReport {
    /// Successful requests.
    pub succeeded: u64,
    /// Jobs recorded as failed.
    pub failed: u64,
    /// Transient failures (5xx, network errors, timeouts, unreadable bodies).
    pub transient: u64,
    /// Rate-limit replies (429 or the legacy "005" body).
    pub rate_limited: u64,
    /// Transient failures that were tried again.
    pub retried: u64,
    /// From the first request's start to the last one's end.
    pub span: Duration,
    /// Mean latency of the successes.
    pub mean_latency: Duration,
    /// Latency percentiles of the successes.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 95th percentile.
    pub p95: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest success.
    pub max: Duration,
    /// Successful requests started per wall-clock second, averaged over the
    /// whole seconds between the first and the last: the rate the run kept
    /// up, without the ramp at either end that the tutorial's throughput
    /// figure includes. `None` when the successes started within fewer than
    /// three wall-clock seconds (no whole second between the first and last).
    pub sustained: Option<f64>,
    /// How long the limiter held every start, in all.
    pub paused: Duration,
    /// The limiter's rate in force at the end (lower than the allotted one
    /// when persisting 429s cut it); `None` when not pacing.
    pub rate_in_force: Option<f64>,
    /// How many times 429s that persisted at the paced rate cut the rate in
    /// force during the run.
    pub rate_cuts: u32,
}

impl StatsReport {
    /// Successes per second over the span: the tutorial's "total throughput".
    pub fn throughput(&self) -> f64 {
        let seconds = self.span.as_secs_f64();
        if seconds > 0.0 {
            self.succeeded as f64 / seconds
        } else {
            0.0
        }
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

impl fmt::Display for StatsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "[{}] requests processed in [{:.1}] seconds with average time [{:.1}] ms, total throughput: [{:.2}] rps",
            self.succeeded,
            self.span.as_secs_f64(),
            millis(self.mean_latency),
            self.throughput()
        )?;
        write!(
            f,
            "[{}] failed, [{}] rate-limited (429), [{}] transient errors, [{}] retried; ",
            self.failed, self.rate_limited, self.transient, self.retried,
        )?;
        if self.succeeded == 0 {
            // Latencies are of successes: none is no figure, not 0 ms.
            write!(f, "latency [n/a] (no successful request)")?;
        } else {
            write!(
                f,
                "latency p50 [{:.1}] p90 [{:.1}] p95 [{:.1}] p99 [{:.1}] max [{:.1}] ms",
                millis(self.p50),
                millis(self.p90),
                millis(self.p95),
                millis(self.p99),
                millis(self.max)
            )?;
        }
        match self.sustained {
            Some(rate) => write!(
                f,
                "\nsustained [{rate:.2}] successful requests started per second"
            )?,
            None => write!(
                f,
                "\nsustained [n/a] successful requests started per second (too short a run: it needs a whole second between the first and the last start)"
            )?,
        }
        if !self.paused.is_zero() {
            write!(
                f,
                "\npaused [{:.1}] seconds (every worker)",
                self.paused.as_secs_f64()
            )?;
        }
        if self.rate_cuts > 0 {
            write!(
                f,
                "\n[{}] cuts of the rate: 429s persisted at the paced rate; [{:.2}] rps in force at the end",
                self.rate_cuts,
                self.rate_in_force.unwrap_or_default()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_line_has_the_tutorials_form() {
        let stats = Stats::new();
        let t0 = Instant::now() - Duration::from_secs(20);
        for i in 0..36u64 {
            let start = t0 + Duration::from_millis(250 * i);
            stats.record(
                AttemptKind::Success,
                start,
                start + Duration::from_millis(1164),
            );
        }
        stats.record(AttemptKind::RateLimited, t0, t0 + Duration::from_millis(2));
        let report = stats.report();
        let text = report.to_string();
        let first = text.lines().next().unwrap();
        assert_eq!(
            first,
            "[36] requests processed in [9.9] seconds with average time [1164.0] ms, total throughput: [3.63] rps"
        );
        assert!(text
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("[0] failed, [1] rate-limited (429), [0] transient errors, [0] retried"));
        assert!((report.p50.as_secs_f64() - 1.164).abs() < 0.002);
        // 36 starts spread over about 9 s of the past: 4 in every whole second.
        let sustained = report.sustained.unwrap();
        assert!((sustained - 4.0).abs() < 1e-9, "{sustained}");
        assert!(text.lines().nth(2).unwrap().starts_with("sustained ["));
    }

    #[test]
    fn no_successes_do_not_divide_by_zero() {
        let stats = Stats::new();
        let t0 = Instant::now();
        stats.record(AttemptKind::Failure, t0, t0 + Duration::from_millis(5));
        stats.record_failed_job();
        let first = stats.report().to_string();
        assert!(first.starts_with(
            "[0] requests processed in [0.0] seconds with average time [0.0] ms, total throughput: [0.00] rps"
        ));
        let empty = Stats::new().report();
        assert_eq!(empty.throughput(), 0.0);
        assert_eq!(empty.sustained, None);
    }

    #[test]
    fn cuts_of_the_rate_are_reported_only_when_there_were_some() {
        let stats = Stats::new();
        assert!(!stats.report().to_string().contains("cuts of the rate"));
        stats.set_pacing(PacingStatus {
            rate_in_force: crate::limiter::Rate::per_second(16.0),
            rate_cuts: 2,
            ..PacingStatus::default()
        });
        let report = stats.report();
        assert_eq!(report.rate_cuts, 2);
        let text = report.to_string();
        let line = text.lines().last().unwrap();
        assert_eq!(
            line,
            "[2] cuts of the rate: 429s persisted at the paced rate; [16.00] rps in force at the end"
        );
    }

    /// Regression: a run shorter than two seconds printed `sustained [0.00]`,
    /// as if nothing had been sustained at all.
    #[test]
    fn a_short_run_has_no_sustained_rate() {
        let stats = Stats::new();
        let t0 = Instant::now();
        for i in 0..10u64 {
            let start = t0 + Duration::from_millis(10 * i);
            stats.record(
                AttemptKind::Success,
                start,
                start + Duration::from_millis(5),
            );
        }
        let report = stats.report();
        assert_eq!(report.sustained, None);
        let text = report.to_string();
        let first = text.lines().next().unwrap();
        assert!(
            first.starts_with("[10] requests processed in [0.1] seconds"),
            "{first}"
        );
        assert!(
            text.lines().nth(2).unwrap().starts_with("sustained [n/a] "),
            "{text}"
        );
    }
}

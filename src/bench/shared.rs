//! A shared-limit sweep (`restb bench --shared-limit URL --processes LIST`):
//! P holders of one client key, each with its own pool and its own Redis
//! connection and heartbeat (as P processes have), drawing from one
//! schedule in Redis, against one built-in mock gateway that counts the
//! key's requests in Kong-style fixed one-second windows.
//!
//! The figure that matters is the gateway's: accepted requests per second
//! from the first accepted to the last (its own arrival log), as a share of
//! the allotment; with each holder's sustained rate against its fair share
//! and the Redis round trip of a reservation. The holders are threads of
//! this process, not processes: what differs from `scripts/shared_limit.sh`
//! (real processes, nginx in front) is only that they share one CPU
//! scheduler's view of time, not what they say to Redis.

use super::sweep::bench_jobs;
use restb::api::{Client, ClientConfig, ClientKey};
use restb::job::RestbWork;
use restb::limiter::{Rate, SharedPacing};
use restb::mock::{Arrival, HeaderStyle, MockConfig, MockServer};
use restb::pool::{Pool, PoolConfig, PoolSummary};
use restb::shared_limit::{
    RedisUrl, ScheduleKey, SharedLimit, SharedLimitConfig, SharedLimitError, SharedSchedule,
};
use restb::stop::Stop;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// What a shared-limit sweep measures: every holder count at every rate.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedSweepConfig {
    /// The Redis holding the schedule.
    pub url: RedisUrl,
    /// Holder (process) counts, in this order.
    pub processes: Vec<u32>,
    /// Allotted rates (whole numbers: the mock counts per window).
    pub rates: Vec<f64>,
    /// Requests per point, split evenly among the holders.
    pub requests: usize,
    /// The mock's latency.
    pub latency: Duration,
    /// Limit on each phase of a request.
    pub timeout: Duration,
}

/// One (rate, holders) point, as the gateway and the holders saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SharedPoint {
    /// Holders on the key.
    pub processes: u32,
    /// The allotted rate they share.
    pub rps: f64,
    /// Requests sent in all.
    pub requests: usize,
    /// Answered 200, by the gateway's count.
    pub accepted: u64,
    /// Answered 429, by the gateway's count.
    pub rate_limited: u64,
    /// The gateway's accepted requests per second, first to last accepted.
    pub accepted_rps: f64,
    /// `accepted_rps` as a percentage of `rps`.
    pub percent_of_allotment: f64,
    /// Each holder's sustained rate as a percentage of `rps / processes`
    /// (`null` for a run too short to have one).
    pub fair_share_percent: Vec<Option<f64>>,
    /// The largest of the holders' median Redis round trips, microseconds.
    pub redis_round_trip_p50_us: u64,
    /// The largest of their 99th percentiles, microseconds.
    pub redis_round_trip_p99_us: u64,
}

/// Measures every holder count at every rate (rates outer), calling
/// `on_point` as each is measured; stops before the next point once `stop`
/// is given.
///
/// # Errors
/// A mock that does not start, or a Redis that cannot be reached (the URL's
/// password hidden), before that point's first request.
pub fn shared_sweep(
    config: &SharedSweepConfig,
    stop: &Stop,
    mut on_point: impl FnMut(&SharedPoint),
) -> Result<Vec<SharedPoint>, String> {
    let mut points = Vec::new();
    for &rps in &config.rates {
        for &processes in &config.processes {
            if stop.is_stopped() {
                return Ok(points);
            }
            let point = measure(config, rps, processes, stop)?;
            on_point(&point);
            points.push(point);
        }
    }
    Ok(points)
}

/// One point: `processes` pools on one fresh key and one fresh mock.
fn measure(
    config: &SharedSweepConfig,
    rps: f64,
    processes: u32,
    stop: &Stop,
) -> Result<SharedPoint, String> {
    let mut mock_config = MockConfig::default();
    // The CLI checked the rate is whole and at most 10^6.
    mock_config.rps = Some(rps as u32);
    mock_config.latency = config.latency;
    mock_config.header_style = HeaderStyle::Kong2;
    let server = MockServer::start(mock_config)
        .map_err(|e| format!("cannot start the mock gateway on loopback: {e}"))?;
    // A key of its own per point: no schedule or pause left by the last one.
    let key = ClientKey::new(&format!("bench-shared-{:016x}", fastrand::u64(..)))
        .expect("a non-empty key");
    let rate = Rate::per_second(rps).ok_or_else(|| format!("--rps: '{rps}' is not a rate"))?;
    let holders = (0..processes)
        .map(|_| connect(config, &key, &server.base_url(), rate).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let share = config.requests / processes as usize;
    let summaries: Vec<Result<PoolSummary, String>> = std::thread::scope(|scope| {
        let runs: Vec<_> = holders
            .iter()
            .map(|schedule| {
                let (key, base_url) = (key.clone(), server.base_url());
                scope.spawn(move || run_holder(config, schedule, key, &base_url, rate, share, stop))
            })
            .collect();
        runs.into_iter()
            .map(|run| run.join().expect("a holder's pool does not panic"))
            .collect()
    });
    let summaries = summaries.into_iter().collect::<Result<Vec<_>, _>>()?;
    let arrivals = server.arrivals();
    server.stop();
    let (accepted, rate_limited, accepted_rps) = gateway_count(&arrivals);
    let fair = rps / f64::from(processes);
    let trips: Vec<_> = holders.iter().map(|h| h.limit().round_trips()).collect();
    Ok(SharedPoint {
        processes,
        rps,
        requests: share * processes as usize,
        accepted,
        rate_limited,
        accepted_rps: round(accepted_rps, 3),
        percent_of_allotment: round(100.0 * accepted_rps / rps, 1),
        fair_share_percent: summaries
            .iter()
            .map(|s| s.report.sustained.map(|r| round(100.0 * r / fair, 1)))
            .collect(),
        redis_round_trip_p50_us: trips.iter().map(|t| t.p50_us).max().unwrap_or(0),
        redis_round_trip_p99_us: trips.iter().map(|t| t.p99_us).max().unwrap_or(0),
    })
}

/// The gateway's figures: accepted, rate-limited, and accepted per second
/// from the first accepted arrival to the last.
fn gateway_count(arrivals: &[Arrival]) -> (u64, u64, f64) {
    let accepted: Vec<_> = arrivals.iter().filter(|a| a.status == 200).collect();
    let limited = arrivals.iter().filter(|a| a.status == 429).count() as u64;
    let span = match (accepted.first(), accepted.last()) {
        (Some(first), Some(last)) => last.at.duration_since(first.at).unwrap_or_default(),
        _ => Duration::ZERO,
    };
    let per_second = if span.is_zero() {
        0.0
    } else {
        (accepted.len() as f64 - 1.0) / span.as_secs_f64()
    };
    (accepted.len() as u64, limited, per_second)
}

/// One holder's connection to the schedule of `key` at `base_url`.
fn connect(
    config: &SharedSweepConfig,
    key: &ClientKey,
    base_url: &str,
    rate: Rate,
) -> Result<SharedSchedule, SharedLimitError> {
    let limit_config =
        SharedLimitConfig::new(config.url.clone(), ScheduleKey::new(key, base_url), rate);
    Ok(SharedSchedule::new(SharedLimit::connect(limit_config)?))
}

/// One holder's pool (threads sized automatically, as `restb run` does)
/// sending `count` predict calls (on `re_logo`) on the shared schedule.
fn run_holder(
    config: &SharedSweepConfig,
    schedule: &Arc<SharedSchedule>,
    key: ClientKey,
    base_url: &str,
    rate: Rate,
    count: usize,
    stop: &Stop,
) -> Result<PoolSummary, String> {
    let mut client_config = ClientConfig::default();
    client_config.base_url = base_url.to_string();
    client_config.timeout = config.timeout;
    let client = Client::new(key, &client_config).map_err(|e| e.to_string())?;
    let mut pool_config = PoolConfig::default();
    pool_config.rate = Some(rate);
    pool_config.shared = Some(SharedPacing::new(schedule.clone()));
    let pool = Pool::new(pool_config, stop.clone());
    Ok(pool.run(&RestbWork::new(client), bench_jobs(count), |_| Ok(())))
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

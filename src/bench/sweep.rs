//! Running the grid: one pool run of predict calls per (rate, threads) point.

use super::config::{validate, BenchError, Pacing, SweepConfig, Target};
use super::point::Point;
use restb::api::{Client, ClientConfig, ClientKey, ImageSource};
use restb::job::{Job, RestbWork};
use restb::limiter::Rate;
use restb::mock::{HeaderStyle, MockConfig, MockServer};
use restb::pool::{Pool, PoolConfig, PoolSummary, Threads};
use restb::stop::Stop;
use std::num::NonZeroUsize;

/// The model every bench request asks for (one `/vision/v2/predict` call each).
pub const BENCH_MODEL: &str = "re_logo";

/// Measures every thread count at every rate (rates outer, threads inner),
/// calling `on_point` as each point is measured.
///
/// With [`Target::Mock`] each point gets a fresh mock gateway allowing the
/// point's rate, so no point inherits another's window. Once `stop` is given,
/// the point in progress stops dispatching (its requests in flight finish; it
/// is kept with `complete: false`) and no further point starts. A point whose
/// key was refused (`aborted`) ends the sweep too.
///
/// # Errors
/// [`BenchError`] for a bad grid or base URL, before any request is sent; or
/// [`BenchError::Mock`] when a mock gateway does not start, in which case the
/// points measured so far were already handed to `on_point`.
pub fn sweep(
    config: &SweepConfig,
    target: &Target,
    stop: &Stop,
    mut on_point: impl FnMut(&Point),
) -> Result<Vec<Point>, BenchError> {
    validate(config, target)?;
    let mut points = Vec::new();
    'grid: for &rps in &config.rates {
        for &threads in &config.threads {
            if stop.is_stopped() {
                break 'grid;
            }
            let point = measure(config, target, threads, rps, stop)?;
            on_point(&point);
            let aborted = point.aborted;
            points.push(point);
            if aborted {
                break 'grid;
            }
        }
    }
    Ok(points)
}

/// One point: a pool of `threads` workers sending `config.requests` predict calls.
fn measure(
    config: &SweepConfig,
    target: &Target,
    threads: NonZeroUsize,
    rps: f64,
    stop: &Stop,
) -> Result<Point, BenchError> {
    let requests = config.requests.get();
    match target {
        Target::Mock { latency, jitter } => {
            let mut mock_config = MockConfig::default();
            // `validate` checked the rate is whole and at most 10^6.
            mock_config.rps = Some(rps as u32);
            mock_config.latency = *latency;
            mock_config.jitter = *jitter;
            mock_config.header_style = HeaderStyle::Kong2;
            let server = MockServer::start(mock_config)?;
            let key = ClientKey::new("bench-key").expect("a non-empty literal");
            let summary = run_pool(config, threads, rps, &server.base_url(), key, false, stop)?;
            server.stop();
            Ok(Point::from_summary(
                threads.get(),
                rps,
                requests,
                &summary,
                Some(*latency),
            ))
        }
        Target::Gateway {
            base_url,
            key,
            allow_http,
        } => {
            let summary = run_pool(
                config,
                threads,
                rps,
                base_url,
                key.clone(),
                *allow_http,
                stop,
            )?;
            Ok(Point::from_summary(
                threads.get(),
                rps,
                requests,
                &summary,
                None,
            ))
        }
    }
}

fn run_pool(
    config: &SweepConfig,
    threads: NonZeroUsize,
    rps: f64,
    base_url: &str,
    key: ClientKey,
    allow_http: bool,
    stop: &Stop,
) -> Result<PoolSummary, BenchError> {
    let mut client_config = ClientConfig::default();
    client_config.base_url = base_url.to_string();
    client_config.timeout = config.timeout;
    client_config.max_idle_connections = threads.get();
    client_config.allow_http = allow_http;
    let client = Client::new(key, &client_config)?;
    let mut pool_config = PoolConfig::default();
    pool_config.threads = Threads::Fixed(threads);
    pool_config.rate = match config.pacing {
        Pacing::Rate => Rate::per_second(rps),
        Pacing::Concurrency => None,
    };
    let pool = Pool::new(pool_config, stop.clone());
    let jobs = bench_jobs(config.requests.get());
    Ok(pool.run(&RestbWork::new(client), jobs, |_| Ok(())))
}

/// `count` predict jobs on [`BENCH_MODEL`], each with a distinct URL (the
/// tutorial's six demo images, told apart by a query string, so a real
/// gateway has real images to fetch and no answer can come from a cache).
pub fn bench_jobs(count: usize) -> Vec<Job> {
    (0..count)
        .map(|i| Job {
            id: (i + 1).to_string(),
            image: ImageSource::Url(format!(
                "https://demo.restb.ai/images/demo/demo-{}.jpg?bench={}",
                i % 6 + 1,
                i + 1
            )),
            models: vec![BENCH_MODEL.to_string()],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn bench_jobs_are_single_model_with_distinct_urls() {
        let jobs = bench_jobs(13);
        let urls: HashSet<String> = jobs.iter().map(|j| j.image.to_string()).collect();
        assert_eq!(urls.len(), 13);
        assert!(jobs
            .iter()
            .all(|j| j.models == vec![BENCH_MODEL.to_string()]));
    }

    #[test]
    fn a_stopped_sweep_measures_nothing() {
        let stop = Stop::new();
        stop.stop();
        let points = sweep(
            &SweepConfig::default(),
            &Target::tutorial_mock(),
            &stop,
            |_| {},
        )
        .unwrap();
        assert!(points.is_empty());
    }
}

//! `restb bench --shared-limit URL --processes LIST`: P holders of one key
//! sharing `--rps` through Redis, against the built-in mock; a table and
//! `--json` (no chart: the figure is one rate per point, not a curve).

use super::bench::BenchArgs;
use super::stdout::print_out;
use super::table::render;
use super::{Exit, UsageError};
use crate::bench::{shared_sweep, SharedPoint, SharedSweepConfig};
use restb::pool::Ending;
use restb::shared_limit::RedisUrl;
use restb::stop::Stop;
use serde::Serialize;
use std::time::Duration;

/// Most holders a point may have.
const MAX_PROCESSES: u32 = 64;

const HEADER: [&str; 7] = [
    "processes",
    "rps",
    "accepted",
    "% allot",
    "429s",
    "fair share",
    "rtt p50/p99 us",
];

/// What `--json` holds in this mode.
#[derive(Debug, Serialize)]
struct SharedReport<'a> {
    target: &'static str,
    shared_limit: String,
    latency_s: f64,
    requests: usize,
    points: &'a [SharedPoint],
}

/// Runs the shared-limit sweep; `url` is `--shared-limit`'s value.
pub(super) fn bench_shared(
    args: &BenchArgs,
    url: &str,
    quiet: bool,
    stop: &Stop,
) -> Result<Exit, UsageError> {
    let config = config(args, url)?;
    let json = super::bench::create(&args.json, "--json")?;
    if !quiet {
        eprintln!(
            "bench: {} processes on one key at {:?}/s via {}, {} requests per point",
            args.processes, config.rates, config.url, config.requests
        );
    }
    let mut measured = Vec::new();
    let result = shared_sweep(&config, stop, |point| {
        if !quiet {
            eprintln!("bench: {}", row(point).join("  "));
        }
        measured.push(point.clone());
    });
    let failed = result.err();
    if let Some(error) = &failed {
        eprintln!("Error: --shared-limit: {error}");
    }
    let rows: Vec<Vec<String>> = measured.iter().map(row).collect();
    print_out(&render(&HEADER, &rows))?;
    print_out("% allot: the mock's accepted requests per second, first to last, against --rps; fair share: each process's sustained rate against rps / processes\n")?;
    let report = SharedReport {
        target: "built-in mock",
        shared_limit: config.url.to_string(),
        latency_s: config.latency.as_secs_f64(),
        requests: config.requests,
        points: &measured,
    };
    super::bench::write_json(json, &report)
        .map_err(|e| super::bench::written_error("--json", &args.json, &e))?;
    let ending = match (&failed, stop.is_stopped()) {
        (Some(_), _) => return Ok(Exit::Usage),
        (None, true) => Ending::Stopped,
        (None, false) => Ending::Completed,
    };
    Ok(Exit::from_ending(&ending, 0))
}

fn config(args: &BenchArgs, url: &str) -> Result<SharedSweepConfig, UsageError> {
    if args.base_url.is_some() || args.mode != super::args::Mode::Rate {
        return Err(UsageError(
            "--shared-limit: measures the built-in mock in rate mode (no --base-url, no --mode concurrency)".into(),
        ));
    }
    let url = RedisUrl::parse(url).map_err(|e| UsageError(format!("--shared-limit {e}")))?;
    let rates = super::bench::parse_rates(&args.rps)?;
    if let Some(rate) = rates.iter().find(|r| r.fract() != 0.0 || **r > 1e6) {
        return Err(UsageError(format!(
            "--rps: '{rate}' is not a whole number up to 1000000 (the built-in mock allows whole requests per second)"
        )));
    }
    let processes = parse_processes(&args.processes)?;
    let most = processes.last().copied().unwrap_or(1);
    if args.requests.get() < most as usize {
        return Err(UsageError(format!(
            "--requests: {} is fewer than the {most} processes of --processes: each needs one at least",
            args.requests
        )));
    }
    Ok(SharedSweepConfig {
        url,
        processes,
        rates,
        requests: args.requests.get(),
        latency: Duration::from_secs_f64(args.latency.unwrap_or(super::bench::DEFAULT_LATENCY)),
        timeout: Duration::from_secs_f64(args.timeout),
    })
}

/// `--processes`: whole numbers in 1..=64, sorted, without repeats.
fn parse_processes(list: &str) -> Result<Vec<u32>, UsageError> {
    let mut processes = Vec::new();
    for item in list.split(',').map(str::trim) {
        match item.parse::<u32>() {
            Ok(n) if (1..=MAX_PROCESSES).contains(&n) => processes.push(n),
            _ => {
                return Err(UsageError(format!(
                    "--processes: '{item}' is not a whole number from 1 to {MAX_PROCESSES}"
                )))
            }
        }
    }
    processes.sort_unstable();
    processes.dedup();
    Ok(processes)
}

fn row(point: &SharedPoint) -> Vec<String> {
    let shares: Vec<f64> = point.fair_share_percent.iter().flatten().copied().collect();
    let low = shares.iter().copied().fold(f64::INFINITY, f64::min);
    let high = shares.iter().copied().fold(0.0, f64::max);
    let fair = if shares.is_empty() {
        "-".to_string()
    } else {
        format!("{low:.1}-{high:.1}%")
    };
    vec![
        point.processes.to_string(),
        point.rps.to_string(),
        format!("{}/{}", point.accepted, point.requests),
        format!("{:.1}%", point.percent_of_allotment),
        point.rate_limited.to_string(),
        fair,
        format!(
            "{}/{}",
            point.redis_round_trip_p50_us, point.redis_round_trip_p99_us
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_are_parsed_sorted_and_named_in_errors() {
        assert_eq!(parse_processes("4, 1,2,2").unwrap(), vec![1, 2, 4]);
        assert_eq!(
            parse_processes("1,0").unwrap_err().0,
            "--processes: '0' is not a whole number from 1 to 64"
        );
        assert!(parse_processes("65").is_err());
    }
}

//! `restb bench`: sweep thread counts (and rates) against a gateway; print a
//! table, write JSON and an SVG chart.

use super::args::{positive_number, positive_seconds, seconds, Mode};
use super::stdout::print_out;
use super::table::render;
use super::{Exit, UsageError};
use crate::bench::{
    render_svg, sweep, table_rows, BenchError, Pacing, Point, SweepConfig, SweepReport, Target,
    TABLE_HEADER,
};
use clap::Args;
use restb::pool::{AbortReason, Ending};
use restb::stop::Stop;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Most threads a point may run: as many as `restb run --threads auto` starts.
const MAX_THREADS: usize = 4096;
/// The built-in mock's latency when `--latency` is not given: the tutorial's.
pub(super) const DEFAULT_LATENCY: f64 = 1.16;

const BENCH_EXAMPLES: &str = "Examples:
  restb bench                                   # 1,2,4,8,16 threads at 4/s, 1.16 s latency (about 3 minutes)
  restb bench --threads 1,2,4,8 --rps 4,8 --latency 0.5 --requests 24
  restb bench --mode concurrency --threads 2,4,8
  RESTB_CLIENT_KEY=... restb bench --base-url https://api-us.restb.ai --rps 2 --threads 1,2,4
  restb bench --shared-limit redis://127.0.0.1:6379 --processes 1,2,4 --rps 100 --latency 0.05 --requests 1500";

/// `restb bench`.
#[derive(Debug, Args)]
#[command(after_help = BENCH_EXAMPLES)]
pub struct BenchArgs {
    /// Worker thread counts to measure, comma-separated.
    #[arg(long, default_value = "1,2,4,8,16", value_name = "LIST")]
    pub threads: String,
    /// Allotted requests per second, comma-separated: one series each (whole
    /// numbers for the built-in mock, which allows that many per one-second window).
    #[arg(long, default_value = "4", value_name = "LIST")]
    pub rps: String,
    /// How the allotment is enforced: rate paces request starts at --rps; concurrency
    /// runs the threads without pacing.
    #[arg(long, value_enum, default_value_t = Mode::Rate)]
    pub mode: Mode,
    /// Requests per point, each one predict call on re_logo with its own image URL;
    /// 10 x --rps or more spans some ten seconds at the allotted rate: enough whole
    /// seconds for a sustained rate, and a small edge effect of fixed windows on the
    /// throughput.
    #[arg(long, default_value = "40", value_name = "N", value_parser = request_count)]
    pub requests: NonZeroUsize,
    /// Latency of the built-in mock, in seconds [default: 1.16, the tutorial's].
    #[arg(long, value_name = "SECS", value_parser = seconds, allow_negative_numbers = true)]
    pub latency: Option<f64>,
    /// Uniform +- jitter on the built-in mock's latency, in seconds [default: 0].
    #[arg(long, value_name = "SECS", value_parser = seconds, allow_negative_numbers = true)]
    pub jitter: Option<f64>,
    /// Measure this gateway instead of the built-in mock (the key comes from RESTB_CLIENT_KEY).
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Permit a plain http:// --base-url to a host that is not loopback.
    #[arg(long)]
    pub allow_http: bool,
    /// Deadline of each request as a whole (connect, send, reply head and body), in seconds.
    #[arg(long, default_value = "30", value_name = "SECS", value_parser = positive_seconds, allow_negative_numbers = true)]
    pub timeout: f64,
    /// Write the settings and points as JSON to FILE.
    #[arg(long, default_value = "bench.json", value_name = "FILE")]
    pub json: PathBuf,
    /// Write the chart (sustained rate against threads; see --requests) as SVG to FILE.
    #[arg(long, default_value = "bench.svg", value_name = "FILE")]
    pub svg: PathBuf,
    /// Measure P processes on one client key sharing --rps through this Redis
    /// (redis://[:PASSWORD@]HOST[:PORT][/DB]) instead of a thread sweep: each
    /// sizes its own pool; --requests is split among them; no chart is written.
    #[cfg(feature = "redis")]
    #[arg(long, value_name = "URL", conflicts_with_all = ["threads", "base_url", "jitter", "svg"])]
    pub shared_limit: Option<String>,
    /// With --shared-limit: the process counts to measure, comma-separated.
    #[cfg(feature = "redis")]
    #[arg(
        long,
        default_value = "1,2,4",
        value_name = "LIST",
        requires = "shared_limit"
    )]
    pub processes: String,
}

/// The most requests a point takes: its jobs are built before it runs, and
/// at 4,000 per second of the fastest mock, ten million take 40 minutes.
const MAX_REQUESTS: usize = 10_000_000;

/// `--requests`: a whole number from 1 to [`MAX_REQUESTS`].
fn request_count(text: &str) -> Result<NonZeroUsize, String> {
    match text.parse::<NonZeroUsize>() {
        Ok(n) if n.get() <= MAX_REQUESTS => Ok(n),
        _ => Err(format!(
            "'{text}' is not a whole number from 1 to {MAX_REQUESTS}"
        )),
    }
}

pub(super) fn bench(args: &BenchArgs, quiet: bool, stop: &Stop) -> Result<Exit, UsageError> {
    #[cfg(feature = "redis")]
    if let Some(url) = &args.shared_limit {
        return super::bench_shared::bench_shared(args, url, quiet, stop);
    }
    let config = sweep_config(args)?;
    let target = target(args)?;
    crate::bench::validate(&config, &target).map_err(flag_error)?;
    // The chart would be written over the JSON.
    super::run_files::refuse_one_file_twice(
        &[("--json", &args.json), ("--svg", &args.svg)],
        "the bench",
    )?;
    let json = create(&args.json, "--json")?;
    let svg = create(&args.svg, "--svg")?;
    if !quiet {
        eprintln!(
            "bench: {} points of {} requests against {}",
            config.threads.len() * config.rates.len(),
            config.requests,
            describe(&target)
        );
    }
    let mut measured = Vec::new();
    let result = sweep(&config, &target, stop, |point| {
        if !quiet {
            eprintln!("{}", progress(point));
        }
        measured.push(point.clone());
    });
    if let Err(error) = result {
        // Points measured before a mock failed to start are still worth keeping.
        eprintln!("Error: {}", flag_error(error));
    }
    let table = render(&TABLE_HEADER, &table_rows(&measured));
    print_out(&format!("{table}{}\n", prediction_note(&target)))?;
    let title = format!(
        "restb bench: {}, {} mode, {} requests per point",
        describe(&target),
        pacing_name(config.pacing),
        config.requests
    );
    let svg_text = render_svg(&measured, &title);
    let report = SweepReport::new(&config, &target, measured);
    write_json(json, &report).map_err(|e| written_error("--json", &args.json, &e))?;
    write_text(svg, &svg_text).map_err(|e| written_error("--svg", &args.svg, &e))?;
    if !quiet {
        eprintln!(
            "bench: wrote {} and {}",
            args.json.display(),
            args.svg.display()
        );
    }
    Ok(exit_status(&report.points, stop))
}

fn exit_status(points: &[Point], stop: &Stop) -> Exit {
    let ending = if points.iter().any(|p| p.aborted) {
        eprintln!("Error: the gateway refused the client key; the sweep stopped there");
        Ending::Aborted {
            reason: AbortReason::Job,
        }
    } else if stop.is_stopped() {
        eprintln!("interrupted: the table and files hold the points measured so far");
        Ending::Stopped
    } else {
        Ending::Completed
    };
    // A sweep measures: failed requests are figures in its table, not a
    // failure of the command.
    Exit::from_ending(&ending, 0)
}

fn sweep_config(args: &BenchArgs) -> Result<SweepConfig, UsageError> {
    Ok(SweepConfig {
        threads: parse_threads(&args.threads)?,
        rates: parse_rates(&args.rps)?,
        requests: args.requests,
        pacing: match args.mode {
            Mode::Rate => Pacing::Rate,
            Mode::Concurrency => Pacing::Concurrency,
        },
        timeout: Duration::from_secs_f64(args.timeout),
    })
}

/// `--threads`: positive whole numbers up to [`MAX_THREADS`], sorted, without repeats.
fn parse_threads(list: &str) -> Result<Vec<NonZeroUsize>, UsageError> {
    let mut threads = Vec::new();
    for item in list.split(',').map(str::trim) {
        let n = item.parse::<NonZeroUsize>().map_err(|_| {
            UsageError(format!(
                "--threads: '{item}' is not a positive whole number"
            ))
        })?;
        if n.get() > MAX_THREADS {
            return Err(UsageError(format!(
                "--threads: '{item}' is more than {MAX_THREADS}"
            )));
        }
        threads.push(n);
    }
    threads.sort_unstable();
    threads.dedup();
    Ok(threads)
}

/// `--rps`: positive numbers, in the order given, without repeats.
pub(super) fn parse_rates(list: &str) -> Result<Vec<f64>, UsageError> {
    let mut rates: Vec<f64> = Vec::new();
    for item in list.split(',').map(str::trim) {
        let rate = positive_number(item).map_err(|e| UsageError(format!("--rps: {e}")))?;
        if !rates.contains(&rate) {
            rates.push(rate);
        }
    }
    Ok(rates)
}

fn target(args: &BenchArgs) -> Result<Target, UsageError> {
    let Some(base_url) = &args.base_url else {
        return Ok(Target::Mock {
            latency: Duration::from_secs_f64(args.latency.unwrap_or(DEFAULT_LATENCY)),
            jitter: Duration::from_secs_f64(args.jitter.unwrap_or(0.0)),
        });
    };
    for (flag, value) in [("--latency", args.latency), ("--jitter", args.jitter)] {
        if value.is_some() {
            return Err(UsageError(format!(
                "{flag}: sets the built-in mock only; an external gateway (--base-url) has its own"
            )));
        }
    }
    let key = super::plan::key_from_env("--base-url: ")?
        .ok_or_else(|| UsageError("--base-url: no client key: set RESTB_CLIENT_KEY".to_string()))?;
    Ok(Target::Gateway {
        base_url: base_url.clone(),
        key,
        allow_http: args.allow_http,
    })
}

/// A library error, prefixed with the flag to fix.
fn flag_error(error: BenchError) -> UsageError {
    UsageError(match &error {
        // Their messages start with the flag's name.
        BenchError::NoThreads
        | BenchError::NoRates
        | BenchError::BadRate(_)
        | BenchError::FractionalMockRate(_) => format!("--{error}"),
        BenchError::BaseUrl(inner) => format!("--base-url: {inner}"),
        BenchError::Mock(_) => error.to_string(),
    })
}

/// Opens an output file before the sweep (a bad path measures nothing), but
/// empties it only when its new content is written: a bad `--svg` must not
/// have emptied the `--json` of the run before.
pub(super) fn create(path: &Path, flag: &str) -> Result<File, UsageError> {
    super::run_files::open_kept(path)
        .map_err(|e| UsageError(format!("{flag}: cannot create {}: {e}", path.display())))
}

/// A file of [`create`], emptied for its new content.
fn emptied(file: File) -> std::io::Result<File> {
    super::run_files::empty_for_writing(&file)?;
    Ok(file)
}

pub(super) fn write_json(file: File, report: &impl serde::Serialize) -> std::io::Result<()> {
    let mut out = BufWriter::new(emptied(file)?);
    serde_json::to_writer_pretty(&mut out, report)?;
    writeln!(out)?;
    out.flush()
}

fn write_text(file: File, text: &str) -> std::io::Result<()> {
    let mut out = BufWriter::new(emptied(file)?);
    out.write_all(text.as_bytes())?;
    out.flush()
}

pub(super) fn written_error(flag: &str, path: &Path, error: &std::io::Error) -> UsageError {
    UsageError(format!("{flag}: cannot write {}: {error}", path.display()))
}

fn describe(target: &Target) -> String {
    match target {
        Target::Mock { latency, jitter } if jitter.is_zero() => {
            format!("the built-in mock (latency {:.2} s)", latency.as_secs_f64())
        }
        Target::Mock { latency, jitter } => format!(
            "the built-in mock (latency {:.2} s +- {:.2} s)",
            latency.as_secs_f64(),
            jitter.as_secs_f64()
        ),
        Target::Gateway { base_url, .. } => base_url.clone(),
    }
}

fn pacing_name(pacing: Pacing) -> &'static str {
    match pacing {
        Pacing::Rate => "rate",
        Pacing::Concurrency => "concurrency",
    }
}

fn progress(point: &Point) -> String {
    format!(
        "bench: {} thread{} at {}/s: {}/s sustained, {:.2}/s throughput ({}/{} ok, {} 429s, {} transient){}",
        point.threads,
        if point.threads == 1 { "" } else { "s" },
        point.rps,
        point
            .sustained_rps
            .map_or_else(|| "n/a".to_string(), |r| format!("{r:.2}")),
        point.throughput_rps,
        point.succeeded,
        point.requests,
        point.rate_limited,
        point.transient,
        if point.complete { "" } else { " (stopped)" }
    )
}

fn prediction_note(target: &Target) -> String {
    let latency = match target {
        Target::Mock { latency, .. } => {
            format!("the mock's configured {:.2} s", latency.as_secs_f64())
        }
        Target::Gateway { .. } => "the measured mean".to_string(),
    };
    format!("predicted/s: Little's law, min(threads / latency, rps), with latency = {latency}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_parsed_sorted_and_named_in_errors() {
        let threads: Vec<usize> = parse_threads("8, 1,2,2")
            .unwrap()
            .iter()
            .map(|n| n.get())
            .collect();
        assert_eq!(threads, vec![1, 2, 8]);
        assert_eq!(
            parse_threads("1,0").unwrap_err().0,
            "--threads: '0' is not a positive whole number"
        );
        assert_eq!(
            parse_threads("").unwrap_err().0,
            "--threads: '' is not a positive whole number"
        );
        assert!(parse_threads("5000")
            .unwrap_err()
            .0
            .starts_with("--threads:"));
        assert_eq!(parse_rates("4,2.5,4").unwrap(), vec![4.0, 2.5]);
        assert_eq!(
            parse_rates("4,x").unwrap_err().0,
            "--rps: 'x' is not a positive number"
        );
    }

    #[test]
    fn library_errors_name_the_flag() {
        assert_eq!(
            flag_error(BenchError::FractionalMockRate(2.5)).0,
            "--rps: '2.5' is not a whole number (the built-in mock allows whole requests per second)"
        );
    }
}

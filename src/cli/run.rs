//! `restb run`: check everything, then process the batch.

use super::args::{Mode, RunArgs, ThreadsArg};
use super::progress;
use super::{Exit, UsageError};
use restb::api::{Client, ClientConfig, ClientKey};
use restb::input::{self, Format, ReadOptions, Record};
use restb::job::{jobs_from_records, CallOutput, Job, RestbWork};
use restb::limiter::Rate;
use restb::models;
use restb::output::{open_for_resume, OutcomeLine, OutcomeWriter};
use restb::pool::{Finished, Pool, PoolConfig, PoolSummary, Sink, Threads};
use restb::retry::RetryPolicy;
use restb::stop::Stop;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Most threads `--threads auto` starts: about 1000 in flight is the
/// largest load we plan for, with room for latency spikes.
const AUTO_MAX_THREADS: usize = 4096;

/// Longest `--timeout`.
const MAX_TIMEOUT: Duration = Duration::from_secs(86_400);

/// Runs a batch; every check happens before the first request.
pub(super) fn run(args: &RunArgs, quiet: bool, stop: &Stop) -> Result<Exit, UsageError> {
    if Rate::per_second(args.rps).is_none() {
        return Err(UsageError(format!(
            "--rps: '{}' is out of range ({} to {} requests per second)",
            args.rps,
            Rate::MIN_PER_SECOND,
            Rate::MAX_PER_SECOND
        )));
    }
    let key = client_key(args)?;
    let default_models = default_models(args)?;
    let pool_config = pool_config(args);
    #[cfg(feature = "redis")]
    let key_for_shared = key.clone();
    let client_config = ClientConfig {
        base_url: args
            .base_url
            .clone()
            .unwrap_or_else(|| args.region.base_url().to_string()),
        timeout: Duration::try_from_secs_f64(args.timeout)
            .ok()
            .filter(|t| *t <= MAX_TIMEOUT)
            .ok_or_else(|| {
                UsageError(format!(
                    "--timeout: at most {} seconds",
                    MAX_TIMEOUT.as_secs()
                ))
            })?,
        max_idle_connections: match pool_config.threads {
            Threads::Fixed(n) => n.get(),
            Threads::Auto { .. } => 1024,
        },
        allow_http: args.allow_http,
    };
    let client =
        Client::new(key, &client_config).map_err(|e| UsageError(format!("--base-url: {e}")))?;
    let records = read_input(args)?;
    let stats_file = match &args.stats_json {
        Some(path) => Some((
            File::create(path).map_err(|e| {
                UsageError(format!(
                    "--stats-json: cannot create {}: {e}",
                    path.display()
                ))
            })?,
            path,
        )),
        None => None,
    };
    let mut jobs = jobs_from_records(records, &default_models, args.per_model);
    let mut earlier_failures = 0;
    let out: Box<dyn Write + Send> =
        match &args.output {
            Some(path) if args.resume => {
                let (file, done) = open_for_resume(path).map_err(|e| {
                    UsageError(format!("--resume: cannot read {}: {e}", path.display()))
                })?;
                let before = jobs.len();
                earlier_failures = jobs
                    .iter()
                    .filter(|job| done.failed(&job.key()) && !args.retry_failed)
                    .count();
                jobs.retain(|job| !done.covers(&job.key(), args.retry_failed));
                if !quiet {
                    log::info!(
                        "resuming: {} of {before} jobs already done in {}",
                        before - jobs.len(),
                        path.display()
                    );
                }
                Box::new(file)
            }
            Some(path) => Box::new(File::create(path).map_err(|e| {
                UsageError(format!("--output: cannot create {}: {e}", path.display()))
            })?),
            None => Box::new(io::stdout()),
        };
    if !quiet {
        log::info!(
            "{} jobs, {} at {}, threads {}",
            jobs.len(),
            if args.per_model {
                "one request per image and model"
            } else {
                "one request per image"
            },
            match args.mode {
                Mode::Rate => format!("{} requests/s", args.rps),
                Mode::Concurrency => "no pacing".to_string(),
            },
            match pool_config.threads {
                Threads::Fixed(n) => n.to_string(),
                Threads::Auto { .. } => "auto".to_string(),
            }
        );
    }
    #[cfg(feature = "redis")]
    let shared = super::shared::connect(
        args,
        &key_for_shared,
        &client_config.base_url,
        pool_config.rate,
    )?;
    #[cfg(feature = "redis")]
    let pool_config = PoolConfig {
        shared: shared.clone().map(|s| restb::limiter::SharedPacing::new(s)),
        ..pool_config
    };
    let allotted = pool_config.rate.map(|r| r.per_second_f64());
    let pool = Pool::new(pool_config, stop.clone());
    let job_count = jobs.len() as u64;
    let bar = progress::bar(job_count, quiet);
    let mut sink = RunSink::new(OutcomeWriter::new(out), args.summary);
    let done = AtomicBool::new(false);
    /// Ends the progress thread however the run ends (a panic included).
    struct DoneOnDrop<'a>(&'a AtomicBool);
    impl Drop for DoneOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Release);
        }
    }
    let summary = std::thread::scope(|scope| {
        let _done_on_drop = DoneOnDrop(&done);
        if let Some(bar) = &bar {
            crate::logging::set_progress(Some(bar.clone()));
            let (stats, done) = (pool.stats(), &done);
            scope.spawn(move || progress::follow(bar, stats, allotted, done));
        }
        pool.run_into(&RestbWork::new(client), jobs, &mut sink)
    });
    crate::logging::set_progress(None);
    if let Some(rows) = &sink.summary {
        eprint!("{}", restb::report::results_table(rows.iter()));
    }
    eprintln!("{}", summary.report);
    eprintln!("[{}] worker threads at most", summary.peak_threads);
    #[cfg(feature = "redis")]
    if let Some(shared) = &shared {
        super::shared::report(shared);
    }
    if let Some((file, path)) = stats_file {
        let stats = StatsFile::new(&summary, &sink, job_count, allotted, args.mode);
        serde_json::to_writer_pretty(file, &stats).map_err(|e| {
            UsageError(format!(
                "--stats-json: cannot write {}: {e}",
                path.display()
            ))
        })?;
    }
    if earlier_failures > 0 {
        eprintln!("{earlier_failures} jobs failed in an earlier run; --retry-failed redoes them");
    }
    let exit = exit_status(&summary, args.output.as_deref());
    Ok(if exit == Exit::Success && earlier_failures > 0 {
        Exit::Failure
    } else {
        exit
    })
}

/// The outcome file's writer, counting outcomes by status on the way (and
/// keeping the lines for `--summary`).
struct RunSink {
    writer: OutcomeWriter<Box<dyn Write + Send>>,
    by_status: BTreeMap<String, u64>,
    by_http_status: BTreeMap<String, u64>,
    summary: Option<Vec<OutcomeLine>>,
}

impl RunSink {
    fn new(writer: OutcomeWriter<Box<dyn Write + Send>>, keep_lines: bool) -> RunSink {
        RunSink {
            writer,
            by_status: BTreeMap::new(),
            by_http_status: BTreeMap::new(),
            summary: keep_lines.then(Vec::new),
        }
    }
}

impl Sink<Job, CallOutput> for &mut RunSink {
    fn record(&mut self, finished: Finished<Job, CallOutput>) -> io::Result<()> {
        let line = OutcomeLine::from_finished(finished);
        *self.by_status.entry(line.status.clone()).or_default() += 1;
        let http = line
            .http_status
            .map_or_else(|| "none".to_string(), |s| s.to_string());
        *self.by_http_status.entry(http).or_default() += 1;
        self.writer.write(&line)?;
        if let Some(lines) = self.summary.as_mut() {
            lines.push(line);
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

/// `--stats-json`: every figure of the final stats.
#[derive(Debug, Serialize)]
struct StatsFile<'a> {
    jobs: u64,
    finished: u64,
    unfinished: u64,
    by_status: &'a BTreeMap<String, u64>,
    by_http_status: &'a BTreeMap<String, u64>,
    succeeded: u64,
    failed: u64,
    rate_limited: u64,
    transient_errors: u64,
    retried: u64,
    span_s: f64,
    mean_latency_ms: f64,
    p50_ms: f64,
    p90_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    throughput_rps: f64,
    sustained_rps: f64,
    allotted_rps: Option<f64>,
    mode: &'static str,
    threads_peak: usize,
    interrupted: bool,
    aborted: bool,
}

impl<'a> StatsFile<'a> {
    fn new(
        summary: &PoolSummary,
        sink: &'a RunSink,
        jobs: u64,
        allotted: Option<f64>,
        mode: Mode,
    ) -> StatsFile<'a> {
        let report = &summary.report;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        StatsFile {
            jobs,
            finished: summary.finished,
            unfinished: summary.unfinished,
            by_status: &sink.by_status,
            by_http_status: &sink.by_http_status,
            succeeded: report.succeeded,
            failed: report.failed,
            rate_limited: report.rate_limited,
            transient_errors: report.transient,
            retried: report.retried,
            span_s: report.span.as_secs_f64(),
            mean_latency_ms: ms(report.mean_latency),
            p50_ms: ms(report.p50),
            p90_ms: ms(report.p90),
            p95_ms: ms(report.p95),
            p99_ms: ms(report.p99),
            max_ms: ms(report.max),
            throughput_rps: report.throughput(),
            sustained_rps: report.sustained,
            allotted_rps: allotted,
            mode: match mode {
                Mode::Rate => "rate",
                Mode::Concurrency => "concurrency",
            },
            threads_peak: summary.peak_threads,
            interrupted: summary.stopped && !summary.aborted,
            aborted: summary.aborted,
        }
    }
}

fn exit_status(summary: &PoolSummary, output: Option<&Path>) -> Exit {
    if let Some(error) = &summary.sink_error {
        eprintln!("Error: writing outcomes failed: {error}");
    }
    if summary.aborted {
        eprintln!(
            "Error: stopped without sending the rest (see the error above: the API refused the client key, or its TLS certificate was refused)"
        );
        return Exit::Failure;
    }
    if summary.stopped {
        match output {
            Some(path) => eprintln!(
                "interrupted: {} jobs not done; run the same command with --resume to finish them (outcomes so far are in {})",
                summary.unfinished,
                path.display()
            ),
            None => eprintln!("interrupted: {} jobs not done", summary.unfinished),
        }
        return if summary.sink_error.is_some() {
            Exit::Failure
        } else {
            Exit::Interrupted
        };
    }
    if summary.report.failed > 0 || summary.sink_error.is_some() {
        Exit::Failure
    } else {
        Exit::Success
    }
}

fn client_key(args: &RunArgs) -> Result<ClientKey, UsageError> {
    match &args.client_key_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                UsageError(format!(
                    "--client-key-file: cannot read {}: {e}",
                    path.display()
                ))
            })?;
            ClientKey::new(&text).ok_or_else(|| {
                UsageError(format!("--client-key-file: {} is empty", path.display()))
            })
        }
        None => match std::env::var("RESTB_CLIENT_KEY") {
            Ok(text) => ClientKey::new(&text)
                .ok_or_else(|| UsageError("RESTB_CLIENT_KEY is empty".to_string())),
            Err(_) => Err(UsageError(
                "no client key: set RESTB_CLIENT_KEY or pass --client-key-file FILE".to_string(),
            )),
        },
    }
}

fn default_models(args: &RunArgs) -> Result<Vec<String>, UsageError> {
    let Some(list) = &args.models else {
        return Ok(models::default_models());
    };
    let list: Vec<String> = list
        .iter()
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty())
        .collect();
    if list.is_empty() {
        return Err(UsageError("--models: the list is empty".to_string()));
    }
    if !args.allow_unknown_models {
        if let Some(unknown) = list.iter().find(|m| !models::is_known(m)) {
            return Err(UsageError(format!(
                "--models: unknown model id '{unknown}' (known: {}); pass --allow-unknown-models to send it anyway",
                models::known().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    Ok(list)
}

fn read_input(args: &RunArgs) -> Result<Vec<Record>, UsageError> {
    let stdin = args.input == "-";
    let format = args.format.unwrap_or_else(|| {
        if stdin {
            Format::Lines
        } else {
            Format::from_path(Path::new(&args.input))
        }
    });
    let options = ReadOptions {
        format,
        allow_unknown_models: args.allow_unknown_models,
        check_files: true,
    };
    let records = if stdin {
        input::read_records(io::stdin().lock(), "<stdin>", &options)
    } else {
        input::read_path(Path::new(&args.input), &options)
    };
    records.map_err(|e| UsageError(e.to_string()))
}

fn pool_config(args: &RunArgs) -> PoolConfig {
    let auto_max = NonZeroUsize::new(AUTO_MAX_THREADS).expect("not zero");
    let (rate, threads) = match args.mode {
        Mode::Rate => {
            let threads = match args.threads {
                ThreadsArg::Auto => Threads::Auto { max: auto_max },
                ThreadsArg::Fixed(n) => Threads::Fixed(n),
            };
            (Rate::per_second(args.rps), threads)
        }
        Mode::Concurrency => {
            // The older plan: the allotment is a number of requests in flight.
            let threads = match args.threads {
                ThreadsArg::Auto => {
                    NonZeroUsize::new((args.rps.ceil() as usize).min(AUTO_MAX_THREADS))
                        .unwrap_or(NonZeroUsize::MIN)
                }
                ThreadsArg::Fixed(n) => n,
            };
            (None, Threads::Fixed(threads))
        }
    };
    PoolConfig {
        threads,
        rate,
        align_to_windows: rate.is_some(),
        retry: RetryPolicy {
            max_attempts: args.max_attempts,
            ..RetryPolicy::default()
        },
        ..PoolConfig::default()
    }
}

//! `restb run`: plan (every check), execute, report.

use super::args::{Mode, RunArgs};
use super::plan::Plan;
use super::progress;
use super::run_files::StatsOut;
use super::{Exit, UsageError};
use restb::api::Quota;
use restb::job::{CallOutput, Job, RestbWork};
use restb::outcome::{OutcomeLine, OutcomeWriter};
use restb::pool::{AbortReason, Ending, Finished, Pool, PoolSummary, Sink};
use restb::stop::Stop;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Runs a batch: plan (every check, before the first request), execute,
/// report.
pub(super) fn run(args: &RunArgs, quiet: bool, stop: &Stop) -> Result<Exit, UsageError> {
    if args.dry_run {
        return super::dry_run::dry_run(args, quiet);
    }
    let plan = Plan::new(args, quiet)?;
    if !quiet {
        plan.log();
    }
    #[cfg(feature = "redis")]
    let shared = plan.shared.clone();
    let run = execute(plan, quiet, stop);
    #[cfg(feature = "redis")]
    let run = Finish {
        shared: shared.as_deref().map(super::shared::stats),
        ..run
    };
    Ok(report(args, run))
}

/// The shared limit's part of the stats (`--shared-limit` runs only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(super) struct SharedStats {
    /// Slots booked in Redis (one round trip each).
    pub(super) reservations: u64,
    /// Median Redis round trip of a reservation; `null` with none.
    pub(super) redis_round_trip_p50_us: Option<u64>,
    /// 99th percentile of the same.
    pub(super) redis_round_trip_p99_us: Option<u64>,
}

impl SharedStats {
    /// The stats line, written even with `--quiet` like the rest.
    fn line(&self) -> String {
        let us = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
        format!(
            "shared limit: [{}] reservations, Redis round trip p50 [{}] us, p99 [{}] us",
            self.reservations,
            us(self.redis_round_trip_p50_us),
            us(self.redis_round_trip_p99_us)
        )
    }
}

/// What a finished run leaves for the report.
struct Finish<'a> {
    summary: PoolSummary,
    sink: RunSink,
    /// Every reply by HTTP status, retried ones included.
    replies: BTreeMap<String, u64>,
    jobs: u64,
    allotted: Option<f64>,
    stats_file: Option<StatsOut<'a>>,
    earlier_failures: u64,
    /// The hour, day and month windows the replies reported last.
    quota: Quota,
    /// Why the input stopped early: it changed after it was checked.
    input_error: Option<String>,
    /// Reservations and Redis round trips of `--shared-limit`.
    shared: Option<SharedStats>,
}

/// Runs the plan's jobs on the pool, with the progress bar when there is one.
fn execute<'a>(mut plan: Plan<'a>, quiet: bool, stop: &Stop) -> Finish<'a> {
    let allotted = plan.pool_config.rate.map(|r| r.per_second_f64());
    // Every check passed: from here a signal lets the requests in flight finish.
    crate::signals::stop_gracefully_from_now();
    let pool = Pool::new(plan.pool_config, stop.clone());
    let jobs = plan.jobs.len() as u64;
    let bar = progress::bar(jobs, quiet);
    let mut sink = RunSink::new(OutcomeWriter::new(plan.out), plan.args.summary);
    let work = RestbWork::new(plan.client).warn_when_quota_below(jobs);
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
            let (stats, work, done) = (pool.stats(), &work, &done);
            scope.spawn(move || progress::follow(bar, (stats, work), allotted, done));
        }
        pool.run_into(&work, &mut plan.jobs, &mut sink)
    });
    crate::logging::set_progress(None);
    Finish {
        summary,
        sink,
        replies: work.replies_by_http_status(),
        quota: work.quota(),
        jobs,
        allotted,
        stats_file: plan.stats_file,
        earlier_failures: plan.earlier_failures,
        input_error: plan.jobs.error(),
        shared: None,
    }
}

/// Prints the summary, writes `--stats-json`, and says how the run ended.
fn report(args: &RunArgs, run: Finish<'_>) -> Exit {
    let Finish {
        mut summary,
        sink,
        replies,
        jobs,
        allotted,
        stats_file,
        earlier_failures,
        quota,
        input_error,
        shared,
    } = run;
    print_stats(&sink, &summary, shared.as_ref(), &quota);
    if input_error.is_some() {
        // The feed ended at the error: the jobs after it were never fed.
        summary.unfinished = jobs.saturating_sub(summary.finished);
    }
    // A stats file that cannot be written does not hide how the run ended.
    let stats_error = stats_file.and_then(|out| {
        let mut stats = StatsFile::new(&summary, &sink, &replies, jobs, allotted, args.mode);
        stats.quota = Some(quota).filter(|q| !q.is_empty());
        stats.shared_limit = shared;
        out.write(&stats).err()
    });
    if earlier_failures > 0 {
        eprintln!("{earlier_failures} jobs failed in an earlier run; --retry-failed redoes them");
    }
    let exit = exit_status(&summary, args.output.as_deref(), args.max_pause);
    if let Some(error) = &input_error {
        eprintln!(
            "Error: {error}; the {} jobs after it were not sent{}",
            summary.unfinished,
            resume_advice(args.output.as_deref(), "once that is fixed, ")
        );
    }
    if let Some(error) = &stats_error {
        eprintln!("Error: {error}");
    }
    let clean = earlier_failures == 0 && input_error.is_none() && stats_error.is_none();
    if exit == Exit::Success && !clean {
        Exit::Failure
    } else {
        exit
    }
}

/// The stats on standard error: `--summary`'s table, the tutorial's line
/// and the rest, the shared limit's round trips, the quota.
fn print_stats(sink: &RunSink, summary: &PoolSummary, shared: Option<&SharedStats>, quota: &Quota) {
    if let Some(rows) = &sink.summary {
        eprint!("{}", restb::report::results_table(rows.iter()));
        if sink.left_out_of_summary > 0 {
            eprintln!(
                "[{}] more outcomes are not in this table (it shows the first {SUMMARY_ROWS}): \
                 `restb report` on the outcome file summarises them all",
                sink.left_out_of_summary
            );
        }
    }
    eprintln!("{}", summary.report);
    eprintln!("[{}] worker threads at most", summary.peak_threads);
    match shared {
        Some(shared) => eprintln!("{}", shared.line()),
        // The usual cause of persisting 429s: more clients on the key.
        None if summary.report.rate_cuts > 0 => eprintln!(
            "429s persisted at the paced rate: another client may be using this key (or its \
             allotment is below --rps); --shared-limit redis://HOST gives every process on one \
             key one schedule"
        ),
        None => {}
    }
    if !quota.is_empty() {
        eprintln!("quota: {quota} (the gateway's last word)");
    }
}

/// The most outcome lines `--summary` keeps for its table: each holds its
/// whole answer, and a run of millions would otherwise hold them all until
/// its end (`restb report` summarises a whole outcome file in bounded
/// memory).
const SUMMARY_ROWS: usize = 1000;

/// The outcome file's writer, counting outcomes by status on the way (and
/// keeping the first lines for `--summary`).
struct RunSink {
    writer: OutcomeWriter<Box<dyn Write + Send>>,
    by_status: BTreeMap<String, u64>,
    by_http_status: BTreeMap<String, u64>,
    /// Lines recorded since the last flush, by status and HTTP status:
    /// counted with the others once written (as `finished` is), so that
    /// the stats of a run whose writes failed agree with each other.
    unflushed: Vec<(String, String)>,
    summary: Option<Vec<OutcomeLine>>,
    /// Outcomes past `SUMMARY_ROWS`, left out of the table.
    left_out_of_summary: u64,
}

impl RunSink {
    fn new(writer: OutcomeWriter<Box<dyn Write + Send>>, keep_lines: bool) -> RunSink {
        RunSink {
            writer,
            by_status: BTreeMap::new(),
            by_http_status: BTreeMap::new(),
            unflushed: Vec::new(),
            summary: keep_lines.then(Vec::new),
            left_out_of_summary: 0,
        }
    }
}

impl Sink<Job, CallOutput> for &mut RunSink {
    fn record(&mut self, finished: Finished<Job, CallOutput>) -> io::Result<()> {
        let line = OutcomeLine::from_finished(finished);
        self.writer.write(&line)?;
        let http = line
            .http_status
            .map_or_else(|| "none".to_string(), |s| s.to_string());
        self.unflushed.push((line.status.to_string(), http));
        match self.summary.as_mut() {
            Some(lines) if lines.len() < SUMMARY_ROWS => lines.push(line),
            Some(_) => self.left_out_of_summary += 1,
            None => {}
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()?;
        for (status, http) in self.unflushed.drain(..) {
            *self.by_status.entry(status).or_default() += 1;
            *self.by_http_status.entry(http).or_default() += 1;
        }
        Ok(())
    }
}

/// `--stats-json`: every figure of the final stats. Times are rounded to the
/// microsecond and rates to a thousandth, so no float noise
/// (`51.486999999999995`) reaches a script.
#[derive(Debug, Serialize)]
struct StatsFile<'a> {
    jobs: u64,
    finished: u64,
    unfinished: u64,
    by_status: &'a BTreeMap<String, u64>,
    /// The HTTP status of each job's final outcome (`none`: no reply).
    by_http_status: &'a BTreeMap<String, u64>,
    /// Every reply, retried ones included: a 500 then a 200 counts once each.
    replies_by_http_status: &'a BTreeMap<String, u64>,
    succeeded: u64,
    failed: u64,
    rate_limited: u64,
    transient_errors: u64,
    retried: u64,
    span_s: f64,
    /// The latencies of successful requests: `null` when none succeeded.
    mean_latency_ms: Option<f64>,
    p50_ms: Option<f64>,
    p90_ms: Option<f64>,
    p95_ms: Option<f64>,
    p99_ms: Option<f64>,
    max_ms: Option<f64>,
    throughput_rps: f64,
    /// `null` for a run too short to have one.
    sustained_rps: Option<f64>,
    allotted_rps: Option<f64>,
    /// The limiter's rate in force at the end (below the allotted one when
    /// persisting 429s cut it).
    rate_in_force_rps: Option<f64>,
    /// How many times persisting 429s cut the rate in force.
    rate_cuts: u32,
    /// Seconds the limiter held every start.
    paused_s: f64,
    mode: &'static str,
    threads_peak: usize,
    interrupted: bool,
    aborted: bool,
    budget_spent: bool,
    /// The pause longer than `--max-pause` that ended the run; `null` if none did.
    long_pause: Option<LongPauseFigures>,
    /// The quota windows the replies reported last; `null` when none did.
    quota: Option<Quota>,
    /// With `--shared-limit` only (absent otherwise): reservations and
    /// their Redis round trips in microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    shared_limit: Option<SharedStats>,
}

impl<'a> StatsFile<'a> {
    fn new(
        summary: &PoolSummary,
        sink: &'a RunSink,
        replies: &'a BTreeMap<String, u64>,
        jobs: u64,
        allotted: Option<f64>,
        mode: Mode,
    ) -> StatsFile<'a> {
        let report = &summary.report;
        // Latencies are of successes: none is no figure, not 0 ms.
        let ms = |d: Duration| (report.succeeded > 0).then(|| round(d.as_secs_f64() * 1000.0, 3));
        let rate = |r: f64| round(r, 3);
        StatsFile {
            jobs,
            finished: summary.finished,
            unfinished: summary.unfinished,
            by_status: &sink.by_status,
            by_http_status: &sink.by_http_status,
            replies_by_http_status: replies,
            succeeded: report.succeeded,
            failed: report.failed,
            rate_limited: report.rate_limited,
            transient_errors: report.transient,
            retried: report.retried,
            span_s: round(report.span.as_secs_f64(), 6),
            mean_latency_ms: ms(report.mean_latency),
            p50_ms: ms(report.p50),
            p90_ms: ms(report.p90),
            p95_ms: ms(report.p95),
            p99_ms: ms(report.p99),
            max_ms: ms(report.max),
            throughput_rps: rate(report.throughput()),
            sustained_rps: report.sustained.map(rate),
            allotted_rps: allotted.map(rate),
            rate_in_force_rps: report.rate_in_force.map(rate),
            rate_cuts: report.rate_cuts,
            paused_s: round(report.paused.as_secs_f64(), 6),
            mode: match mode {
                Mode::Rate => "rate",
                Mode::Concurrency => "concurrency",
            },
            threads_peak: summary.peak_threads,
            // A stop from outside only: not an abort, not a failed writer.
            interrupted: matches!(summary.ending, Ending::Stopped),
            aborted: aborted(&summary.ending),
            budget_spent: summary.ending == Ending::BudgetSpent,
            long_pause: match &summary.ending {
                Ending::LongPause(pause) => Some(LongPauseFigures {
                    reason: pause.reason.to_string(),
                    until: restb::limiter::date_time(pause.until),
                }),
                _ => None,
            },
            quota: None,
            shared_limit: None,
        }
    }
}

/// Why and until when every request was held, in `--stats-json`.
#[derive(Debug, Serialize)]
struct LongPauseFigures {
    reason: String,
    until: String,
}

/// `value` rounded to `decimals` places; the nearest double to that decimal
/// prints as it (`51.487`, not `51.486999999999995`).
fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

fn exit_status(summary: &PoolSummary, output: Option<&Path>, max_pause: f64) -> Exit {
    let message = super::budget::resumable_message(summary, output, max_pause)
        .or_else(|| ending_message(&summary.ending, summary.unfinished, output));
    if let Some(message) = message {
        eprintln!("{message}");
    }
    Exit::from_ending(&summary.ending, summary.report.failed)
}

/// What to say about how a run ended, if anything: the cause it had, and
/// `--resume` only when the outcomes went to a file (it needs `--output`).
fn ending_message(ending: &Ending, unfinished: u64, output: Option<&Path>) -> Option<String> {
    let resume = |then: &str| resume_advice(output, then);
    let once_fixed = resume("once that is fixed, ");
    let left = format!("{unfinished} jobs have no outcome");
    Some(match ending {
        Ending::Completed => return None,
        Ending::Stopped => format!("interrupted: {unfinished} jobs not done{}", resume("")),
        Ending::Aborted {
            reason: AbortReason::Job,
        } => format!(
            "Error: stopped without sending the rest (see the error above: the client key refused, a TLS certificate refused, or a redirect); {left}{once_fixed}"
        ),
        Ending::Aborted {
            reason: AbortReason::Internal(message),
        } => format!("Error: stopped after an internal error ({message}); {left}{}", resume("")),
        Ending::SinkFailed { message, .. } => {
            format!("Error: writing outcomes failed: {message}; {left}{once_fixed}")
        }
        // An ending added later: say no more than that it was not clean.
        _ => format!("Error: the run ended early ({ending}); {left}{}", resume("")),
    })
}

/// `--resume` advice, only when the outcomes went to a file (it needs
/// `--output`); `then` says what must come first, if anything.
fn resume_advice(output: Option<&Path>, then: &str) -> String {
    // `--resume` reads the outcome file back: not a device or a pipe.
    let regular = |path: &Path| std::fs::metadata(path).is_ok_and(|m| m.is_file());
    match output.filter(|path| regular(path)) {
        Some(path) => format!(
            "; {then}run the same command with --resume to send them (outcomes so far are in {})",
            path.display()
        ),
        None => String::new(),
    }
}

fn aborted(ending: &Ending) -> bool {
    matches!(ending, Ending::Aborted { .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: every abort blamed the key or TLS, an internal error
    /// included, and advised `--resume` when outcomes went to standard
    /// output, where `--resume` is refused.
    #[test]
    fn end_message_names_the_cause_and_advises_resume_only_with_output() {
        let internal = Ending::Aborted {
            reason: AbortReason::Internal("no worker thread could start".into()),
        };
        let refused = Ending::Aborted {
            reason: AbortReason::Job,
        };
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.jsonl");
        std::fs::write(&out, "").unwrap();
        let file = Some(out.as_path());
        let said = ending_message(&internal, 7, file).unwrap();
        assert!(said.contains("no worker thread could start"), "{said}");
        assert!(!said.contains("key") && !said.contains("TLS"), "{said}");
        assert!(
            said.contains("--resume") && said.contains("out.jsonl"),
            "{said}"
        );
        for ending in [&internal, &refused, &Ending::Stopped] {
            let said = ending_message(ending, 7, None).unwrap();
            assert!(!said.contains("--resume"), "{said}");
            assert!(said.contains('7'), "{said}");
        }
        assert!(ending_message(&refused, 7, file)
            .unwrap()
            .contains("--resume"));
        let device = Some(Path::new("/dev/null"));
        assert!(!ending_message(&refused, 7, device)
            .unwrap()
            .contains("--resume"));
        assert_eq!(ending_message(&Ending::Completed, 0, None), None);
    }
}

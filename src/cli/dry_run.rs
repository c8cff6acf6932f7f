//! `restb run --dry-run`: every check of a real run except the key's, the
//! resume read without touching the outcome file, and what the run would
//! send: jobs, requests by endpoint, model readings, and the time at the
//! allotted rate. Nothing is sent and no key is needed.

use super::args::{Mode, RunArgs};
use super::batch::Batch;
use super::plan;
use super::run_files;
use super::stdout::print_out;
use super::{Exit, UsageError};
use restb::api::{validate_base_url, Quota, Verdict};
use restb::job::Job;
use restb::outcome::read_for_resume;
use restb::pool::PoolConfig;
use serde::Serialize;
use std::fmt;

/// Runs the checks and prints the estimate (and writes it to
/// `--stats-json`). Exit status 0, or the usage error a real run would give.
pub(super) fn dry_run(args: &RunArgs, quiet: bool) -> Result<Exit, UsageError> {
    let rate = plan::rate(args)?;
    let default_models = plan::default_models(args)?;
    let pool_config = plan::pool_config(args, rate);
    // The client's own checks, in the order a real run makes them; only the
    // key is not asked for.
    let client_config = plan::client_config(args, &pool_config)?;
    validate_base_url(&client_config.base_url, client_config.allow_http)
        .map_err(|e| UsageError(format!("--base-url: {e}")))?;
    let mut batch = Batch::check(args, &default_models)?;
    #[cfg(feature = "redis")]
    super::shared::check(args, pool_config.rate)?;
    run_files::check_distinct(args)?;
    let stats_file = run_files::create_stats_file(args)?;
    let earlier_failures = match &args.output {
        Some(path) if args.resume => {
            let index = read_for_resume(path).map_err(|e| UsageError(format!("--resume: {e}")))?;
            plan::skip_done(args, index, &mut batch, path, quiet)?
        }
        _ => 0,
    };
    let (images, input_jobs) = (batch.records_total(), batch.total());
    let mut jobs = batch.jobs()?;
    let mut tally = Tally::default();
    let first = jobs.next().inspect(|job| tally.add(job));
    jobs.by_ref().for_each(|job| tally.add(&job));
    if let Some(error) = jobs.error() {
        return Err(UsageError(error));
    }
    let mut estimate = Estimate::new(args, &tally, images, input_jobs, earlier_failures);
    // Without --resume or --overwrite a real run refuses an outcome file
    // that holds outcomes: say so before it is tried.
    estimate.holds_outcomes = !args.resume
        && !args.overwrite
        && args
            .output
            .as_deref()
            .and_then(|path| path.metadata().ok())
            .is_some_and(|m| m.is_file() && m.len() > 0);
    if args.check_quota {
        match check_quota(args, &pool_config, first.as_ref())? {
            Ok(quota) => estimate.quota = Some(quota),
            Err(why) => {
                print_out(&estimate.to_string())?;
                eprintln!("Error: the quota check failed: {why}");
                return Ok(Exit::Failure);
            }
        }
    }
    print_out(&estimate.to_string())?;
    run_files::empty_stats_file(&stats_file)?;
    if let Some(stats) = stats_file {
        stats.write(&estimate)?;
    }
    Ok(Exit::Success)
}

/// What a run would send, as printed and as `--stats-json` writes it.
#[derive(Debug, Serialize)]
struct Estimate {
    dry_run: bool,
    /// Records in the input (images, or rows naming one).
    images: u64,
    /// Jobs the input makes, before `--resume`.
    input_jobs: u64,
    /// Jobs `--resume` skips: their outcome is in `--output`.
    already_done: u64,
    /// Of those, the ones that failed (not redone without `--retry-failed`).
    earlier_failures: u64,
    /// Jobs this run would send.
    jobs: u64,
    /// Requests this run would send, one per job, before any retry.
    requests: u64,
    per_model: bool,
    /// `/vision/v2/predict` requests (one model each).
    predict_requests: u64,
    /// `/vision/v2/multipredict` requests (several models each).
    multipredict_requests: u64,
    /// Answers asked for: the models of every request, summed.
    model_readings: u64,
    mode: &'static str,
    allotted_rps: Option<f64>,
    /// `--max-requests`, if given.
    max_requests: Option<u64>,
    /// `--shared-budget`, if given: a month's requests for every process
    /// on the key, of which a dry run does not read the count spent.
    shared_budget: Option<u64>,
    /// Requests this run would send within `--max-requests` and
    /// `--shared-budget` (all of the month's, at most).
    requests_within_budget: u64,
    /// Jobs left for a later `--resume` once the budget is spent.
    jobs_beyond_budget: u64,
    /// Seconds the requests within the budget take at the allotted rate
    /// (`null` in concurrency mode: no pacing, the latency decides).
    seconds_at_allotted_rate: Option<f64>,
    /// Whether `--output` holds outcomes, which a real run (without
    /// `--resume` or `--overwrite`) would refuse.
    holds_outcomes: bool,
    /// What the gateway said of the hour, day and month when asked with
    /// `--check-quota` (after that one request); `null` when not asked.
    quota: Option<Quota>,
}

/// What the jobs to send ask for, counted as they stream past.
#[derive(Debug, Default)]
struct Tally {
    requests: u64,
    predict: u64,
    model_readings: u64,
}

impl Tally {
    fn add(&mut self, job: &Job) {
        self.requests += 1;
        self.predict += u64::from(job.models.len() == 1);
        self.model_readings += job.models.len() as u64;
    }
}

impl Estimate {
    fn new(
        args: &RunArgs,
        tally: &Tally,
        images: u64,
        input_jobs: u64,
        earlier_failures: u64,
    ) -> Estimate {
        let Tally {
            requests,
            predict,
            model_readings,
        } = *tally;
        let max_requests = args.max_requests.map(|n| n.get());
        let shared_budget = args.shared_budget.map(|n| n.get());
        let within = [max_requests, shared_budget]
            .into_iter()
            .flatten()
            .fold(requests, u64::min);
        let allotted_rps = (args.mode == Mode::Rate).then_some(args.rps);
        Estimate {
            dry_run: true,
            images,
            input_jobs,
            already_done: input_jobs - requests,
            earlier_failures,
            jobs: requests,
            requests,
            per_model: args.per_model,
            predict_requests: predict,
            multipredict_requests: requests - predict,
            model_readings,
            mode: match args.mode {
                Mode::Rate => "rate",
                Mode::Concurrency => "concurrency",
            },
            allotted_rps,
            max_requests,
            shared_budget,
            requests_within_budget: within,
            jobs_beyond_budget: requests - within,
            seconds_at_allotted_rate: allotted_rps
                .map(|rps| (within as f64 / rps * 1000.0).round() / 1000.0),
            holds_outcomes: false,
            quota: None,
        }
    }
}

impl fmt::Display for Estimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.quota {
            Some(_) => writeln!(
                f,
                "dry run: nothing was sent but --check-quota's one request"
            )?,
            None => writeln!(f, "dry run: nothing was sent")?,
        }
        writeln!(
            f,
            "input: {} images, {} jobs ({})",
            self.images,
            self.input_jobs,
            if self.per_model {
                "one per image and model, --per-model"
            } else {
                "one per image with all its models"
            }
        )?;
        if self.already_done > 0 {
            writeln!(
                f,
                "resume: {} jobs already done ({} of them failed{}), {} to send",
                self.already_done,
                self.earlier_failures,
                if self.earlier_failures > 0 {
                    "; --retry-failed redoes them"
                } else {
                    ""
                },
                self.jobs
            )?;
        }
        writeln!(
            f,
            "requests: {} ({} predict, {} multipredict), {} model readings; retries and 429s would add to them",
            self.requests, self.predict_requests, self.multipredict_requests, self.model_readings
        )?;
        if let Some(budget) = self.max_requests {
            writeln!(
                f,
                "budget: --max-requests {budget}: {} requests in this run, {} jobs left for --resume",
                self.requests_within_budget, self.jobs_beyond_budget
            )?;
        }
        if let Some(budget) = self.shared_budget {
            writeln!(
                f,
                "budget: --shared-budget {budget} a month for every process on the key: at most {} \
                 requests in this run, {} jobs left for --resume (what the month spent is not read \
                 in a dry run)",
                self.requests_within_budget, self.jobs_beyond_budget
            )?;
        }
        if let Some(quota) = &self.quota {
            self.fmt_quota(f, quota)?;
        }
        if self.holds_outcomes {
            writeln!(
                f,
                "warning: --output already holds outcomes and a real run would refuse it; add --resume to keep them or --overwrite to replace them"
            )?;
        }
        self.fmt_time(f)
    }
}

impl Estimate {
    /// The time line: the requests at the allotted rate.
    fn fmt_time(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.allotted_rps, self.seconds_at_allotted_rate) {
            (Some(rps), Some(seconds)) => writeln!(
                f,
                "time: {} requests at {rps} requests/s: about {}",
                self.requests_within_budget,
                human_duration(seconds)
            ),
            _ => writeln!(
                f,
                "time: no pacing (--mode concurrency): it depends on the latency, with --threads requests in flight"
            ),
        }
    }

    /// The quota line, and the warning when the month is short.
    fn fmt_quota(&self, f: &mut fmt::Formatter<'_>, quota: &Quota) -> fmt::Result {
        if quota.is_empty() {
            return writeln!(
                f,
                "quota: the gateway reported no hour, day or month window"
            );
        }
        writeln!(
            f,
            "quota: {quota} (after the one request --check-quota sent)"
        )?;
        match quota.month {
            Some(month) if self.requests_within_budget > month.remaining => writeln!(
                f,
                "warning: this run would send {} requests, {} are left this month",
                self.requests_within_budget, month.remaining
            ),
            _ => Ok(()),
        }
    }
}

/// Sends the one request of `--check-quota` (the first model of the first
/// job still to send) and returns what the reply said of the quota, or why
/// it failed. A missing key, or a bad one in its file, is a usage error as
/// in a real run.
fn check_quota(
    args: &RunArgs,
    pool_config: &PoolConfig,
    first: Option<&Job>,
) -> Result<Result<Quota, String>, UsageError> {
    let key = plan::client_key(args)?;
    let client = plan::client(args, key, pool_config)?;
    let Some(job) = first else {
        return Ok(Err("no job left to send: nothing to ask with".to_string()));
    };
    let reply = client.predict(&job.image, &job.models[..job.models.len().min(1)]);
    let status = reply
        .http_status
        .map_or_else(|| "no reply".to_string(), |s| format!("HTTP {s}"));
    Ok(match reply.verdict {
        Verdict::Ok(_) => Ok(reply.quota),
        // A refusal for the rate still carries the windows.
        Verdict::RateLimited { .. } if !reply.quota.is_empty() => Ok(reply.quota),
        Verdict::RateLimited { .. } => Err(format!("{status}: rate limited")),
        Verdict::Permanent(why)
        | Verdict::Auth(why)
        | Verdict::Fatal(why)
        | Verdict::Transient(why) => Err(format!("{status}: {why}")),
        _ => Err(format!("{status}: an answer this tool does not know")),
    })
}

/// `seconds` as `9 s`, `2 min 05 s`, `3 h 12 min` or `2 d 04 h`.
fn human_duration(seconds: f64) -> String {
    let whole = seconds.ceil() as u64;
    let (d, h, m, s) = (
        whole / 86_400,
        whole / 3600 % 24,
        whole / 60 % 60,
        whole % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, _) => format!("{m} min {s:02} s"),
        (0, _, _) => format!("{h} h {m:02} min"),
        _ => format!("{d} d {h:02} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::human_duration;

    #[test]
    fn durations_read_as_a_person_would_say_them() {
        assert_eq!(human_duration(0.0), "0 s");
        assert_eq!(human_duration(8.2), "9 s");
        assert_eq!(human_duration(125.0), "2 min 05 s");
        assert_eq!(human_duration(3600.0 * 3.0 + 720.0), "3 h 12 min");
        assert_eq!(human_duration(86_400.0 * 2.0 + 4.0 * 3600.0), "2 d 04 h");
    }
}

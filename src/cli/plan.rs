//! The plan of `restb run`: every flag, the input and the files checked
//! once, before the first request, into what the run needs.

use super::args::{Mode, RunArgs, ThreadsArg};
use super::batch::{Batch, Jobs};
use super::run_files::{check_distinct, create_stats_file, empty_stats_file, StatsOut};
use super::UsageError;
use restb::api::{Client, ClientConfig, ClientKey};
use restb::limiter::Rate;
use restb::models;
use restb::outcome::{create_locked, open_for_resume, Existing, ResumeIndex};
use restb::pool::{PoolConfig, Threads};
use restb::retry::RetryPolicy;
use std::io::{self, Write};
use std::num::NonZeroUsize;
use std::path::Path;
use std::time::Duration;

/// Most threads `--threads auto` starts: about 1000 in flight is the
/// largest load we plan for, with room for latency spikes.
const AUTO_MAX_THREADS: usize = 4096;

/// How long the other requests wait for the first reply (and the quota
/// it may report) at most: about twice the API's usual latency.
const FIRST_REPLY_WAIT: Duration = Duration::from_secs(2);

/// The smallest batch whose first request goes out alone, so the quota its
/// reply reports is known before the rest leave. A smaller batch cannot
/// overspend a quota by much, and the wait (one latency) would be a large
/// part of its run: 36 requests at 4/s lose a tenth of their throughput.
const QUOTA_FIRST_MIN_JOBS: usize = 100;

/// Longest `--timeout`.
const MAX_TIMEOUT: Duration = Duration::from_secs(86_400);

/// Everything `restb run` needs, built once from the arguments; building it
/// makes every check, so a bad flag or input sends nothing.
pub(super) struct Plan<'a> {
    pub(super) args: &'a RunArgs,
    pub(super) client: Client,
    pub(super) pool_config: PoolConfig,
    /// The jobs to send, streamed from the checked input.
    pub(super) jobs: Jobs,
    /// Where outcome lines go: `--output`, or standard output.
    pub(super) out: Box<dyn Write + Send>,
    pub(super) stats_file: Option<StatsOut<'a>>,
    /// Jobs a resumed outcome file records as failed and `--retry-failed` is off.
    pub(super) earlier_failures: u64,
    /// `--shared-limit`: the schedule in Redis, also in `pool_config`.
    #[cfg(feature = "redis")]
    pub(super) shared: Option<std::sync::Arc<restb::shared_limit::SharedSchedule>>,
}

impl<'a> Plan<'a> {
    /// The checks run in this order, so the first complaint is about the
    /// first bad flag in it: rate, key, models, timeout and URL, input,
    /// `--shared-limit` (before any file is created), the files being
    /// distinct, `--stats-json`, the outcome file.
    pub(super) fn new(args: &'a RunArgs, quiet: bool) -> Result<Plan<'a>, UsageError> {
        let rate = rate(args)?;
        let key = client_key(args)?;
        let default_models = default_models(args)?;
        let mut pool_config = pool_config(args, rate);
        #[cfg(feature = "redis")]
        let shared_key = key.clone();
        let client = client(args, key, &pool_config)?;
        let mut batch = Batch::check(args, &default_models)?;
        #[cfg(feature = "redis")]
        let shared =
            super::shared::connect(args, &shared_key, client.base_url(), pool_config.rate)?;
        #[cfg(feature = "redis")]
        {
            pool_config.shared = shared.clone().map(|s| restb::limiter::SharedPacing::new(s));
            pool_config.shared_budget = super::budget::connect_shared(
                args,
                &shared_key,
                client.base_url(),
                shared.as_ref(),
            )?;
        }
        check_distinct(args)?;
        let stats_file = create_stats_file(args)?;
        let (out, earlier_failures) = open_output(args, &mut batch, quiet)?;
        let jobs = batch.jobs()?;
        if jobs.len() >= QUOTA_FIRST_MIN_JOBS {
            pool_config.first_try_alone = Some(FIRST_REPLY_WAIT);
        }
        empty_stats_file(&stats_file)?;
        Ok(Plan {
            args,
            client,
            pool_config,
            jobs,
            out,
            stats_file,
            earlier_failures,
            #[cfg(feature = "redis")]
            shared,
        })
    }

    /// The one line saying what is about to happen.
    pub(super) fn log(&self) {
        let args = self.args;
        log::info!(
            "{} jobs, {} at {}, threads {}",
            self.jobs.len(),
            if args.per_model {
                "one request per image and model"
            } else {
                "one request per image"
            },
            match args.mode {
                Mode::Rate => format!("{} requests/s", args.rps),
                Mode::Concurrency => "no pacing".to_string(),
            },
            match self.pool_config.threads {
                Threads::Fixed(n) => n.to_string(),
                Threads::Auto { .. } => "auto".to_string(),
            }
        );
    }
}

/// `--rps`, checked once: the pacing in rate mode, and the thread count
/// `--threads auto` starts in concurrency mode.
pub(super) fn rate(args: &RunArgs) -> Result<Rate, UsageError> {
    Rate::per_second(args.rps).ok_or_else(|| {
        UsageError(format!(
            "--rps: '{}' is out of range ({} to {} requests per second)",
            args.rps,
            Rate::MIN_PER_SECOND,
            Rate::MAX_PER_SECOND
        ))
    })
}

/// The API client, with one idle connection kept per worker thread.
pub(super) fn client(
    args: &RunArgs,
    key: ClientKey,
    pool: &PoolConfig,
) -> Result<Client, UsageError> {
    let config = client_config(args, pool)?;
    Client::new(key, &config).map_err(|e| UsageError(format!("--base-url: {e}")))
}

/// The client's settings: `--timeout` checked, the base URL not yet.
pub(super) fn client_config(args: &RunArgs, pool: &PoolConfig) -> Result<ClientConfig, UsageError> {
    let mut config = ClientConfig::default();
    config.base_url = args
        .base_url
        .clone()
        .unwrap_or_else(|| args.region.base_url().to_string());
    config.timeout = Duration::try_from_secs_f64(args.timeout)
        .ok()
        .filter(|t| *t <= MAX_TIMEOUT)
        .ok_or_else(|| {
            UsageError(format!(
                "--timeout: at most {} seconds",
                MAX_TIMEOUT.as_secs()
            ))
        })?;
    config.max_idle_connections = match pool.threads {
        Threads::Fixed(n) => n.get(),
        Threads::Auto { .. } => 1024,
    };
    config.allow_http = args.allow_http;
    Ok(config)
}

/// Where outcome lines go: `--output` (created, or with `--resume` opened
/// for appending, marking the jobs it already covers in `batch`) or
/// standard output. Also returns how many covered jobs failed before.
fn open_output(
    args: &RunArgs,
    batch: &mut Batch,
    quiet: bool,
) -> Result<(Box<dyn Write + Send>, u64), UsageError> {
    match &args.output {
        Some(path) if args.resume => {
            let (file, index) =
                open_for_resume(path).map_err(|e| UsageError(format!("--resume: {e}")))?;
            let earlier_failures = skip_done(args, index, batch, path, quiet)?;
            Ok((Box::new(file), earlier_failures))
        }
        Some(path) => {
            let existing = if args.overwrite {
                Existing::Replace
            } else {
                Existing::Refuse
            };
            let file =
                create_locked(path, existing).map_err(|e| UsageError(format!("--output: {e}")))?;
            Ok((Box::new(file), 0))
        }
        None => Ok((Box::new(io::stdout()), 0)),
    }
}

/// Marks in `batch` the jobs whose outcome `index` (read from `path`)
/// already holds; returns how many of them failed (and are not redone).
pub(super) fn skip_done(
    args: &RunArgs,
    index: ResumeIndex,
    batch: &mut Batch,
    path: &Path,
    quiet: bool,
) -> Result<u64, UsageError> {
    let before = batch.total();
    let mut resume = index.filter(args.retry_failed);
    batch.resume(&mut resume)?;
    if !quiet {
        log::info!(
            "resuming: {} of {before} jobs already done in {} ({} of its outcomes match no job of this input)",
            resume.done(),
            path.display(),
            resume.unmatched()
        );
    }
    Ok(resume.earlier_failures())
}

/// The fewest characters a client key can have here. Every occurrence of
/// the key in replies and output is hidden as `***`: a key of a letter or
/// two (a placeholder, a slip) would hide those letters everywhere, and
/// mangle every reply before it is read. A real key is far longer.
const SHORTEST_KEY: usize = 8;

/// `text` as a client key read from `source` (for messages).
fn parse_key(text: &str, source: &str) -> Result<ClientKey, UsageError> {
    let key = ClientKey::parse(text).map_err(|e| UsageError(format!("{source} {e}")))?;
    let length = text.trim().chars().count();
    if length < SHORTEST_KEY {
        return Err(UsageError(format!(
            "{source} holds {length} character{}: too short to be a client key (a key is hidden \
             wherever it appears, so a short one would mangle every reply)",
            if length == 1 { "" } else { "s" }
        )));
    }
    crate::hidden_key::hide(&key);
    Ok(key)
}

pub(super) fn client_key(args: &RunArgs) -> Result<ClientKey, UsageError> {
    match &args.client_key_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                UsageError(format!(
                    "--client-key-file: cannot read {}: {e}",
                    path.display()
                ))
            })?;
            parse_key(&text, &format!("--client-key-file: {}", path.display()))
        }
        None => key_from_env("")?.ok_or_else(|| {
            UsageError(
                "no client key: set RESTB_CLIENT_KEY or pass --client-key-file FILE".to_string(),
            )
        }),
    }
}

/// The key in `RESTB_CLIENT_KEY`, `None` when it is not set; messages
/// begin with `context` (a flag the key is for, or nothing).
pub(super) fn key_from_env(context: &str) -> Result<Option<ClientKey>, UsageError> {
    let source = format!("{context}RESTB_CLIENT_KEY");
    match std::env::var("RESTB_CLIENT_KEY") {
        Ok(text) => parse_key(&text, &source).map(Some),
        Err(std::env::VarError::NotUnicode(_)) => Err(UsageError(format!(
            "{source} is not valid UTF-8: a client key is text"
        ))),
        Err(std::env::VarError::NotPresent) => Ok(None),
    }
}

pub(super) fn default_models(args: &RunArgs) -> Result<Vec<String>, UsageError> {
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
    if let Some(repeated) = models::first_repeated(&list) {
        // Refused, not deduplicated: with --per-model it would send every
        // image twice under one key, and a typo'd list deserves a look.
        return Err(UsageError(format!(
            "--models: '{repeated}' is listed twice; list each model once"
        )));
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

/// The pool for `--mode` and `--threads`: paced at `rate` in rate mode;
/// in concurrency mode unpaced, `--rps` threads unless `--threads` says.
pub(super) fn pool_config(args: &RunArgs, rate: Rate) -> PoolConfig {
    let auto_max = NonZeroUsize::new(AUTO_MAX_THREADS).expect("not zero");
    let (rate, threads) = match args.mode {
        Mode::Rate => {
            let threads = match args.threads {
                ThreadsArg::Auto => Threads::Auto { max: auto_max },
                ThreadsArg::Fixed(n) => Threads::Fixed(n),
            };
            (Some(rate), threads)
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
    let mut retry = RetryPolicy::default();
    retry.max_attempts = args.max_attempts;
    let mut config = PoolConfig::default();
    config.threads = threads;
    config.rate = rate;
    config.align_to_windows = rate.is_some();
    config.retry = retry;
    config.budget = args.max_requests.map(|n| n.get());
    config.longest_pause = Some(Duration::from_secs_f64(args.max_pause));
    config
}

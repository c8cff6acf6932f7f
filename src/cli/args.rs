//! Command-line arguments (clap derive).

use clap::{Args, Parser, Subcommand, ValueEnum};
use restb::api::Region;
use restb::input::Format;
use restb::mock::{HeaderStyle, LimiterKind};
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::path::PathBuf;
use std::str::FromStr;

const RUN_EXAMPLES: &str = "Examples:
  RESTB_CLIENT_KEY=... restb run photos.csv -o outcomes.jsonl --rps 4
  restb run urls.txt --models re_roomtype_global_v2,re_condition_r1r6_global --rps 20 -o out.jsonl
  restb run photos.jsonl --per-model --rps 4 --client-key-file ~/.restb-key -o out.jsonl
  restb run photos.csv -o outcomes.jsonl --resume            # finish an interrupted batch
  restb run photos.csv -o outcomes.jsonl --dry-run           # what it would send, and how long
  restb run photos.csv -o outcomes.jsonl --max-requests 5000 # at most 5000 requests, exit 3 if more
  nohup restb run photos.csv -o outcomes.jsonl &             # survives the terminal closing

Signals: SIGINT (Ctrl-C), SIGTERM and SIGHUP stop the run gracefully: no new request starts,
those in flight finish and their outcomes are written, exit status 130; the same command with
--resume finishes the batch. A second signal quits at once (still resumable). A SIGHUP or
SIGINT that the parent set to ignore (nohup, a background job of a script) stays ignored.";

/// Send batches of images to the Restb.ai Vision API at the allotted rate.
#[derive(Debug, Parser)]
#[command(name = "restb", version, about, propagate_version = true)]
pub struct Cli {
    /// No progress display and no log lines below warnings; the final stats still print.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Process a batch of images (the client key comes from RESTB_CLIENT_KEY or --client-key-file).
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// Run the tutorial's workload against a built-in mock gateway: no key, no network.
    #[command(after_help = "Example:\n  restb demo")]
    Demo(DemoArgs),
    /// Serve the stand-in gateway on loopback (Kong, sliding window, nginx or token bucket), for your own tests.
    Mock(MockArgs),
    /// Sweep thread counts (and rates) against the built-in mock or any gateway; print a table, write JSON and an SVG chart.
    Bench(super::bench::BenchArgs),
    /// Summarise an outcome file: counts, labels per model, failures by reason; optionally as CSV.
    Report(super::report::ReportArgs),
    /// Print a shell completion script (bash, zsh or fish).
    #[command(
        after_help = "Example:\n  restb completions bash > ~/.local/share/bash-completion/completions/restb"
    )]
    Completions(super::completions::CompletionsArgs),
}

/// How the allotment is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Pace request starts at --rps across all threads.
    Rate,
    /// At most --threads requests in flight, no pacing (the older plan).
    Concurrency,
}

/// `--threads N|auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadsArg {
    /// Enough threads that the rate, not the thread count, is the bottleneck.
    Auto,
    /// Exactly N.
    Fixed(NonZeroUsize),
}

impl FromStr for ThreadsArg {
    type Err = String;
    fn from_str(text: &str) -> Result<ThreadsArg, String> {
        if text.eq_ignore_ascii_case("auto") {
            return Ok(ThreadsArg::Auto);
        }
        text.parse::<NonZeroUsize>()
            .map(ThreadsArg::Fixed)
            .map_err(|_| format!("'{text}' is not a positive whole number or 'auto'"))
    }
}

pub(super) fn positive_number(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 => Ok(value),
        _ => Err(format!("'{text}' is not a positive number")),
    }
}

/// The longest latency, jitter, hang or timeout a flag takes, in seconds
/// (a day): more is a typo, and would overflow a `Duration` at 1e300.
const MAX_SECONDS: f64 = 86_400.0;

/// A number of seconds from 0 to a day.
pub(super) fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if (0.0..=MAX_SECONDS).contains(&value) => Ok(value),
        _ => Err(format!(
            "'{text}' is not a number of seconds from 0 to {MAX_SECONDS}"
        )),
    }
}

/// A number of seconds above 0, at most a day.
pub(super) fn positive_seconds(text: &str) -> Result<f64, String> {
    match seconds(text) {
        Ok(value) if value > 0.0 => Ok(value),
        _ => Err(format!(
            "'{text}' is not a number of seconds above 0, at most {MAX_SECONDS}"
        )),
    }
}

/// The shortest `--max-pause`: a spent one-second window holds every
/// request for up to about a second and a quarter, and must not end a run.
const SHORTEST_MAX_PAUSE: f64 = 2.0;

/// `--max-pause`: seconds from [`SHORTEST_MAX_PAUSE`] to a day.
fn max_pause_seconds(text: &str) -> Result<f64, String> {
    match seconds(text) {
        Ok(value) if value >= SHORTEST_MAX_PAUSE => Ok(value),
        _ => Err(format!(
            "'{text}' is not a number of seconds from {SHORTEST_MAX_PAUSE} (a spent one-second window pauses about that long) to {MAX_SECONDS}"
        )),
    }
}

/// `restb run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The batch: a CSV, JSONL or plain list file, or - for standard input.
    pub input: PathBuf,
    /// Input format [default: from the extension: .csv, .jsonl/.ndjson, else lines].
    #[arg(long, value_parser = |s: &str| s.parse::<Format>().map_err(|e| e.to_string()))]
    pub format: Option<Format>,
    /// Comma-separated model ids [default: the six of the SDK].
    #[arg(long, value_delimiter = ',')]
    pub models: Option<Vec<String>>,
    /// Send model ids this tool does not know (models newer than the tool).
    #[arg(long)]
    pub allow_unknown_models: bool,
    /// One /vision/v2/predict request per (image, model), as the tutorial did,
    /// instead of one multipredict request per image.
    #[arg(long)]
    pub per_model: bool,
    /// Allotted requests per second.
    #[arg(long, default_value = "1", value_parser = positive_number, allow_negative_numbers = true)]
    pub rps: f64,
    /// How the allotment is enforced.
    #[arg(long, value_enum, default_value_t = Mode::Rate)]
    pub mode: Mode,
    /// Worker threads: a number, or auto.
    #[arg(long, default_value = "auto")]
    pub threads: ThreadsArg,
    /// API region.
    #[arg(long, default_value = "us")]
    pub region: Region,
    /// API base URL (overrides --region).
    #[arg(long)]
    pub base_url: Option<String>,
    /// Write JSONL outcomes to FILE [default: standard output].
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Skip the jobs whose outcome (same image and models) is already in --output; append the rest.
    #[arg(long, requires = "output")]
    pub resume: bool,
    /// With --resume, also redo the jobs whose outcome was a failure.
    #[arg(long, requires = "resume")]
    pub retry_failed: bool,
    /// Replace an --output file that already holds outcomes (without it, such a file is refused:
    /// each line is a request paid for; --resume keeps them).
    #[arg(long, requires = "output", conflicts_with = "resume")]
    pub overwrite: bool,
    /// Permit a plain http:// base URL to a host that is not loopback.
    #[arg(long)]
    pub allow_http: bool,
    /// Tries per job for transient failures (5xx, network errors, timeouts).
    #[arg(long, default_value = "5")]
    pub max_attempts: NonZeroU32,
    /// Send at most N requests in this run (retries and 429s count); then stop,
    /// write the outcomes of those in flight, exit 3; --resume sends the rest.
    #[arg(long, value_name = "N")]
    pub max_requests: Option<NonZeroU64>,
    /// The longest the gateway may hold every request at once, in seconds: a spent
    /// hour, day or month quota or a Retry-After that holds them longer ends the run
    /// (outcomes of those in flight written, exit 3) with the time to --resume after.
    #[arg(long, value_name = "SECS", default_value = "300", value_parser = max_pause_seconds)]
    pub max_pause: f64,
    /// Deadline of each request as a whole (connect, send, reply head and body), in seconds.
    #[arg(long, default_value = "30", value_parser = positive_number)]
    pub timeout: f64,
    /// Write every figure of the final stats to FILE as JSON.
    #[arg(long, value_name = "FILE")]
    pub stats_json: Option<PathBuf>,
    /// Print a table per image and model (top label and confidence) at the end.
    #[arg(long)]
    pub summary: bool,
    /// Check everything and print what the run would send (jobs, requests, model
    /// readings, time at --rps), with --stats-json as JSON too; send nothing, need no key.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run, send one request to read the quota the gateway reports
    /// (hour, day, month): a /vision/v2/predict of the first image with its first
    /// model, the cheapest call there is (one request of the allotment, one model).
    /// Needs the key.
    #[arg(long, requires = "dry_run")]
    pub check_quota: bool,
    /// Read the client key from FILE instead of RESTB_CLIENT_KEY.
    #[arg(long, value_name = "FILE")]
    pub client_key_file: Option<PathBuf>,
    /// Share one schedule with every process on this key through Redis:
    /// redis://[:PASSWORD@]HOST[:PORT][/DB] [default: RESTB_SHARED_LIMIT].
    #[cfg(feature = "redis")]
    #[arg(long, value_name = "URL")]
    pub shared_limit: Option<String>,
    /// A budget of N requests per calendar month (UTC) for every process on this
    /// key, counted in the --shared-limit Redis; spent: exit 3, as --max-requests.
    #[cfg(feature = "redis")]
    #[arg(long, value_name = "N")]
    pub shared_budget: Option<NonZeroU64>,
}

/// `restb demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The mock gateway's rate limit, requests per second.
    #[arg(long, default_value = "4")]
    pub rps: NonZeroU32,
    /// The mock's latency, in seconds.
    #[arg(long, default_value = "1.16", value_parser = seconds)]
    pub latency: f64,
    /// Send one multipredict request per image with all its models [default: one
    /// request per (image, model), as the tutorial did].
    #[arg(long)]
    pub grouped: bool,
}

/// `restb mock --help`: the limiter kinds and what their answers carry.
const MOCK_HELP: &str = "Limiters (--limiter, each at --rps per client key):
  fixed    Kong's fixed window: --rps per wall-clock second, rejections not counted;
           headers as --headers says (Kong 2: Retry-After on 429). The default.
  sliding  sliding window that counts rejected requests too: previous window x the
           part of it the last second covers + current window < --rps, or 429.
           A client that keeps retrying while blocked stays blocked.
  leaky    nginx limit_req, no burst: a request less than 1/--rps after the key's
           last accepted one gets nginx's 429 page with Retry-After: 1 and, unless
           --headers none, X-RateLimit-Remaining-Second: 0. No headers on a 200.
  token    token bucket (cloud API gateways): --burst tokens refilled at --rps;
           429 {\"message\":\"Too Many Requests\"}, no rate-limit headers.
--retry-after SECS replaces the Retry-After of the limiter's 429s (0: none).
--headers-rps R sends the headers of another layer: an upstream Kong fixed window
at R per second counts what the limiter let through, and only its headers go out,
so replies claim room while the limiter in front rejects.
--quota-day N / --quota-month N count accepted requests per key per calendar day /
month (UTC) and report what is left on every reply (X-RateLimit-Remaining-Day,
-Month); a spent window answers 429 until it ends.
--log FILE writes a line per request: arrival (Unix seconds.microseconds), key
label (a hash, never the key), status (0: dropped), path; flushed on exit.

Examples:
  restb mock --port 8080 --rps 4 --latency 1.16
  restb run urls.txt --base-url http://127.0.0.1:8080 --rps 4
  restb mock --limiter leaky --rps 20 --headers none --log requests.log
  restb mock --limiter sliding --rps 20 --headers-rps 1000
  restb mock --limiter token --rps 20 --burst 5
  restb mock --rps 4 --quota-month 500      # restb run shows the month's quota";

/// `restb mock`.
#[derive(Debug, Args)]
#[command(after_help = MOCK_HELP)]
pub struct MockArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value = "0")]
    pub port: u16,
    /// Requests per second per key allowed by the limiter [default: unlimited].
    #[arg(long)]
    pub rps: Option<NonZeroU32>,
    /// Which limiter enforces --rps: fixed, sliding, leaky or token (see below).
    #[arg(long, default_value = "fixed", value_parser = |s: &str| s.parse::<LimiterKind>())]
    pub limiter: LimiterKind,
    /// Bucket size of --limiter token [default: 5].
    #[arg(long)]
    pub burst: Option<NonZeroU32>,
    /// Retry-After on the limiter's 429s, in whole seconds; 0 sends none
    /// [default: the limiter's own].
    #[arg(long, value_name = "SECS")]
    pub retry_after: Option<u64>,
    /// Send the rate-limit headers of an upstream layer allowing R per second
    /// instead of the limiter's own.
    #[arg(long, value_name = "R")]
    pub headers_rps: Option<NonZeroU32>,
    /// Latency of an accepted request, in seconds.
    #[arg(long, default_value = "0", value_parser = seconds)]
    pub latency: f64,
    /// Uniform +- jitter added to the latency, in seconds.
    #[arg(long, default_value = "0", value_parser = seconds)]
    pub jitter: f64,
    /// Rate-limit headers: kong2, kong-legacy or none.
    #[arg(long, default_value = "kong2", value_parser = |s: &str| s.parse::<HeaderStyle>())]
    pub headers: HeaderStyle,
    /// Seed for jitter and faults: the same seed and request order give the same faults.
    #[arg(long, default_value = "0")]
    pub seed: u64,
    /// Injected faults, as KIND=PROBABILITY,...; kinds: 500, 503, 502, reset, truncated,
    /// notjson, hang, error200, 005, noheaders. Example: 500=0.05,reset=0.02,hang=0.01
    #[arg(long, default_value = "none")]
    pub faults: restb::mock::FaultMix,
    /// Limit of requests in flight per key (older accounts): over it, an immediate 429.
    #[arg(long)]
    pub max_in_flight: Option<NonZeroU32>,
    /// How long a request hit by the hang fault is held before the connection closes, in seconds.
    #[arg(long, default_value = "60", value_parser = seconds)]
    pub hang: f64,
    /// Write one line per request to FILE (see below).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Requests per key per calendar day (UTC), reported on every reply; over it, a 429.
    #[arg(long, value_name = "N")]
    pub quota_day: Option<NonZeroU32>,
    /// Requests per key per calendar month (UTC), reported on every reply; over it, a 429.
    #[arg(long, value_name = "N")]
    pub quota_month: Option<NonZeroU32>,
}

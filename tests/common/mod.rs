//! What the integration tests share: the mock gateway on port 0, the `restb`
//! command with a clean environment, outcome files read back and checked for
//! exactly-once, bounded waits (for lines, for a child, for a wall-clock
//! second), real signals, and a tiny loopback server ([`tiny_server`]) for
//! answers the mock does not give.
//!
//! Each test crate that says `mod common;` compiles its own copy and uses a
//! part of it, hence the `dead_code` allowance.

#![allow(dead_code)]

pub mod raw_http;
pub mod redis_server;
pub mod tiny_server;

use restb::api::{Client, ClientConfig, ClientKey};
use restb::job::{CallOutput, Job};
use restb::mock::{MockConfig, MockServer};
use restb::pool::Finished;
use serde_json::Value;
use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The client key the tests run with; no output may show it.
pub const KEY: &str = "test-key-5ecr3t";

/// How long the mock's `stop` may take. Connection threads see the stop
/// within 100 ms (their poll); a stop that had to wait for them instead gives
/// up after its 1 s grace, so anything under that shows they ended, with room
/// for a loaded machine.
pub const STOP_BOUND: Duration = Duration::from_millis(900);

/// The mock gateway on a free loopback port (port 0).
pub fn start_mock(config: MockConfig) -> MockServer {
    MockServer::start(config).expect("the mock gateway starts on 127.0.0.1:0")
}

/// The `restb` binary with an environment cleared of everything that would
/// change its behaviour (`RUST_LOG`, every `RESTB_*` variable), and
/// `RESTB_CLIENT_KEY` set to `key` when given.
pub fn restb(key: Option<&str>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_restb"));
    clean_env(&mut command, key);
    command
}

/// Clears `RUST_LOG` and every `RESTB_*` variable from `command`'s
/// environment, then sets `RESTB_CLIENT_KEY` to `key` when given (for a
/// `restb` started through a wrapper such as `env` or `sh`).
pub fn clean_env<'c>(command: &'c mut Command, key: Option<&str>) -> &'c mut Command {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("RESTB_") || name.starts_with("RUST_LOG") {
            command.env_remove(&*name);
        }
    }
    if let Some(key) = key {
        command.env("RESTB_CLIENT_KEY", key);
    }
    command
}

/// Runs `restb ARGS` to the end (see [`restb`] for the environment).
pub fn run(args: &[&str], key: Option<&str>) -> Output {
    restb(key).args(args).output().expect("the binary runs")
}

/// A `restb run` command line, built flag by flag in the order the calls
/// give, so that a test names only the flags it is about.
#[derive(Clone, Debug)]
pub struct RunLine {
    args: Vec<OsString>,
}

impl RunLine {
    /// `restb run INPUT`.
    pub fn new(input: impl AsRef<OsStr>) -> RunLine {
        RunLine {
            args: vec!["run".into(), input.as_ref().into()],
        }
    }

    /// Adds `args` as they are: flags, or a flag and its value.
    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> RunLine {
        self.args
            .extend(args.into_iter().map(|arg| arg.as_ref().to_os_string()));
        self
    }

    /// `--base-url URL`.
    pub fn base_url(self, url: &str) -> RunLine {
        self.args(["--base-url", url])
    }

    /// `--rps RATE`.
    pub fn rps(self, rate: &str) -> RunLine {
        self.args(["--rps", rate])
    }

    /// `--models IDS`.
    pub fn models(self, ids: &str) -> RunLine {
        self.args(["--models", ids])
    }

    /// `-o PATH`.
    pub fn out(self, path: impl AsRef<Path>) -> RunLine {
        self.args([OsStr::new("-o"), path.as_ref().as_os_str()])
    }

    /// `--stats-json PATH`.
    pub fn stats_json(self, path: impl AsRef<Path>) -> RunLine {
        self.args([OsStr::new("--stats-json"), path.as_ref().as_os_str()])
    }

    /// The command, not started (see [`restb`] for the environment).
    pub fn command(&self, key: Option<&str>) -> Command {
        let mut command = restb(key);
        command.args(&self.args);
        command
    }

    /// Runs the command to the end.
    pub fn run(&self, key: Option<&str>) -> Output {
        self.command(key).output().expect("the binary runs")
    }
}

/// A JSON file read back whole (`--stats-json`, a report).
pub fn json_file(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Lossy UTF-8 of a process's output.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Writes `count` image URLs (`https://example.com/photos/N.jpg`, N from 1)
/// under a comment line to `DIR/urls.txt`; returns its path.
pub fn url_list(dir: &Path, count: usize) -> String {
    let path = dir.join("urls.txt");
    let body: String = (1..=count)
        .map(|n| format!("https://example.com/photos/{n}.jpg\n"))
        .collect();
    std::fs::write(&path, format!("# listing photos\n{body}")).unwrap();
    path.to_string_lossy().into_owned()
}

/// Every line of an outcome file, each whole JSON (a torn line fails).
pub fn outcome_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("torn line {line:?}: {e}"))
        })
        .collect()
}

/// What a line is the outcome of: its id and its models (a `--per-model`
/// run writes one line per image and model).
pub fn job_key(line: &Value) -> String {
    let id = line["id"].as_str().expect("an id");
    let models: Vec<&str> = line["models"]
        .as_array()
        .expect("a models array")
        .iter()
        .map(|m| m.as_str().expect("a model id"))
        .collect();
    format!("{id} {}", models.join(","))
}

/// The exactly-once check over an outcome file: every line whole JSON, no
/// job twice; returns the ids.
pub fn ids_exactly_once(path: &Path) -> HashSet<String> {
    let mut jobs = HashSet::new();
    let mut ids = HashSet::new();
    for line in outcome_lines(path) {
        let key = job_key(&line);
        assert!(jobs.insert(key.clone()), "job {key} written twice");
        ids.insert(line["id"].as_str().unwrap().to_string());
    }
    ids
}

/// [`ids_exactly_once`], and the ids are exactly `1..=count`.
pub fn assert_exactly_once(path: &Path, count: usize) {
    let ids = ids_exactly_once(path);
    let wanted: HashSet<String> = (1..=count).map(|n| n.to_string()).collect();
    let missing: Vec<_> = wanted.difference(&ids).collect();
    let extra: Vec<_> = ids.difference(&wanted).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, unexpected {extra:?}"
    );
}

/// Polls `done` every 10 ms until it holds; fails naming `what` after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not after {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until the file at `path` holds at least `count` lines.
pub fn wait_for_lines(path: &Path, count: usize, limit: Duration) {
    wait_until(limit, &format!("{count} outcome lines"), || {
        std::fs::read_to_string(path)
            .map(|t| t.lines().count())
            .unwrap_or(0)
            >= count
    });
}

/// Waits for `child` to exit (killing it and failing after `limit`); its
/// exit code and standard error (when piped).
pub fn wait_with_limit(mut child: Child, limit: Duration) -> (Option<i32>, String) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            if let Some(pipe) = child.stderr.as_mut() {
                std::io::Read::read_to_string(pipe, &mut stderr).unwrap();
            }
            return (status.code(), stderr);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends the signal `name` (`INT`, `TERM`, `HUP`) to `child` with kill(1).
pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name}");
}

/// Sleeps until just after the next wall-clock second boundary, where a
/// fixed-window gateway starts counting again.
pub fn wait_for_second_boundary() {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let into = Duration::from_nanos(u64::from(now.subsec_nanos()));
    std::thread::sleep(Duration::from_secs(1) - into + Duration::from_millis(5));
}

/// A scratch directory with an input and an outcome file in it.
pub struct Batch {
    pub dir: tempfile::TempDir,
    pub input: PathBuf,
    pub out: PathBuf,
}

impl Batch {
    /// `count` URLs in `urls.txt`, outcomes to `out.jsonl`.
    pub fn of(count: usize) -> Batch {
        let dir = tempfile::tempdir().unwrap();
        let input = PathBuf::from(url_list(dir.path(), count));
        let out = dir.path().join("out.jsonl");
        Batch { dir, input, out }
    }

    /// The input's path as a string.
    pub fn input(&self) -> &str {
        self.input.to_str().unwrap()
    }

    /// The outcome file's path as a string.
    pub fn out(&self) -> &str {
        self.out.to_str().unwrap()
    }
}

/// A Restb.ai client for `base_url` with `key` and a per-request `timeout`.
pub fn client(base_url: &str, key: &str, timeout: Duration) -> Client {
    let mut config = ClientConfig::default();
    config.base_url = base_url.to_string();
    config.timeout = timeout;
    Client::new(ClientKey::new(key).unwrap(), &config).unwrap()
}

/// The exactly-once check over a library run: no job finished twice, and
/// the jobs finished are exactly `jobs`.
pub fn assert_jobs_once(jobs: &[Job], outcomes: &[Finished<Job, CallOutput>]) {
    // The jobs of these runs have distinct ids; `--per-model` ones share
    // an id and differ by model.
    let id_and_models = |job: &Job| (job.id.clone(), job.models.clone());
    let mut seen = HashSet::new();
    for outcome in outcomes {
        let key = id_and_models(&outcome.job);
        assert!(seen.insert(key.clone()), "{key:?} finished twice");
    }
    let wanted: HashSet<_> = jobs.iter().map(id_and_models).collect();
    assert_eq!(seen.len(), wanted.len(), "jobs finished");
    assert_eq!(seen, wanted);
}

//! Real signals sent to the real binary: SIGINT, SIGTERM and SIGHUP stop the
//! run cleanly (exit 130, whole lines, resumable); a second signal quits at
//! once; a SIGHUP or SIGINT the parent set to ignore (`nohup`, a background
//! job of a non-interactive shell) stays ignored; `kill -9` leaves a file that
//! `--resume` completes exactly once.

use restb::mock::{MockConfig, MockServer};
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const JOBS: usize = 60;

struct Batch {
    _dir: tempfile::TempDir,
    input: PathBuf,
    out: PathBuf,
}

fn batch() -> Batch {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("urls.txt");
    let body: String = (1..=JOBS)
        .map(|n| format!("https://example.com/{n}.jpg\n"))
        .collect();
    std::fs::write(&input, body).unwrap();
    let out = dir.path().join("out.jsonl");
    Batch {
        _dir: dir,
        input,
        out,
    }
}

fn spawn_run(batch: &Batch, base: &str, extra: &[&str]) -> Child {
    // Default dispositions whatever this test process inherited, so that the
    // runs that expect a signal to be heard do not depend on how the tests
    // were started.
    let mut command = Command::new("env");
    command.args(["--default-signal=HUP,INT,TERM", env!("CARGO_BIN_EXE_restb")]);
    spawn(command, batch, base, extra)
}

/// Like [`spawn_run`], through `sh -c 'trap "" SIGNALS; exec restb ...'`:
/// the run inherits `signals` ignored, as under `nohup` or in a background job
/// of a non-interactive shell.
fn spawn_run_ignoring(batch: &Batch, base: &str, extra: &[&str], signals: &str) -> Child {
    let mut command = Command::new("sh");
    command.args([
        "-c",
        &format!("trap '' {signals}; exec \"$0\" \"$@\""),
        env!("CARGO_BIN_EXE_restb"),
    ]);
    spawn(command, batch, base, extra)
}

fn spawn(mut command: Command, batch: &Batch, base: &str, extra: &[&str]) -> Child {
    command
        .args([
            "run",
            batch.input.to_str().unwrap(),
            "--base-url",
            base,
            "--models",
            "re_logo",
        ])
        .args(["-o", batch.out.to_str().unwrap()])
        .args(extra)
        .env("RESTB_CLIENT_KEY", "k")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_for_lines(path: &Path, count: usize, limit: Duration) {
    let start = Instant::now();
    while start.elapsed() < limit {
        let lines = std::fs::read_to_string(path)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if lines >= count {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("fewer than {count} outcome lines after {limit:?}");
}

fn wait_with_limit(mut child: Child, limit: Duration) -> (Option<i32>, String) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            return (status.code(), stderr);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every line whole JSON, no job twice; returns the ids.
fn ids_exactly_once(path: &Path) -> HashSet<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut ids = HashSet::new();
    for line in text.lines() {
        let value: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("torn line {line:?}: {e}"));
        let id = value["id"].as_str().unwrap().to_string();
        assert!(ids.insert(id.clone()), "job {id} written twice");
    }
    ids
}

fn interrupt_then_resume(signal_name: &str) {
    let mut mock_config = MockConfig::default();
    mock_config.latency = Duration::from_millis(400);
    let server = MockServer::start(mock_config).unwrap();
    let base = server.base_url();
    let batch = batch();
    let child = spawn_run(&batch, &base, &["--rps", "20"]);
    wait_for_lines(&batch.out, 3, Duration::from_secs(10));
    let sent_at = Instant::now();
    signal(&child, signal_name);
    let (code, stderr) = wait_with_limit(child, Duration::from_secs(10));
    assert_eq!(code, Some(130), "{stderr}");
    // In-flight requests (400 ms) finish; nothing new starts.
    assert!(sent_at.elapsed() < Duration::from_secs(3));
    assert!(stderr.contains("--resume"), "{stderr}");
    assert!(stderr.contains("requests processed in ["), "{stderr}");
    let first = ids_exactly_once(&batch.out);
    assert!(first.len() < JOBS, "the run was interrupted");
    let requests_before = server.counters().requests;
    assert_eq!(
        requests_before,
        first.len() as u64,
        "every request sent has its outcome written"
    );

    let resumed = spawn_run(&batch, &base, &["--rps", "200", "--resume"]);
    let (code, stderr) = wait_with_limit(resumed, Duration::from_secs(20));
    assert_eq!(code, Some(0), "{stderr}");
    let all = ids_exactly_once(&batch.out);
    assert_eq!(all.len(), JOBS);
    assert_eq!(server.counters().requests, JOBS as u64, "no job sent twice");
}

#[test]
fn sigint_stops_cleanly_and_resume_completes_exactly_once() {
    interrupt_then_resume("INT");
}

#[test]
fn sigterm_stops_cleanly_and_resume_completes_exactly_once() {
    interrupt_then_resume("TERM");
}

#[test]
fn sighup_stops_cleanly_and_resume_completes_exactly_once() {
    interrupt_then_resume("HUP");
}

/// Regression: ctrlc's `termination` feature installed its handler over the
/// ignore that `nohup` sets, so `nohup restb run ... &` died (exit 130) when
/// its terminal closed.
#[test]
fn sighup_and_sigint_ignored_by_the_parent_stay_ignored() {
    let mut mock_config = MockConfig::default();
    mock_config.latency = Duration::from_millis(200);
    let server = MockServer::start(mock_config).unwrap();
    let batch = batch();
    let child = spawn_run_ignoring(&batch, &server.base_url(), &["--rps", "30"], "HUP INT");
    wait_for_lines(&batch.out, 3, Duration::from_secs(10));
    signal(&child, "HUP");
    signal(&child, "INT");
    let (code, stderr) = wait_with_limit(child, Duration::from_secs(30));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("interrupted"), "{stderr}");
    assert_eq!(ids_exactly_once(&batch.out).len(), JOBS);
    assert_eq!(server.counters().requests, JOBS as u64);
}

#[test]
fn a_second_signal_quits_at_once() {
    let mut mock_config = MockConfig::default();
    mock_config.latency = Duration::from_secs(20);
    let server = MockServer::start(mock_config).unwrap();
    let batch = batch();
    let child = spawn_run(&batch, &server.base_url(), &["--rps", "50"]);
    let start = Instant::now();
    while server.counters().in_flight < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no request in flight"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&child, "INT");
    std::thread::sleep(Duration::from_millis(200));
    signal(&child, "INT");
    let (code, _) = wait_with_limit(child, Duration::from_secs(5));
    assert_eq!(code, Some(130));
}

#[test]
fn after_kill_9_resume_completes_exactly_once() {
    let mut mock_config = MockConfig::default();
    mock_config.latency = Duration::from_millis(100);
    let server = MockServer::start(mock_config).unwrap();
    let base = server.base_url();
    let batch = batch();
    let mut child = spawn_run(&batch, &base, &["--rps", "40"]);
    wait_for_lines(&batch.out, 5, Duration::from_secs(10));
    child.kill().unwrap();
    child.wait().unwrap();
    let resumed = spawn_run(&batch, &base, &["--rps", "200", "--resume"]);
    let (code, stderr) = wait_with_limit(resumed, Duration::from_secs(20));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(ids_exactly_once(&batch.out).len(), JOBS);
}

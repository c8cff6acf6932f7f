//! Real signals sent to the real binary: SIGINT, SIGTERM and SIGHUP stop the
//! run cleanly (exit 130, whole lines, resumable); a second signal quits at
//! once; a SIGHUP or SIGINT the parent set to ignore (`nohup`, a background
//! job of a non-interactive shell) stays ignored; `kill -9` leaves a file that
//! `--resume` completes exactly once.

mod common;

use common::{
    clean_env, ids_exactly_once, signal, start_mock, wait_for_lines, wait_with_limit, Batch,
};
use restb::mock::MockConfig;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const JOBS: usize = 60;

fn batch() -> Batch {
    Batch::of(JOBS)
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
    clean_env(&mut command, Some("test-key-k"))
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
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn interrupt_then_resume(signal_name: &str) {
    let mut mock_config = MockConfig::default();
    mock_config.latency = Duration::from_millis(400);
    let server = start_mock(mock_config);
    let base = server.base_url();
    let batch = batch();
    let child = spawn_run(&batch, &base, &["--rps", "20"]);
    wait_for_lines(&batch.out, 3, Duration::from_secs(10));
    let requests_at_signal = server.counters().requests;
    signal(&child, signal_name);
    let (code, stderr) = wait_with_limit(child, Duration::from_secs(10));
    assert_eq!(code, Some(130), "{stderr}");
    // In-flight requests (400 ms) finish; nothing new starts (at 20/s, at
    // most a start or two that raced the signal's delivery).
    let started_after = server.counters().requests - requests_at_signal;
    assert!(
        started_after <= 3,
        "{started_after} requests after the signal"
    );
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
    let server = start_mock(mock_config);
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
    let server = start_mock(mock_config);
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
    let server = start_mock(mock_config);
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

/// SIGINT the moment `ready` sees something in the mock's counters, then
/// check the stop and that `--resume` completes the batch exactly once.
/// Returns the requests the gateway saw before the resume, and the sum of
/// the attempts the first run's lines record.
fn interrupt_when(
    mock_config: MockConfig,
    extra: &[&str],
    ready: impl Fn(&restb::mock::MockCounters) -> bool,
) -> (u64, u64) {
    let server = start_mock(mock_config);
    let base = server.base_url();
    let batch = batch();
    let child = spawn_run(&batch, &base, extra);
    let start = Instant::now();
    while !ready(&server.counters()) {
        assert!(start.elapsed() < Duration::from_secs(20), "never ready");
        std::thread::sleep(Duration::from_millis(2));
    }
    signal(&child, "INT");
    let (code, stderr) = wait_with_limit(child, Duration::from_secs(20));
    assert_eq!(code, Some(130), "{stderr}");
    let first = ids_exactly_once(&batch.out);
    assert!(first.len() < JOBS, "the run was interrupted");
    let attempts: u64 = common::outcome_lines(&batch.out)
        .iter()
        .map(|l| l["attempts"].as_u64().unwrap())
        .sum();
    let requests = server.counters().requests;

    // The rest against a gateway without faults or limits: each job once.
    let clean = start_mock(MockConfig::default());
    let resumed = spawn_run(&batch, &clean.base_url(), &["--rps", "200", "--resume"]);
    let (code, stderr) = wait_with_limit(resumed, Duration::from_secs(30));
    assert_eq!(code, Some(0), "{stderr}");
    common::assert_exactly_once(&batch.out, JOBS);
    (requests, attempts)
}

#[test]
fn sigint_while_jobs_wait_out_a_backoff_then_resume_is_exactly_once() {
    // A third of the requests draw a 503 (seeded); a job that drew one
    // waits at least 250 ms in the delay heap. The signal goes the moment the
    // gateway has answered a 503 after three successes.
    let mut mock_config = MockConfig::default();
    mock_config.latency = Duration::from_millis(20);
    mock_config.faults = restb::mock::FaultMix::none().with(restb::mock::Fault::Status503, 0.3);
    mock_config.seed = 3;
    let (requests, attempts) = interrupt_when(
        mock_config,
        &["--rps", "40", "--max-attempts", "50"],
        |counters| counters.ok >= 3 && counters.faults >= 1,
    );
    assert!(
        requests > attempts,
        "a job tried before the stop has no line ({requests} requests, {attempts} attempts in lines)"
    );
}

#[test]
fn sigint_after_429s_requeued_jobs_then_resume_is_exactly_once() {
    // The gateway allows 5 per second without saying so (no rate-limit
    // headers); asked for 20/s, the run meets 429s and re-queues those jobs. The signal
    // goes the moment the gateway has refused one.
    let mut mock_config = MockConfig::default();
    mock_config.rps = Some(5);
    mock_config.header_style = restb::mock::HeaderStyle::None;
    mock_config.latency = Duration::from_millis(20);
    let (requests, attempts) = interrupt_when(
        mock_config,
        &["--rps", "20", "--threads", "8"],
        |counters| counters.rate_limited >= 1,
    );
    assert!(requests >= attempts);
}

/// Waits until `child` catches SIGINT (its handler is installed), from
/// `/proc/PID/status`: a signal sent earlier would kill it the default way.
fn wait_for_sigint_handler(child: &Child) {
    let status = format!("/proc/{}/status", child.id());
    common::wait_until(Duration::from_secs(10), "the SIGINT handler", || {
        std::fs::read_to_string(&status)
            .ok()
            .and_then(|text| {
                let mask = text.lines().find_map(|l| l.strip_prefix("SigCgt:"))?;
                u64::from_str_radix(mask.trim(), 16).ok()
            })
            .is_some_and(|mask| mask & (1 << (2 - 1)) != 0)
    });
}

/// `restb ARGS` with default signal dispositions, stdin and stderr piped.
fn spawn_restb(args: &[&str]) -> Child {
    let mut command = Command::new("env");
    command.args(["--default-signal=HUP,INT,TERM", env!("CARGO_BIN_EXE_restb")]);
    clean_env(&mut command, Some("test-key-k"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Regression: a SIGINT while `restb run -` read its standard input said
/// "finishing the requests in flight" and did nothing: nothing was in flight
/// and the read went on. Before the first request, it quits at once.
#[test]
fn first_signal_while_reading_stdin_quits_at_once() {
    let mut child = spawn_restb(&["run", "-", "--base-url", "http://127.0.0.1:9"]);
    // Standard input stays open with nothing more to come.
    let stdin = child.stdin.take();
    std::io::Write::write_all(&mut stdin.as_ref().unwrap(), b"https://example.com/a.jpg\n")
        .unwrap();
    wait_for_sigint_handler(&child);
    signal(&child, "INT");
    let (code, stderr) = wait_with_limit(child, Duration::from_secs(5));
    drop(stdin);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("nothing in flight"), "{stderr}");
}

/// Regression: the same during `restb report`, here blocked opening a FIFO
/// that nobody writes to.
#[test]
fn first_signal_during_report_quits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("out.jsonl");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo");
    let child = spawn_restb(&["report", fifo.to_str().unwrap()]);
    wait_for_sigint_handler(&child);
    signal(&child, "INT");
    let (code, stderr) = wait_with_limit(child, Duration::from_secs(5));
    assert_eq!(code, Some(130), "{stderr}");
}

/// Regression: a signal during `restb report --csv FILE` quit at once and
/// left the half-written `FILE.partial` behind (8 MB in the review).
#[test]
fn a_signal_during_report_removes_the_half_written_csv() {
    let dir = tempfile::tempdir().unwrap();
    let outcomes = dir.path().join("big.jsonl");
    let line = r#"{"id":"ID","image":"https://example.com/ID.jpg","models":["re_logo"],"status":"ok","http_status":200,"attempts":1,"rate_limited":0,"latency_ms":3.0,"solutions":{"re_logo":{"detections":[{"label":"watermark","confidence":0.5}]}}}"#;
    let body: String = (0..400_000)
        .map(|n| line.replace("ID", &n.to_string()) + "\n")
        .collect();
    std::fs::write(&outcomes, body).unwrap();
    let csv = dir.path().join("big.csv");
    let partial = dir.path().join("big.csv.partial");
    let child = common::restb(None)
        .args([
            "report",
            outcomes.to_str().unwrap(),
            "--csv",
            csv.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    common::wait_until(Duration::from_secs(20), "the CSV is being written", || {
        partial.exists()
    });
    signal(&child, "INT");
    let (code, stderr) = wait_with_limit(child, Duration::from_secs(20));
    if code == Some(0) {
        // It finished before the signal came: nothing to check this time.
        assert!(csv.exists() && !partial.exists());
        return;
    }
    assert_eq!(code, Some(130), "{stderr}");
    assert!(!partial.exists(), "the half-written CSV was left behind");
    assert!(!csv.exists());
}

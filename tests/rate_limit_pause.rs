//! A 429 with `Retry-After` over real sockets: the binary against a loopback
//! server that answers one request with a 429 and logs when each request
//! arrived. Every worker pauses, not only the one that got the 429; and a
//! Ctrl-C (a real SIGINT) during a pause of an hour releases the workers
//! waiting in the limiter at once, leaving a file that `--resume` completes
//! exactly once.

mod common;

use common::tiny_server::{answer_kong_429, answer_no_logo, TinyServer};
use common::{
    assert_exactly_once, clean_env, outcome_lines, restb, signal, text, wait_until,
    wait_with_limit, Batch,
};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A request as the server saw it: when it arrived and what it answered.
#[derive(Debug, Clone, Copy)]
struct Seen {
    arrived: Instant,
    status: u16,
}

/// Answers request number `limited` (from 1) with a 429 and `Retry-After:
/// retry_after`, every other one like the API; logs each arrival.
fn limiting_server(
    limited: usize,
    retry_after: &'static str,
) -> (TinyServer, Arc<Mutex<Vec<Seen>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let server = {
        let log = log.clone();
        TinyServer::start(move |request, stream| {
            let status = {
                let mut log = log.lock().unwrap();
                let status = if log.len() + 1 == limited { 429 } else { 200 };
                log.push(Seen {
                    arrived: request.arrived,
                    status,
                });
                status
            };
            if status == 429 {
                return answer_kong_429(stream, retry_after);
            }
            answer_no_logo(stream)
        })
    };
    (server, log)
}

#[test]
fn a_429_with_retry_after_pauses_every_worker() {
    const JOBS: usize = 16;
    let (server, log) = limiting_server(4, "2");
    let batch = Batch::of(JOBS);
    let base = server.base_url();
    let output = restb(Some("test-key-k"))
        .args(["run", batch.input(), "--base-url", &base, "-o", batch.out()])
        .args(["--models", "re_logo", "--threads", "4", "--rps", "20"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_exactly_once(&batch.out, JOBS);
    let lines = outcome_lines(&batch.out);
    assert_eq!(
        lines.iter().filter(|l| l["rate_limited"] == 1).count(),
        1,
        "one job met the 429 and was tried again"
    );
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), JOBS + 1);
    let limited_at = log.iter().find(|s| s.status == 429).unwrap().arrived;
    // Requests already started when the 429 came back may still arrive
    // (four threads, starts 50 ms apart); after that, nobody starts until
    // the two seconds have passed.
    let quiet =
        (limited_at + Duration::from_millis(300))..(limited_at + Duration::from_millis(1900));
    let during: Vec<Duration> = log
        .iter()
        .filter(|s| quiet.contains(&s.arrived))
        .map(|s| s.arrived - limited_at)
        .collect();
    assert!(during.is_empty(), "requests during the pause at {during:?}");
    let after = log
        .iter()
        .filter(|s| s.arrived >= limited_at + Duration::from_millis(1900))
        .count();
    assert!(
        after >= JOBS - 8,
        "{after} requests after the pause: {log:?}"
    );
}

#[test]
fn ctrl_c_during_an_hour_long_pause_ends_the_run_at_once_and_resume_completes() {
    const JOBS: usize = 12;
    let (server, log) = limiting_server(2, "3600");
    let batch = Batch::of(JOBS);
    let base = server.base_url();
    // SIGINT at its default whatever this process inherited.
    let mut env = Command::new("env");
    let child = clean_env(&mut env, Some("test-key-k"))
        .args(["--default-signal=INT", env!("CARGO_BIN_EXE_restb")])
        .args(["run", batch.input(), "--base-url", &base, "-o", batch.out()])
        .args(["--models", "re_logo", "--threads", "4", "--rps", "20"])
        // Allowed to wait the hour out (by default it would end the run).
        .args(["--max-pause", "7200"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(10), "the 429", || {
        log.lock().unwrap().iter().any(|s| s.status == 429)
    });
    // Let every worker reach the limiter and wait there.
    std::thread::sleep(Duration::from_millis(300));
    let requests_before = log.lock().unwrap().len();
    let sent = Instant::now();
    signal(&child, "INT");
    let (code, stderr) = wait_with_limit(child, Duration::from_secs(20));
    let took = sent.elapsed();
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        took < Duration::from_secs(10),
        "the pause held the run {took:?} after SIGINT"
    );
    assert!(stderr.contains("--resume"), "{stderr}");
    assert_eq!(
        log.lock().unwrap().len(),
        requests_before,
        "nothing started after the signal"
    );
    // Every answered request has its line; the 429'd job has none.
    let first = common::ids_exactly_once(&batch.out);
    assert_eq!(first.len(), requests_before - 1, "{stderr}");

    // The gateway no longer limits: resume does the rest, each job once.
    let (again, _log) = limiting_server(usize::MAX, "1");
    let base = again.base_url();
    let output = restb(Some("test-key-k"))
        .args(["run", batch.input(), "--base-url", &base, "-o", batch.out()])
        .args(["--models", "re_logo", "--rps", "100", "--resume"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_exactly_once(&batch.out, JOBS);
}

//! A long pause is said aloud (issue 9): the binary, with `-q` and its
//! standard error a pipe (no terminal), against a loopback server whose first
//! answer is a 429 with `Retry-After: 6`. A warning naming the reason and the
//! wall-clock end appears while the pause still holds (before any request is
//! sent again), the run then finishes every job exactly once, and
//! `--stats-json` counts the paused seconds. A 2 s pause stays quiet.

mod common;

use common::tiny_server::{answer_kong_429, answer_no_logo, TinyServer};
use common::{assert_exactly_once, restb, Batch};
use restb::limiter::date_time;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const JOBS: usize = 4;

/// Answers the first request with a 429 and `Retry-After: retry_after`,
/// every later one like the API; logs when each request arrived.
fn first_reply_limited(retry_after: &'static str) -> (TinyServer, Arc<Mutex<Vec<Instant>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let server = {
        let log = log.clone();
        TinyServer::start(move |request, stream| {
            let first = {
                let mut log = log.lock().unwrap();
                log.push(request.arrived);
                log.len() == 1
            };
            if first {
                return answer_kong_429(stream, retry_after);
            }
            answer_no_logo(stream)
        })
    };
    (server, log)
}

/// `restb run -q` against `base` with standard error piped (so not a
/// terminal); one thread, so the 429 comes before anything else is sent.
fn spawn_run(base: &str, batch: &Batch, stats: &str) -> Child {
    restb(Some("test-key-k"))
        .args(["run", batch.input(), "--base-url", base, "-o", batch.out()])
        .args(["--models", "re_logo", "--threads", "1", "--rps", "20", "-q"])
        .args(["--stats-json", stats])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Each line of `child`'s standard error with the instant it was read.
fn stderr_lines(child: &mut Child) -> Receiver<(Instant, String)> {
    let pipe = child.stderr.take().unwrap();
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { return };
            if send.send((Instant::now(), line)).is_err() {
                return;
            }
        }
    });
    receive
}

/// Reads lines until the child's standard error closes (or `limit` passes,
/// killing the child and failing): every line with its instant.
fn read_to_end(
    child: &mut Child,
    lines: &Receiver<(Instant, String)>,
    limit: Duration,
) -> Vec<(Instant, String)> {
    let start = Instant::now();
    let mut seen = Vec::new();
    loop {
        let left = limit.saturating_sub(start.elapsed());
        match lines.recv_timeout(left.max(Duration::from_millis(1))) {
            Ok(line) => seen.push(line),
            Err(RecvTimeoutError::Disconnected) => return seen,
            Err(RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("still running after {limit:?}; stderr so far: {seen:?}");
            }
        }
    }
}

/// The pause warning: a line saying `pausing` with an `HH:MM:SS` after
/// `until `; that end as seconds into the UTC day.
fn pause_end(line: &str) -> Option<u64> {
    if !line.contains("pausing") {
        return None;
    }
    let at = line.find("until ")? + "until ".len();
    let clock = line.get(at..at + 8)?;
    let parts: Vec<u64> = clock.split(':').filter_map(|p| p.parse().ok()).collect();
    match parts[..] {
        [h, m, s] if clock.len() == 8 && h < 24 && m < 60 && s < 60 => Some(h * 3600 + m * 60 + s),
        _ => None,
    }
}

/// Seconds into the UTC day at `at` (an instant in the recent past).
fn utc_day_seconds(at: Instant) -> u64 {
    let wall = SystemTime::now() - at.elapsed();
    wall.duration_since(UNIX_EPOCH).unwrap().as_secs() % 86_400
}

fn paused_s(stats: &str) -> f64 {
    let json: Value = serde_json::from_str(&std::fs::read_to_string(stats).unwrap()).unwrap();
    json["paused_s"].as_f64().expect("paused_s in --stats-json")
}

#[test]
fn a_six_second_pause_warns_with_reason_and_end_while_it_holds() {
    let (server, log) = first_reply_limited("6");
    let batch = Batch::of(JOBS);
    let stats = batch.dir.path().join("stats.json");
    let stats = stats.to_str().unwrap();
    let mut child = spawn_run(&server.base_url(), &batch, stats);
    let lines = stderr_lines(&mut child);
    let seen = read_to_end(&mut child, &lines, Duration::from_secs(20));
    let status = child.wait().unwrap();
    let all: Vec<&str> = seen.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(status.code(), Some(0), "{all:#?}");
    assert_exactly_once(&batch.out, JOBS);

    let warnings: Vec<_> = seen
        .iter()
        .filter(|(_, l)| pause_end(l).is_some())
        .collect();
    assert_eq!(warnings.len(), 1, "one pause warning: {all:#?}");
    let (read_at, line) = warnings[0];
    assert!(line.contains("WARN"), "{line}");
    assert!(
        line.contains("429") && line.contains("Retry-After"),
        "{line}"
    );
    // It was read while the pause held: after the 429, before any request
    // went out again.
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), JOBS + 1, "the 429'd job was sent again once");
    assert!(*read_at > log[0], "{line}");
    assert!(
        *read_at < log[1],
        "read {:?} after the pause ended",
        *read_at - log[1]
    );
    // The time named is the end, not the start: some seconds after the
    // moment the line was read (modulo midnight).
    let ahead = (pause_end(line).unwrap() + 86_400 - utc_day_seconds(*read_at)) % 86_400;
    assert!(
        (1..=7).contains(&ahead),
        "ends {ahead} s after it was read: {line}"
    );

    let paused = paused_s(stats);
    assert!((5.0..30.0).contains(&paused), "paused_s {paused}");
}

#[test]
fn a_two_second_pause_is_not_warned_about() {
    let (server, log) = first_reply_limited("2");
    let batch = Batch::of(JOBS);
    let stats = batch.dir.path().join("stats.json");
    let stats = stats.to_str().unwrap();
    let mut child = spawn_run(&server.base_url(), &batch, stats);
    let lines = stderr_lines(&mut child);
    let seen = read_to_end(&mut child, &lines, Duration::from_secs(15));
    let status = child.wait().unwrap();
    let all: Vec<&str> = seen.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(status.code(), Some(0), "{all:#?}");
    assert_exactly_once(&batch.out, JOBS);
    assert_eq!(
        log.lock().unwrap().len(),
        JOBS + 1,
        "the 429 came and was retried"
    );
    assert!(
        !all.iter()
            .any(|l| l.contains("pausing") || pause_end(l).is_some()),
        "{all:#?}"
    );
    let paused = paused_s(stats);
    assert!((1.0..5.0).contains(&paused), "paused_s {paused}");
}

/// A pause longer than `--max-pause` (a `Retry-After` of two hours; the
/// default is 300 s) is not waited out: the run stops at once, exit 3, the
/// job that drew the 429 and those never sent left without an outcome, and
/// says when to resume: when the gateway said (a `Retry-After` used to be
/// read as an hour at most, and the run named a time an hour too soon).
#[test]
fn a_pause_longer_than_max_pause_ends_the_run_resumably() {
    let (server, log) = first_reply_limited("7200");
    let asked = SystemTime::now() + Duration::from_secs(7200);
    let batch = Batch::of(JOBS);
    let stats = batch.dir.path().join("stats.json");
    let stats = stats.to_str().unwrap();
    let mut child = spawn_run(&server.base_url(), &batch, stats);
    let lines = stderr_lines(&mut child);
    let seen = read_to_end(&mut child, &lines, Duration::from_secs(30));
    let status = child.wait().unwrap();
    let all: Vec<&str> = seen.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(status.code(), Some(3), "{all:#?}");
    assert_eq!(log.lock().unwrap().len(), 1, "nothing sent after the 429");
    assert!(
        all.iter().any(|l| l.contains("(429, Retry-After), longer than --max-pause (300 s): 4 jobs have no outcome yet; to send them after then, run: ")
            && l.contains("--resume")),
        "{all:#?}"
    );
    assert_eq!(std::fs::read_to_string(&batch.out).unwrap(), "");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(stats).unwrap()).unwrap();
    assert_eq!(json["long_pause"]["reason"], "429, Retry-After");
    // The same format for both, so their order is the times'.
    let until = json["long_pause"]["until"].as_str().unwrap();
    let latest = SystemTime::now() + Duration::from_secs(7200);
    assert!(
        (date_time(asked).as_str()..=date_time(latest).as_str()).contains(&until),
        "{until}: two hours after the 429"
    );
}

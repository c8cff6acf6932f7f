//! Regression: when the API refused the key (401/403), every job in flight
//! at that moment got a `failed` outcome, so after the key was fixed
//! `--resume` skipped them and exited 1. Over a real loopback server that
//! starts refusing the first key after a few requests while many more are in
//! flight: the run stops (exit 1) with no outcome for the refused jobs, and
//! the resume with a good key does every job exactly once, all ok.

mod common;

use common::tiny_server::{answer, answer_no_logo, TinyServer};
use serde_json::Value;
use std::collections::HashSet;
use std::process::Output;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const JOBS: usize = 60;
/// Requests with the first key that are answered before it is revoked.
const ANSWERED: u64 = 10;

/// Counts of what the server answered.
#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    refused: AtomicU64,
}

/// A gateway with 300 ms latency that accepts `good-key` always and
/// `revoked-key` for its first [`ANSWERED`] requests only.
fn revoking_gateway(counts: Arc<Counts>) -> TinyServer {
    let revoked_seen = AtomicU64::new(0);
    TinyServer::start(move |request, stream| {
        std::thread::sleep(Duration::from_millis(300));
        let refused = request.target.contains("client_key=revoked-key")
            && revoked_seen.fetch_add(1, Ordering::SeqCst) >= ANSWERED;
        if refused {
            counts.refused.fetch_add(1, Ordering::SeqCst);
            return answer(
                stream,
                401,
                "application/json",
                r#"{"message":"Invalid authentication credentials"}"#,
            );
        }
        counts.ok.fetch_add(1, Ordering::SeqCst);
        answer_no_logo(stream)
    })
}

fn run(dir: &std::path::Path, base: &str, key: &str, extra: &[&str]) -> Output {
    common::restb(Some(key))
        .args([
            "run",
            dir.join("urls.txt").to_str().unwrap(),
            "--base-url",
            base,
        ])
        .args(["--models", "re_logo", "--rps", "100", "--threads", "16"])
        .args(["-o", dir.join("out.jsonl").to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap()
}

fn outcomes(dir: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("out.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn a_refused_key_leaves_the_jobs_in_flight_for_the_resume() {
    let counts = Arc::new(Counts::default());
    let server = revoking_gateway(counts.clone());
    let base = server.base_url();
    let dir = tempfile::tempdir().unwrap();
    let urls: String = (1..=JOBS)
        .map(|n| format!("https://example.com/{n}.jpg\n"))
        .collect();
    std::fs::write(dir.path().join("urls.txt"), urls).unwrap();

    let first = run(dir.path(), &base, "revoked-key", &[]);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert_eq!(first.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("refused the client key"), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    let lines = outcomes(dir.path());
    let refused = counts.refused.load(Ordering::SeqCst);
    assert!(
        refused > 1,
        "several requests were in flight when the key was refused: {refused}"
    );
    assert!(lines.len() < JOBS, "the run stopped early");
    for line in &lines {
        assert_eq!(
            line["status"], "ok",
            "only answered jobs have an outcome: {line}"
        );
    }
    assert_eq!(lines.len() as u64, counts.ok.load(Ordering::SeqCst));

    let resumed = run(dir.path(), &base, "good-key", &["--resume"]);
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert_eq!(resumed.status.code(), Some(0), "{stderr}");
    let lines = outcomes(dir.path());
    let mut ids = HashSet::new();
    for line in &lines {
        assert_eq!(line["status"], "ok", "{line}");
        assert!(
            ids.insert(line["id"].as_str().unwrap().to_string()),
            "twice: {line}"
        );
    }
    assert_eq!(ids.len(), JOBS);
    assert_eq!(
        counts.ok.load(Ordering::SeqCst),
        JOBS as u64,
        "no job answered twice"
    );
}

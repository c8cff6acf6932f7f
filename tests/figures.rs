//! Regressions for figures that misled: `sustained [0.00]` for a short run,
//! float noise in `--stats-json` (`51.486999999999995`), and
//! `by_http_status` silent about a 500 that was answered and then retried.
//! Against a real loopback server that answers 500 to each image's first
//! request and 200 to the retry.

mod common;

use common::tiny_server::{answer, answer_no_logo, TinyServer};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Mutex;

fn five_hundred_then_ok() -> TinyServer {
    let seen = Mutex::new(HashSet::new());
    TinyServer::start(move |request, stream| {
        if seen.lock().unwrap().insert(request.target.clone()) {
            return answer(
                stream,
                500,
                "application/json",
                r#"{"error":"true","error_id":"500","message":"internal server error"}"#,
            );
        }
        answer_no_logo(stream)
    })
}

/// Every number written with more decimals than a microsecond needs.
fn noisy_numbers(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter(|token| {
            token
                .split_once('.')
                .is_some_and(|(_, decimals)| decimals.len() > 6)
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn a_short_run_reports_honest_figures() {
    let server = five_hundred_then_ok();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("urls.txt");
    let urls: String = (1..=3)
        .map(|n| format!("https://example.com/{n}.jpg\n"))
        .collect();
    std::fs::write(&input, urls).unwrap();
    let stats = dir.path().join("stats.json");
    let run = common::restb(Some("test-key-k"))
        .args([
            "run",
            input.to_str().unwrap(),
            "--base-url",
            &server.base_url(),
        ])
        .args(["--models", "re_logo", "--rps", "100", "-o", "/dev/null"])
        .args(["--stats-json", stats.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    // The tutorial's first line is kept; no rate is claimed for a run this short.
    let first = stderr
        .lines()
        .find(|l| l.contains("requests processed in"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(first.starts_with("[3] requests processed in ["), "{first}");
    assert!(
        first.contains("] rps") && first.contains("total throughput: ["),
        "{first}"
    );
    assert!(stderr.contains("sustained [n/a]"), "{stderr}");
    assert!(!stderr.contains("sustained [0.00]"), "{stderr}");

    let text = std::fs::read_to_string(&stats).unwrap();
    assert_eq!(noisy_numbers(&text), Vec::<String>::new(), "{text}");
    let json: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["sustained_rps"], Value::Null, "{text}");
    // Final statuses, and every reply.
    assert_eq!(json["by_http_status"], json!({"200": 3}), "{text}");
    assert_eq!(
        json["replies_by_http_status"],
        json!({"200": 3, "500": 3}),
        "{text}"
    );
    assert_eq!(json["retried"], 3, "{text}");
}

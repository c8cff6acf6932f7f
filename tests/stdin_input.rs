//! `restb run -`: standard input is spooled to a temporary file, checked
//! whole (a bad line is reported as `<stdin>:LINE` before any request), then
//! streamed: every image is sent exactly once.

use restb::mock::{MockConfig, MockServer};
use std::collections::HashSet;
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn run_with_stdin(base: &str, out: &std::path::Path, input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_restb"))
        .args([
            "run",
            "-",
            "--base-url",
            base,
            "--rps",
            "200",
            "--models",
            "re_logo",
            "-q",
        ])
        .arg("-o")
        .arg(out)
        .env_remove("RUST_LOG")
        .env("RESTB_CLIENT_KEY", "stdin-test-key")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

#[test]
fn standard_input_is_checked_whole_then_every_image_sent_once() {
    let server = MockServer::start(MockConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let input: String = (1..=300)
        .map(|n| format!("https://example.com/p/{n}.jpg\n"))
        .collect();
    let output = run_with_stdin(&server.base_url(), &out, &input);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let text = std::fs::read_to_string(&out).unwrap();
    let images: Vec<String> = text
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            value["image"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(images.len(), 300);
    assert_eq!(
        images.iter().collect::<HashSet<_>>().len(),
        300,
        "each once"
    );
    assert_eq!(server.counters().requests, 300);
    server.stop();
}

#[test]
fn a_bad_line_late_in_standard_input_stops_the_run_before_any_request() {
    let server = MockServer::start(MockConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let mut input: String = (1..=5000)
        .map(|n| format!("https://example.com/p/{n}.jpg\n"))
        .collect();
    input.push_str("ftp://example.com/late.jpg\n");
    let output = run_with_stdin(&server.base_url(), &out, &input);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("<stdin>:5001: unsupported URL scheme `ftp`"),
        "{stderr}"
    );
    assert_eq!(server.counters().requests, 0, "nothing sent");
    server.stop();
}

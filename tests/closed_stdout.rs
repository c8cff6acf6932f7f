//! Standard output whose reader has gone (`restb completions bash | head -1`):
//! the rest of the output is not wanted, and the command ends as it would
//! have, with no panic (std's `print!` panics on EPIPE; exit 101 before).

mod common;

use common::{restb, signal, wait_with_limit};
use std::fs::File;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// The write end of a pipe whose read end is already closed: every write to
/// it fails with EPIPE, whatever the timing.
fn reader_gone() -> Stdio {
    // The pipe to a child's stdin; the child's end goes when it exits.
    let mut reader = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
    let write = reader.stdin.take().unwrap();
    reader.wait().unwrap();
    Stdio::from(write)
}

fn run_with_reader_gone(args: &[&str]) -> Output {
    restb(None)
        .args(args)
        .stdout(reader_gone())
        .output()
        .expect("the binary runs")
}

fn assert_quiet_end(output: &Output, code: i32, what: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    assert_eq!(output.status.code(), Some(code), "{what}: {stderr}");
}

#[test]
fn completions_and_a_dry_run_end_quietly_when_stdout_is_gone() {
    let output = run_with_reader_gone(&["completions", "bash"]);
    assert_quiet_end(&output, 0, "completions");

    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("images.txt");
    std::fs::write(
        &input,
        "https://example.com/a.jpg\nhttps://example.com/b.jpg\n",
    )
    .unwrap();
    let output = run_with_reader_gone(&["run", "--dry-run", input.to_str().unwrap()]);
    assert_quiet_end(&output, 0, "dry run");
}

#[test]
fn the_mock_keeps_serving_when_nobody_reads_its_url() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.txt");
    let child = restb(None)
        .args(["mock", "--port", "0"])
        .stdout(reader_gone())
        .stderr(File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // It says where it listens on stderr too; wait for that line.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let listening = || std::fs::read_to_string(&log).unwrap_or_default();
    while !listening().contains("listening on") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(listening().contains("listening on"), "{}", listening());
    signal(&child, "TERM");
    let (code, _) = wait_with_limit(child, Duration::from_secs(10));
    assert!(!listening().contains("panicked"), "{}", listening());
    assert_eq!(code, Some(0), "{}", listening());
}

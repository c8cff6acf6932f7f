//! Regression: `--timeout` limited each phase of a request (headers, body...)
//! separately, so a server that dribbled its answer could hold one request
//! for several times the timeout and still count as a success. Over a real
//! loopback server that sends its head and then its body slowly (each phase
//! within the timeout, the whole well past it), the request ends at the
//! timeout as a transient failure.

mod common;

use common::tiny_server::TinyServer;
use serde_json::Value;
use std::io::Write;
use std::time::{Duration, Instant};

/// Pieces each part of the answer is sent in, and the pause before each.
const PIECES: usize = 8;
const PAUSE: Duration = Duration::from_millis(100);

/// Sends `bytes` in [`PIECES`] pieces, [`PAUSE`] apart.
fn dribble(stream: &mut std::net::TcpStream, bytes: &[u8]) -> bool {
    for piece in bytes.chunks(bytes.len().div_ceil(PIECES)) {
        std::thread::sleep(PAUSE);
        if stream
            .write_all(piece)
            .and_then(|()| stream.flush())
            .is_err()
        {
            return false;
        }
    }
    true
}

/// A gateway whose answers are right but slow: about 0.8 s for the head,
/// then about 0.8 s for the body.
fn dribbling_gateway() -> TinyServer {
    TinyServer::start(|_, stream| {
        let _ = stream.set_nodelay(true);
        let body = r#"{"error":"false","response":{"solutions":{"re_logo":{"detections":[]}}}}"#;
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        dribble(stream, head.as_bytes()) && dribble(stream, body.as_bytes())
    })
}

#[test]
fn timeout_is_a_deadline_for_the_whole_request() {
    let server = dribbling_gateway();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("urls.txt");
    std::fs::write(&input, "https://example.com/1.jpg\n").unwrap();
    let out = dir.path().join("out.jsonl");
    let stats = dir.path().join("stats.json");
    let start = Instant::now();
    let run = common::restb(Some("test-key-k"))
        .args([
            "run",
            input.to_str().unwrap(),
            "--base-url",
            &server.base_url(),
        ])
        .args([
            "--models",
            "re_logo",
            "--timeout",
            "1",
            "--max-attempts",
            "1",
        ])
        .args([
            "-o",
            out.to_str().unwrap(),
            "--stats-json",
            stats.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let elapsed = start.elapsed();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    let outcome: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(outcome["status"], "failed", "{outcome}");
    let error = outcome["error"].as_str().unwrap();
    assert!(error.contains("timed out"), "{error}");
    let stats: Value = serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    assert_eq!(stats["transient_errors"], 1, "{stats}");
    // Generous: the deadline is 1 s; a start-up under load adds a little.
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

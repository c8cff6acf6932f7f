//! Regression: a gateway that echoes the request's URL in its answer
//! (`{"error":"true","message":"bad request /vision/v2/predict?client_key=..."}`)
//! put the client key into the outcome file and the log. Over a real loopback
//! server that echoes the request line in every way a server might write it,
//! the key appears in no output: outcome file, standard error at trace level,
//! `--stats-json`, `--summary`.

mod common;

use common::tiny_server::{answer, percent_decode, TinyServer};
use serde_json::{json, Value};

/// A key with the characters that URL encoders treat differently: ureq
/// encodes `+/=%` and leaves `!*` as they are.
const KEY: &str = "tOpS3cr3t+/=%7E!*z";
/// No output may hold even this much of the key (a snippet may cut it short).
const KEY_START: &str = "tOpS3cr3t";

/// Which image a request is for (`.../N.jpg` in its query).
fn image_number(target: &str) -> u32 {
    let decoded = percent_decode(target);
    let end = decoded.find(".jpg").unwrap();
    let start = decoded[..end].rfind('/').unwrap() + 1;
    decoded[start..end].parse().unwrap()
}

/// The echoing gateway: image 1 succeeds with the URL in a label, 2 to 4 are
/// refused with the URL in the message (as sent; percent-decoded; escaped
/// the way PHP escapes slashes; fully re-encoded in lower case), 5 is a 502
/// page quoting it, 6 is refused with a long message whose key, encoded
/// twice (every character of its percent-encoding JSON-escaped), straddles
/// the point where restb cuts long messages, 7 succeeds with the key
/// encoded that way in a label, 8 succeeds with a label whose raw text
/// holds an escaped backslash right before what reads, raw, as the key
/// percent-encoded twice (redacted in the raw text, that would break the
/// JSON), 9 is a 401 quoting the request line.
fn echo_gateway() -> TinyServer {
    TinyServer::start(|request, stream| {
        let target = request.target.clone();
        let lower: String = KEY.bytes().map(|b| format!("%{b:02x}")).collect();
        let message = |text: String| json!({"error": "true", "message": text}).to_string();
        match image_number(&target) {
            1 => answer(
                stream,
                200,
                "application/json",
                &json!({"error": "false", "response": {"solutions": {"re_logo": {
                    "detections": [{"label": format!("seen {target}")}]}}}})
                .to_string(),
            ),
            2 => answer(
                stream,
                400,
                "application/json",
                &message(format!("bad request {target}")),
            ),
            3 => answer(
                stream,
                400,
                "application/json",
                &message(format!("bad request {}", percent_decode(&target))).replace('/', "\\/"),
            ),
            4 => answer(
                stream,
                400,
                "application/json",
                &message(format!("unknown client_key={lower}")),
            ),
            5 => answer(
                stream,
                502,
                "text/html",
                &format!("<html>bad gateway for GET {target}</html>"),
            ),
            6 => {
                // Decoded, nine of the key's characters (27 of its percent
                // encoding) come before the 500th character of the message.
                let body = format!(
                    r#"{{"error":"true","message":"{}{}"}}"#,
                    "x".repeat(473),
                    escaped_twice()
                );
                answer(stream, 400, "application/json", &body)
            }
            7 => answer(
                stream,
                200,
                "application/json",
                &format!(
                    r#"{{"error":"false","response":{{"solutions":{{"re_logo":{{"detections":[{{"label":"seen client_key={}&"}}]}}}}}}}}"#,
                    escaped_twice()
                ),
            ),
            8 => {
                // Raw: `x\\u0025` and the key's first byte in hex, then the
                // rest percent-encoded; decoded: `x\u0025..`, the key with
                // its first percent sign JSON-escaped.
                let rest: String = KEY.bytes().skip(1).map(|b| format!("%{b:02X}")).collect();
                let label = format!(r"x\\u0025{:02X}{rest}", KEY.as_bytes()[0]);
                answer(
                    stream,
                    200,
                    "application/json",
                    &format!(
                        r#"{{"error":"false","response":{{"solutions":{{"re_logo":{{"detections":[{{"label":"{label}"}}]}}}}}}}}"#
                    ),
                )
            }
            _ => answer(
                stream,
                401,
                "application/json",
                &json!({"message": format!("invalid key in {}", request.line)}).to_string(),
            ),
        }
    })
}

/// The key percent-encoded, with every character of that JSON-escaped.
fn escaped_twice() -> String {
    KEY.bytes()
        .flat_map(|b| format!("%{b:02X}").into_bytes())
        .map(|c| format!("\\u{:04x}", c))
        .collect()
}

#[test]
fn a_gateway_echoing_the_url_never_shows_the_key() {
    let server = echo_gateway();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("urls.txt");
    let urls: String = (1..=9)
        .map(|n| format!("https://example.com/{n}.jpg\n"))
        .collect();
    std::fs::write(&input, urls).unwrap();
    let out = dir.path().join("out.jsonl");
    let stats = dir.path().join("stats.json");
    let run = common::restb(Some(KEY))
        .args([
            "run",
            input.to_str().unwrap(),
            "--base-url",
            &server.base_url(),
        ])
        .args(["--models", "re_logo", "--threads", "1", "--rps", "200"])
        .args(["--max-attempts", "1", "--summary"])
        .args([
            "-o",
            out.to_str().unwrap(),
            "--stats-json",
            stats.to_str().unwrap(),
        ])
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    let outcomes = std::fs::read_to_string(&out).unwrap();
    let stats = std::fs::read_to_string(&stats).unwrap();
    for (what, text) in [
        ("outcome file", &*outcomes),
        ("standard error", &*stderr),
        ("standard output", &*stdout),
        ("--stats-json", &*stats),
    ] {
        assert!(!text.contains(KEY_START), "the key in the {what}:\n{text}");
        assert!(
            !percent_decode(text).contains(KEY_START),
            "the key, percent-encoded, in the {what}:\n{text}"
        );
    }
    // The echoes did arrive, redacted.
    let lines: Vec<Value> = outcomes
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let field = |id: &str, pointer: &str| {
        let line = lines.iter().find(|l| l["id"] == id).unwrap();
        line.pointer(pointer).unwrap().as_str().unwrap().to_string()
    };
    for id in ["1", "7"] {
        let label = field(id, "/solutions/re_logo/detections/0/label");
        assert!(label.contains("client_key=***&"), "{id}: {label}");
    }
    // Parsed, then redacted: the reply stays a success.
    assert_eq!(field("8", "/solutions/re_logo/detections/0/label"), "x***");
    for id in ["2", "3", "4"] {
        assert!(
            field(id, "/error").contains("client_key=***"),
            "{id}: {}",
            field(id, "/error")
        );
    }
    assert!(
        field("5", "/error").contains("client_key=***"),
        "{}",
        field("5", "/error")
    );
    // Hidden before the cut, the key leaves a message short enough to keep whole.
    assert_eq!(field("6", "/error"), format!("{}***", "x".repeat(473)));
    assert!(stderr.contains("client_key=***"), "{stderr}");
}

#[test]
fn restb_bench_against_an_echoing_url_never_shows_the_key() {
    // Every other request is refused with the URL in the message; the rest
    // succeed with it in a label.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let server = TinyServer::start(move |request, stream| {
        let n = {
            let mut log = log.lock().unwrap();
            log.push(percent_decode(&request.target));
            log.len() - 1
        };
        let target = &request.target;
        if n % 2 == 0 {
            let body = json!({"error": "true", "message": format!("bad request {target}")});
            answer(stream, 400, "application/json", &body.to_string())
        } else {
            let body = json!({"error": "false", "response": {"solutions": {"re_logo": {
                "detections": [{"label": format!("seen {} {target}", percent_decode(target))}]}}}});
            answer(stream, 200, "application/json", &body.to_string())
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let run = common::restb(Some(KEY))
        .args(["bench", "--base-url", &server.base_url()])
        .args(["--threads", "1,2", "--rps", "50", "--requests", "4"])
        .args(["--json", "b.json", "--svg", "b.svg"])
        .current_dir(dir.path())
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.code().is_some(), "{stderr}");
    assert!(stdout.contains("threads"), "the table: {stdout}\n{stderr}");
    let json = std::fs::read_to_string(dir.path().join("b.json")).unwrap();
    let svg = std::fs::read_to_string(dir.path().join("b.svg")).unwrap();
    for (what, text) in [
        ("standard error", &*stderr),
        ("standard output", &*stdout),
        ("the JSON", &*json),
        ("the chart", &*svg),
    ] {
        assert!(!text.contains(KEY_START), "the key in {what}:\n{text}");
    }
    // The requests did carry it, and the echoes came back.
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 8, "two points of four requests");
    assert!(seen
        .iter()
        .all(|t| t.contains(&format!("client_key={KEY}"))));
}

/// Regression: a `--base-url` with the key in its query was refused with the
/// whole text quoted, key included.
#[test]
fn bad_base_url_error_does_not_print_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let input = common::url_list(dir.path(), 1);
    let base = format!("https://api-us.restb.ai/vision/v2/predict?client_key={KEY}");
    let output = common::run(&["run", &input, "--base-url", &base], Some(KEY));
    let stderr = common::text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--base-url"), "{stderr}");
    assert!(
        stderr.contains("https://api-us.restb.ai/vision/v2/predict'"),
        "{stderr}"
    );
    assert!(!stderr.contains(KEY_START), "{stderr}");
}

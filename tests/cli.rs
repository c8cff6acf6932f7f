//! The `restb` binary end to end: real processes, real files, the mock
//! gateway on port 0.

use restb::mock::{MockConfig, MockServer};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

const KEY: &str = "test-key-5ecr3t";

fn restb(args: &[&str], key: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_restb"));
    command
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("RESTB_CLIENT_KEY");
    if let Some(key) = key {
        command.env("RESTB_CLIENT_KEY", key);
    }
    command.output().expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn outcome_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is whole JSON"))
        .collect()
}

fn url_list(dir: &Path, count: usize) -> String {
    let path = dir.join("urls.txt");
    let body: String = (1..=count)
        .map(|n| format!("https://example.com/photos/{n}.jpg\n"))
        .collect();
    std::fs::write(&path, format!("# listing photos\n{body}")).unwrap();
    path.to_string_lossy().into_owned()
}

fn assert_no_key(output: &Output, files: &[&Path]) {
    assert!(!text(&output.stdout).contains(KEY));
    assert!(!text(&output.stderr).contains(KEY));
    for file in files {
        assert!(!std::fs::read_to_string(file)
            .unwrap_or_default()
            .contains(KEY));
    }
}

#[test]
fn a_batch_runs_end_to_end_with_one_outcome_per_image() {
    let server = MockServer::start(MockConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = url_list(dir.path(), 8);
    let out = dir.path().join("out.jsonl");
    let base = server.base_url();
    let output = restb(
        &[
            "run",
            &input,
            "--base-url",
            &base,
            "--rps",
            "100",
            "--models",
            "re_logo,re_condition_r1r6_global",
            "-o",
            out.to_str().unwrap(),
        ],
        Some(KEY),
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let lines = outcome_lines(&out);
    assert_eq!(lines.len(), 8);
    let mut ids: Vec<String> = lines
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort_by_key(|id| id.parse::<u32>().unwrap());
    assert_eq!(ids, (1..=8).map(|n| n.to_string()).collect::<Vec<_>>());
    for line in &lines {
        assert_eq!(line["status"], "ok");
        assert_eq!(line["http_status"], 200);
        assert_eq!(line["attempts"], 1);
        assert_eq!(
            line["models"],
            serde_json::json!(["re_logo", "re_condition_r1r6_global"])
        );
        assert!(line["solutions"]["re_condition_r1r6_global"].is_object());
        assert!(line["latency_ms"].as_f64().unwrap() >= 0.0);
    }
    let stats = stderr
        .lines()
        .find(|l| l.starts_with("[8] requests processed in ["))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        stats.contains("] seconds with average time [") && stats.ends_with("] rps"),
        "{stats}"
    );
    assert_eq!(server.counters().requests, 8);
    assert_no_key(&output, &[&out]);
}

#[test]
fn per_model_sends_one_request_per_image_and_model_to_stdout() {
    let server = MockServer::start(MockConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = url_list(dir.path(), 3);
    let base = server.base_url();
    let output = restb(
        &[
            "run",
            &input,
            "--base-url",
            &base,
            "--rps",
            "100",
            "--per-model",
            "--models",
            "re_logo,caption",
        ],
        Some(KEY),
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6);
    assert!(lines
        .iter()
        .all(|l| l["models"].as_array().unwrap().len() == 1));
    assert!(server
        .arrivals()
        .iter()
        .all(|a| a.path == "/vision/v2/predict"));
}

#[test]
fn a_failed_job_is_recorded_and_exits_1() {
    let server = MockServer::start(MockConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("batch.jsonl");
    std::fs::write(
        &input,
        "{\"id\":\"a\",\"url\":\"https://x/a.jpg\"}\n{\"id\":7,\"url\":\"https://x/b.jpg\",\"models\":[\"re_brand_new\"]}\n",
    )
    .unwrap();
    let out = dir.path().join("out.jsonl");
    let base = server.base_url();
    let args = [
        "run",
        input.to_str().unwrap(),
        "--base-url",
        &base,
        "--rps",
        "50",
        "--models",
        "re_logo",
        "--allow-unknown-models",
        "-o",
        out.to_str().unwrap(),
    ];
    let output = restb(&args, Some(KEY));
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let lines = outcome_lines(&out);
    let failed = lines.iter().find(|l| l["id"] == "7").unwrap();
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["http_status"], 400);
    assert_eq!(failed["attempts"], 1);
    assert!(failed["error"].as_str().unwrap().contains("re_brand_new"));
    assert!(failed.get("solutions").is_none());
    assert_eq!(
        lines.iter().find(|l| l["id"] == "a").unwrap()["status"],
        "ok"
    );
}

#[test]
fn a_refused_key_exits_1_without_showing_the_key() {
    let mut mock_config = MockConfig::default();
    mock_config.valid_keys = Some(vec!["another".into()]);
    let server = MockServer::start(mock_config).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = url_list(dir.path(), 30);
    let out = dir.path().join("out.jsonl");
    let base = server.base_url();
    let output = restb(
        &[
            "run",
            &input,
            "--base-url",
            &base,
            "--rps",
            "20",
            "-o",
            out.to_str().unwrap(),
        ],
        Some(KEY),
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("refused the client key"));
    assert!(
        server.counters().requests <= 2,
        "{} requests",
        server.counters().requests
    );
    assert_no_key(&output, &[&out]);
}

#[test]
fn resume_sends_only_what_is_not_done() {
    let server = MockServer::start(MockConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = url_list(dir.path(), 6);
    let out = dir.path().join("out.jsonl");
    // An earlier run finished images 1 and 2, and was killed while writing a third line.
    let earlier = "{\"id\":\"1\",\"image\":\"https://example.com/photos/1.jpg\",\"models\":[\"re_logo\"],\"status\":\"ok\",\"http_status\":200,\"attempts\":1,\"rate_limited\":0,\"latency_ms\":3.0,\"solutions\":{}}\n\
                   {\"id\":\"2\",\"image\":\"https://example.com/photos/2.jpg\",\"models\":[\"re_logo\"],\"status\":\"failed\",\"http_status\":400,\"attempts\":1,\"rate_limited\":0,\"error\":\"x\"}\n\
                   {\"id\":\"3\",\"ima";
    std::fs::write(&out, earlier).unwrap();
    let base = server.base_url();
    let args = [
        "run",
        &input,
        "--base-url",
        &base,
        "--rps",
        "100",
        "--models",
        "re_logo",
        "-o",
        out.to_str().unwrap(),
        "--resume",
    ];
    let output = restb(&args, Some(KEY));
    assert_eq!(
        output.status.code(),
        Some(1),
        "job 2 stays failed: {}",
        text(&output.stderr)
    );
    assert_eq!(server.counters().requests, 4);
    let lines = outcome_lines(&out);
    assert_eq!(lines.len(), 6);
    let mut retry = args.to_vec();
    retry.push("--retry-failed");
    let output = restb(&retry, Some(KEY));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(server.counters().requests, 5);
    let output = restb(&retry, Some(KEY));
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(server.counters().requests, 5, "nothing left to do");
}

#[test]
fn bad_usage_exits_2_before_any_request() {
    let server = MockServer::start(MockConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = url_list(dir.path(), 2);
    let base = server.base_url();
    let bad_csv = dir.path().join("bad.csv");
    std::fs::write(&bad_csv, "id,photo\n1,https://x/1.jpg\n").unwrap();
    let file = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_string_lossy().into_owned()
    };
    let not_utf8 = file("latin1.txt", b"https://x/1.jpg\nhttps://x/caf\xe9.jpg\n");
    let empty = file("empty.txt", b"");
    let no_scheme = file("noscheme.txt", b"https://x/1.jpg\nwww.example.com/2.jpg\n");
    file("notes.jpg", b"not a picture");
    let not_image = file(
        "local.txt",
        format!("{}\n", dir.path().join("notes.jpg").display()).as_bytes(),
    );
    let duplicates = file(
        "dups.csv",
        b"id,url\n7,https://x/1.jpg\n7,https://x/2.jpg\n",
    );
    let bad_json = file(
        "bad.jsonl",
        b"{\"url\":\"https://x/1.jpg\"}\n{\"url\": nope}\n",
    );
    let huge_line = file(
        "huge.txt",
        format!("https://x/{}.jpg\n", "a".repeat(3 << 20)).as_bytes(),
    );
    let cases: Vec<(Vec<&str>, Option<&str>, &str)> = vec![
        (
            vec!["run", &not_utf8, "--base-url", &base],
            Some(KEY),
            "latin1.txt:2:",
        ),
        (
            vec!["run", &empty, "--base-url", &base],
            Some(KEY),
            "empty.txt: no images",
        ),
        (
            vec!["run", &no_scheme, "--base-url", &base],
            Some(KEY),
            "noscheme.txt:2:",
        ),
        (
            vec!["run", &not_image, "--base-url", &base],
            Some(KEY),
            "local.txt:1: not an image",
        ),
        (
            vec!["run", &duplicates, "--base-url", &base],
            Some(KEY),
            "dups.csv:3:",
        ),
        (
            vec!["run", &bad_json, "--base-url", &base],
            Some(KEY),
            "bad.jsonl:2:",
        ),
        (
            vec!["run", &huge_line, "--base-url", &base],
            Some(KEY),
            "huge.txt:1:",
        ),
        (
            vec!["run", &input, "--base-url", &base],
            None,
            "RESTB_CLIENT_KEY",
        ),
        (
            vec!["run", &input, "--base-url", &base, "--rps", "0"],
            Some(KEY),
            "--rps",
        ),
        (
            vec!["run", &input, "--base-url", &base, "--rps", "-3"],
            Some(KEY),
            "--rps",
        ),
        (
            vec!["run", &input, "--base-url", &base, "--models", "re_logoo"],
            Some(KEY),
            "re_logoo",
        ),
        (
            vec!["run", &input, "--base-url", "http://api.example.com"],
            Some(KEY),
            "--allow-http",
        ),
        (
            vec!["run", &input, "--base-url", "not a url"],
            Some(KEY),
            "--base-url",
        ),
        (
            vec!["run", bad_csv.to_str().unwrap(), "--base-url", &base],
            Some(KEY),
            "bad.csv:1:",
        ),
        (
            vec!["run", "/no/such/file.txt", "--base-url", &base],
            Some(KEY),
            "/no/such/file.txt",
        ),
        (
            vec!["run", &input, "--base-url", &base, "--threads", "0"],
            Some(KEY),
            "--threads",
        ),
    ];
    for (args, key, needle) in cases {
        let output = restb(&args, key);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_no_key(&output, &[]);
    }
    assert_eq!(server.counters().requests, 0);
}

#[test]
fn the_key_can_come_from_a_file() {
    let mut mock_config = MockConfig::default();
    mock_config.valid_keys = Some(vec![KEY.into()]);
    let server = MockServer::start(mock_config).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = url_list(dir.path(), 2);
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let base = server.base_url();
    let output = restb(
        &[
            "run",
            &input,
            "--base-url",
            &base,
            "--rps",
            "50",
            "--client-key-file",
            key_file.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_no_key(&output, &[]);
}

#[test]
fn the_demo_runs_without_key_or_network() {
    // The tutorial's workload with a short latency, to keep the test quick.
    let output = restb(&["demo", "--latency", "0.05", "--rps", "20"], None);
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("https://demo.restb.ai/"))
            .count(),
        36
    );
    assert!(stdout.contains("re_roomtype_global_v2"));
    assert!(stderr.contains("[36] requests processed in ["), "{stderr}");
}

#[test]
fn the_key_stays_hidden_at_trace_level_ureq_logs_included() {
    let server = MockServer::start(MockConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = url_list(dir.path(), 3);
    let out = dir.path().join("out.jsonl");
    let base = server.base_url();
    let mut command = Command::new(env!("CARGO_BIN_EXE_restb"));
    command
        .args([
            "run",
            &input,
            "--base-url",
            &base,
            "--rps",
            "50",
            "-o",
            out.to_str().unwrap(),
        ])
        .env("RESTB_CLIENT_KEY", KEY)
        .env("RUST_LOG", "trace");
    let output = command.output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("DEBUG ureq"),
        "ureq's debug logs still show: {stderr}"
    );
    assert!(stderr.contains("processed request in ["), "{stderr}");
    assert_no_key(&output, &[&out]);
    // And against a gateway that is gone: connection errors quote no URL with the key.
    server.stop();
    let output = command.args(["--max-attempts", "2"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_no_key(&output, &[&out]);
}

#[test]
fn stats_json_has_every_figure_and_summary_prints_a_table() {
    let server = MockServer::start(MockConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("batch.jsonl");
    std::fs::write(
        &input,
        "{\"id\":\"a\",\"url\":\"https://x/a.jpg\"}\n{\"id\":\"b\",\"url\":\"https://x/b.jpg\",\"models\":[\"re_nope\"]}\n",
    )
    .unwrap();
    let stats = dir.path().join("stats.json");
    let base = server.base_url();
    let output = restb(
        &[
            "run",
            input.to_str().unwrap(),
            "--base-url",
            &base,
            "--rps",
            "50",
            "--allow-unknown-models",
            "--models",
            "re_roomtype_global_v2",
            "--stats-json",
            stats.to_str().unwrap(),
            "--summary",
        ],
        Some(KEY),
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    for field in [
        "jobs",
        "finished",
        "unfinished",
        "by_status",
        "by_http_status",
        "succeeded",
        "failed",
        "rate_limited",
        "transient_errors",
        "retried",
        "span_s",
        "mean_latency_ms",
        "p50_ms",
        "p90_ms",
        "p95_ms",
        "p99_ms",
        "max_ms",
        "throughput_rps",
        "sustained_rps",
        "allotted_rps",
        "mode",
        "threads_peak",
        "interrupted",
    ] {
        assert!(json.get(field).is_some(), "missing {field}: {json}");
    }
    assert_eq!(json["jobs"], 2);
    assert_eq!(json["succeeded"], 1);
    assert_eq!(json["failed"], 1);
    assert_eq!(json["by_status"]["ok"], 1);
    assert_eq!(json["by_http_status"]["400"], 1);
    assert_eq!(json["allotted_rps"], 50.0);
    assert_eq!(json["mode"], "rate");
    let stderr = text(&output.stderr);
    assert!(stderr.contains("re_roomtype_global_v2"), "{stderr}");
    assert!(stderr.contains("FAILED"), "{stderr}");
}

#[test]
fn completions_are_printed_for_each_shell() {
    for (shell, needle) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef restb"),
        ("fish", "complete -c restb"),
    ] {
        let output = restb(&["completions", shell], None);
        assert_eq!(output.status.code(), Some(0));
        let script = text(&output.stdout);
        assert!(
            script.contains(needle),
            "{shell}: {}",
            &script[..script.len().min(200)]
        );
        assert!(script.contains("--rps"));
    }
    assert_eq!(
        restb(&["completions", "powershell-9"], None).status.code(),
        Some(2)
    );
}

#[test]
fn help_shows_examples_for_each_subcommand() {
    for sub in ["run", "demo", "mock", "bench", "report", "completions"] {
        let output = restb(&[sub, "--help"], None);
        assert_eq!(output.status.code(), Some(0), "{sub}");
        let help = text(&output.stdout);
        assert!(
            help.contains("Example"),
            "{sub} --help has no example:\n{help}"
        );
    }
}

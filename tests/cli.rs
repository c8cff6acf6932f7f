//! The `restb` binary end to end: real processes, real files, the mock
//! gateway on port 0.

mod common;

use common::{json_file, outcome_lines, run, start_mock, text, Batch, RunLine, KEY};
use restb::mock::{Fault, FaultMix, MockConfig};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Output;
use std::time::Duration;

/// The `n`th `[...]` of a stats line (from 0).
fn bracketed(line: &str, n: usize) -> &str {
    line.split('[')
        .nth(n + 1)
        .and_then(|part| part.split(']').next())
        .unwrap_or_else(|| panic!("no [{n}] in {line}"))
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
    let mut config = MockConfig::default();
    config.latency = Duration::from_millis(30);
    let server = start_mock(config);
    let batch = Batch::of(8);
    let output = RunLine::new(batch.input())
        .base_url(&server.base_url())
        .rps("100")
        .models("re_logo,re_condition_r1r6_global")
        .out(&batch.out)
        .run(Some(KEY));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let lines = outcome_lines(&batch.out);
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
        // The mock answers after 30 ms: a request cannot take less.
        let latency = line["latency_ms"].as_f64().unwrap();
        assert!((30.0..10_000.0).contains(&latency), "{line}");
    }
    let stats = stderr
        .lines()
        .find(|l| l.starts_with("[8] requests processed in ["))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        stats.contains("] seconds with average time [") && stats.ends_with("] rps"),
        "{stats}"
    );
    // The average on the stats line is the mean of the outcomes' latencies
    // (each rounded to 0.1 ms).
    let average: f64 = bracketed(stats, 2).parse().unwrap();
    let mean = lines
        .iter()
        .map(|l| l["latency_ms"].as_f64().unwrap())
        .sum::<f64>()
        / 8.0;
    assert!((average - mean).abs() <= 0.2, "{stats}: mean {mean}");
    assert_eq!(server.counters().requests, 8);
    assert_no_key(&output, &[&batch.out]);
}

#[test]
fn per_model_sends_one_request_per_image_and_model_to_stdout() {
    let server = start_mock(MockConfig::default());
    let batch = Batch::of(3);
    let output = RunLine::new(batch.input())
        .base_url(&server.base_url())
        .rps("100")
        .args(["--per-model"])
        .models("re_logo,caption")
        .run(Some(KEY));
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
    let server = start_mock(MockConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("batch.jsonl");
    std::fs::write(
        &input,
        "{\"id\":\"a\",\"url\":\"https://x/a.jpg\"}\n{\"id\":7,\"url\":\"https://x/b.jpg\",\"models\":[\"re_brand_new\"]}\n",
    )
    .unwrap();
    let out = dir.path().join("out.jsonl");
    let output = RunLine::new(&input)
        .base_url(&server.base_url())
        .rps("50")
        .models("re_logo")
        .args(["--allow-unknown-models"])
        .out(&out)
        .run(Some(KEY));
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
    let server = start_mock(mock_config);
    let batch = Batch::of(30);
    let output = RunLine::new(batch.input())
        .base_url(&server.base_url())
        .rps("20")
        .out(&batch.out)
        .run(Some(KEY));
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("refused the client key"));
    assert!(
        server.counters().requests <= 2,
        "{} requests",
        server.counters().requests
    );
    assert_no_key(&output, &[&batch.out]);
}

#[test]
fn resume_sends_only_what_is_not_done() {
    let server = start_mock(MockConfig::default());
    let batch = Batch::of(6);
    // An earlier run finished images 1 and 2, and was killed while writing a third line.
    let earlier = "{\"id\":\"1\",\"image\":\"https://example.com/photos/1.jpg\",\"models\":[\"re_logo\"],\"status\":\"ok\",\"http_status\":200,\"attempts\":1,\"rate_limited\":0,\"latency_ms\":3.0,\"solutions\":{}}\n\
                   {\"id\":\"2\",\"image\":\"https://example.com/photos/2.jpg\",\"models\":[\"re_logo\"],\"status\":\"failed\",\"http_status\":400,\"attempts\":1,\"rate_limited\":0,\"error\":\"x\"}\n\
                   {\"id\":\"3\",\"ima";
    std::fs::write(&batch.out, earlier).unwrap();
    let line = RunLine::new(batch.input())
        .base_url(&server.base_url())
        .rps("100")
        .models("re_logo")
        .out(&batch.out)
        .args(["--resume"]);
    let output = line.run(Some(KEY));
    assert_eq!(
        output.status.code(),
        Some(1),
        "job 2 stays failed: {}",
        text(&output.stderr)
    );
    assert_eq!(server.counters().requests, 4);
    let lines = outcome_lines(&batch.out);
    assert_eq!(lines.len(), 6);
    let retry = line.args(["--retry-failed"]);
    let output = retry.run(Some(KEY));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(server.counters().requests, 5);
    let output = retry.run(Some(KEY));
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(server.counters().requests, 5, "nothing left to do");
}

#[test]
fn bad_usage_exits_2_before_any_request() {
    let server = start_mock(MockConfig::default());
    let batch = Batch::of(2);
    let dir = batch.dir.path();
    let base = server.base_url();
    let bad_csv = dir.join("bad.csv");
    std::fs::write(&bad_csv, "id,photo\n1,https://x/1.jpg\n").unwrap();
    let file = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_string_lossy().into_owned()
    };
    let not_utf8 = file("latin1.txt", b"https://x/1.jpg\nhttps://x/caf\xe9.jpg\n");
    let empty = file("empty.txt", b"");
    let no_scheme = file("noscheme.txt", b"https://x/1.jpg\nwww.example.com/2.jpg\n");
    file("notes.jpg", b"not a picture");
    let not_image = file(
        "local.txt",
        format!("{}\n", dir.join("notes.jpg").display()).as_bytes(),
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
    let on = |input: &str| RunLine::new(input).base_url(&base);
    let input = batch.input();
    let cases: Vec<(RunLine, Option<&str>, &str)> = vec![
        (on(&not_utf8), Some(KEY), "latin1.txt:2:"),
        (on(&empty), Some(KEY), "empty.txt: no images"),
        (on(&no_scheme), Some(KEY), "noscheme.txt:2:"),
        (on(&not_image), Some(KEY), "local.txt:1: not an image"),
        (on(&duplicates), Some(KEY), "dups.csv:3:"),
        (on(&bad_json), Some(KEY), "bad.jsonl:2:"),
        (on(&huge_line), Some(KEY), "huge.txt:1:"),
        (on(input), None, "RESTB_CLIENT_KEY"),
        (on(input).rps("0"), Some(KEY), "--rps"),
        (on(input).rps("-3"), Some(KEY), "--rps"),
        (on(input).models("re_logoo"), Some(KEY), "re_logoo"),
        (
            RunLine::new(input).base_url("http://api.example.com"),
            Some(KEY),
            "--allow-http",
        ),
        (
            RunLine::new(input).base_url("not a url"),
            Some(KEY),
            "--base-url",
        ),
        (on(bad_csv.to_str().unwrap()), Some(KEY), "bad.csv:1:"),
        (on("/no/such/file.txt"), Some(KEY), "/no/such/file.txt"),
        (on(input).args(["--threads", "0"]), Some(KEY), "--threads"),
    ];
    for (line, key, needle) in cases {
        let output = line.run(key);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{line:?}: {stderr}");
        assert!(stderr.contains(needle), "{line:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_no_key(&output, &[]);
    }
    assert_eq!(server.counters().requests, 0);
}

#[test]
fn the_key_can_come_from_a_file() {
    let mut mock_config = MockConfig::default();
    mock_config.valid_keys = Some(vec![KEY.into()]);
    let server = start_mock(mock_config);
    let batch = Batch::of(2);
    let key_file = batch.dir.path().join("key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let output = RunLine::new(batch.input())
        .base_url(&server.base_url())
        .rps("50")
        .args(["--client-key-file", key_file.to_str().unwrap()])
        .run(None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_no_key(&output, &[]);
    // Regression: a key file of two lines was taken as one key with a
    // line break in it, and every request was refused.
    std::fs::write(&key_file, format!("{KEY}\nsecond-line\n")).unwrap();
    let output = RunLine::new(batch.input())
        .base_url(&server.base_url())
        .args(["--client-key-file", key_file.to_str().unwrap()])
        .run(None);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("white space or a line break"), "{stderr}");
    assert!(stderr.contains("--client-key-file"), "{stderr}");
    assert_no_key(&output, &[]);
}

/// Regression: a key of one letter (`RESTB_CLIENT_KEY=e`) was taken, and
/// its redaction hid every `e` of every reply before it was read: each
/// success read as `HTTP 200 without a r***spons***`, retried as
/// transient, and every job failed after five requests. It is refused
/// before any request, naming where it came from.
#[test]
fn a_key_too_short_to_be_one_is_refused_before_any_request() {
    let server = start_mock(MockConfig::default());
    let batch = Batch::of(2);
    let output = RunLine::new(batch.input())
        .base_url(&server.base_url())
        .run(Some("e"));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("RESTB_CLIENT_KEY holds 1 character: too short to be a client key"),
        "{stderr}"
    );
    assert_eq!(server.counters().requests, 0, "nothing sent");
    let key_file = batch.dir.path().join("key");
    std::fs::write(&key_file, "abc\n").unwrap();
    let output = RunLine::new(batch.input())
        .base_url(&server.base_url())
        .args(["--client-key-file", key_file.to_str().unwrap()])
        .run(None);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("holds 3 characters"), "{stderr}");
    assert!(stderr.contains("--client-key-file"), "{stderr}");
    // Review: a key that is not UTF-8 was said to be missing.
    use std::os::unix::ffi::OsStrExt;
    let output = RunLine::new(batch.input())
        .base_url(&server.base_url())
        .command(None)
        .env(
            "RESTB_CLIENT_KEY",
            std::ffi::OsStr::from_bytes(b"key-\xff-12345"),
        )
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("RESTB_CLIENT_KEY is not valid UTF-8"),
        "{stderr}"
    );
    assert_eq!(server.counters().requests, 0, "nothing sent");
}

#[test]
fn the_demo_runs_without_key_or_network() {
    // The tutorial's workload with a short latency, to keep the test quick.
    let output = run(&["demo", "--latency", "0.05", "--rps", "20"], None);
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
    let server = start_mock(MockConfig::default());
    let batch = Batch::of(3);
    let mut command = RunLine::new(batch.input())
        .base_url(&server.base_url())
        .rps("50")
        .out(&batch.out)
        .command(Some(KEY));
    command.env("RUST_LOG", "trace");
    let output = command.output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("DEBUG ureq"),
        "ureq's debug logs still show: {stderr}"
    );
    assert!(stderr.contains("processed request in ["), "{stderr}");
    assert_no_key(&output, &[&batch.out]);
    // And against a gateway that is gone: connection errors quote no URL with the key.
    server.stop();
    let output = command
        .args(["--max-attempts", "2", "--overwrite"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_no_key(&output, &[&batch.out]);
}

#[test]
fn stats_json_agrees_with_the_outcome_file_and_summary_prints_a_table() {
    // Nine images: one with a model the gateway refuses (400), and 503s on
    // about a third of the requests, retried (seeded, one thread: the same
    // run every time).
    let mut config = MockConfig::default();
    config.latency = Duration::from_millis(20);
    config.faults = FaultMix::none().with(Fault::Status503, 0.3);
    config.seed = 5;
    let server = start_mock(config);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("batch.jsonl");
    let mut batch: String = (1..=8)
        .map(|n| format!("{{\"id\":\"{n}\",\"url\":\"https://x/{n}.jpg\"}}\n"))
        .collect();
    batch.push_str("{\"id\":\"9\",\"url\":\"https://x/9.jpg\",\"models\":[\"re_nope\"]}\n");
    std::fs::write(&input, batch).unwrap();
    let stats = dir.path().join("stats.json");
    let out = dir.path().join("out.jsonl");
    let output = RunLine::new(&input)
        .base_url(&server.base_url())
        .rps("50")
        .args([
            "--threads",
            "1",
            "--max-attempts",
            "20",
            "--allow-unknown-models",
        ])
        .models("re_roomtype_global_v2")
        .stats_json(&stats)
        .out(&out)
        .args(["--summary"])
        .run(Some(KEY));
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let json = json_file(&stats);
    let lines = outcome_lines(&out);
    let count = |status: &str| lines.iter().filter(|l| l["status"] == status).count();
    let sum = |field: &str| -> u64 { lines.iter().map(|l| l[field].as_u64().unwrap()).sum() };
    assert_eq!(lines.len(), 9);
    assert_eq!(json["jobs"], 9);
    assert_eq!(json["finished"], 9);
    assert_eq!(json["unfinished"], 0);
    assert_eq!(json["succeeded"], count("ok"));
    assert_eq!(json["failed"], count("failed"));
    assert_eq!((count("ok"), count("failed")), (8, 1));
    assert_eq!(json["by_status"], json!({"ok": 8, "failed": 1}));
    let mut by_http = serde_json::Map::new();
    for line in &lines {
        let status = line["http_status"].to_string();
        let seen = by_http.get(&status).and_then(Value::as_u64).unwrap_or(0);
        by_http.insert(status, json!(seen + 1));
    }
    assert_eq!(json["by_http_status"], Value::Object(by_http));
    // Every try beyond a job's first was a retry after a 503, and every
    // request the gateway saw is a try some line counts.
    let tries = sum("attempts");
    assert_eq!(server.counters().requests, tries);
    assert!(tries > 9, "the seed gives some 503s");
    assert_eq!(json["retried"], tries - 9);
    assert_eq!(json["transient_errors"], tries - 9);
    assert_eq!(json["rate_limited"], sum("rate_limited"));
    // Latencies: the mean and the maximum of the successes' latency_ms
    // (rounded to 0.1 ms in the file, to 3 digits in the histogram).
    let latencies: Vec<f64> = lines
        .iter()
        .filter(|l| l["status"] == "ok")
        .map(|l| l["latency_ms"].as_f64().unwrap())
        .collect();
    let mean = latencies.iter().sum::<f64>() / latencies.len() as f64;
    let max = latencies.iter().copied().fold(0.0, f64::max);
    let figure = |name: &str| json[name].as_f64().unwrap();
    assert!((figure("mean_latency_ms") - mean).abs() <= 0.1, "{json}");
    assert!(
        (figure("max_ms") - max).abs() <= max * 0.002 + 0.1,
        "{json}"
    );
    let percentiles = ["p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms"].map(figure);
    assert!(percentiles[0] >= 20.0, "{json}");
    assert!(percentiles.windows(2).all(|w| w[0] <= w[1]), "{json}");
    // The span holds every success; the throughput is successes over it.
    let span = figure("span_s");
    assert!(
        span * 1000.0 >= latencies.iter().sum::<f64>() - 1.0,
        "one thread: {json}"
    );
    // (--stats-json rounds times to the microsecond, rates to a thousandth.)
    let throughput = figure("throughput_rps");
    assert!((throughput - 8.0 / span).abs() <= 0.002, "{json}");
    assert_eq!(json["allotted_rps"], 50.0);
    assert_eq!(json["mode"], "rate");
    assert_eq!(json["threads_peak"], 1);
    assert_eq!(json["interrupted"], false);
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
        let output = run(&["completions", shell], None);
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
        run(&["completions", "powershell-9"], None).status.code(),
        Some(2)
    );
}

#[test]
fn help_shows_examples_for_each_subcommand() {
    for sub in ["run", "demo", "mock", "bench", "report", "completions"] {
        let output = run(&[sub, "--help"], None);
        assert_eq!(output.status.code(), Some(0), "{sub}");
        let help = text(&output.stdout);
        assert!(
            help.contains("Example"),
            "{sub} --help has no example:\n{help}"
        );
    }
}

#[test]
fn resume_with_no_outcome_file_yet_starts_from_nothing() {
    let server = start_mock(MockConfig::default());
    let batch = Batch::of(5);
    let out = batch.dir.path().join("not-yet.jsonl");
    assert!(!out.exists());
    let output = RunLine::new(batch.input())
        .base_url(&server.base_url())
        .rps("100")
        .models("re_logo")
        .out(&out)
        .args(["--resume"])
        .run(Some(KEY));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    common::assert_exactly_once(&out, 5);
    assert_eq!(server.counters().requests, 5);
}

#[test]
fn auto_threads_keep_enough_requests_in_flight_for_the_rate() {
    // 10/s with 1.6 s answers: Little's law wants 16 requests in flight.
    // The first guess of an auto pool is one second of starts (11): what
    // the gateway sees in flight, and the threads the run reports, must
    // grow past it to what the rate needs, and stay under the cap.
    let mut config = MockConfig::default();
    config.latency = Duration::from_millis(1600);
    let server = start_mock(config);
    let batch = Batch::of(30);
    let stats = batch.dir.path().join("stats.json");
    let output = RunLine::new(batch.input())
        .base_url(&server.base_url())
        .rps("10")
        .models("re_logo")
        .out("/dev/null")
        .stats_json(&stats)
        .run(Some(KEY));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let json = json_file(&stats);
    let peak = json["threads_peak"].as_u64().unwrap();
    let in_flight = server.counters().max_in_flight;
    assert!(
        in_flight >= 14,
        "the gateway saw at most {in_flight} in flight"
    );
    assert!(
        peak >= in_flight,
        "{peak} threads for {in_flight} in flight"
    );
    assert!(peak <= 4096, "{peak} threads");
    // Paced by the rate, not by the threads: 30 starts at 10/s.
    let span = json["span_s"].as_f64().unwrap();
    assert!(span >= 2.9 + 1.6, "{span} s");
}

#[test]
fn per_model_outcomes_resume_by_image_and_model() {
    // A first run did one model per image; the resume with three models
    // sends exactly the (image, model) pairs without an outcome.
    let server = start_mock(MockConfig::default());
    let batch = Batch::of(2);
    let out = &batch.out;
    let base = server.base_url();
    let args = |models: &'static str| {
        RunLine::new(batch.input())
            .base_url(&base)
            .rps("100")
            .args(["--per-model"])
            .models(models)
            .out(out)
            .args(["--resume"])
            .run(Some(KEY))
    };
    let first = args("caption");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    assert_eq!(outcome_lines(out).len(), 2);
    let rest = args("re_logo,caption,re_condition_r1r6_global");
    assert_eq!(rest.status.code(), Some(0), "{}", text(&rest.stderr));
    assert_eq!(server.counters().requests, 6, "each pair sent once");
    let keys: std::collections::HashSet<String> =
        outcome_lines(out).iter().map(common::job_key).collect();
    assert_eq!(keys.len(), 6, "{keys:?}");
    common::assert_exactly_once(out, 2);
}

/// Regression: the input was read as UTF-8 text from the command line, so
/// a file whose name is not (any bytes are a valid Unix name) could not be
/// given at all: clap refused "one or more arguments" without naming it.
#[cfg(unix)]
#[test]
fn an_input_whose_name_is_not_utf8_is_read() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let name = std::ffi::OsStr::from_bytes(b"photos-\xff.txt");
    let input = dir.path().join(name);
    std::fs::write(&input, "https://example.com/a.jpg\n").unwrap();
    let output = common::restb(None)
        .arg("run")
        .arg(&input)
        .arg("--dry-run")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("input: 1 images"),
        "{}",
        text(&output.stdout)
    );
}

/// Review: `--summary` kept every outcome line, answer and all, until the
/// end of the run: memory that grew with a run of millions. Its table holds
/// the first thousand, and says how many more `restb report` would show.
#[test]
fn summary_keeps_a_thousand_rows_and_counts_the_rest() {
    let mut config = MockConfig::default();
    config.rps = None;
    config.latency = Duration::ZERO;
    let server = start_mock(config);
    let batch = Batch::of(1005);
    let output = RunLine::new(batch.input())
        .base_url(&server.base_url())
        .rps("2000")
        .models("re_logo")
        .out(&batch.out)
        .args(["--summary"])
        .run(Some(KEY));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(outcome_lines(&batch.out).len(), 1005);
    assert!(
        stderr.contains("[5] more outcomes are not in this table (it shows the first 1000)"),
        "{stderr}"
    );
}

/// A line of exactly 1,000 bytes: the URL of `n.jpg`, padded in its query
/// (so that 64 KiB of input is about 65 lines).
fn padded_line(n: usize) -> String {
    let url = format!("https://example.com/photos/{n}.jpg?pad=");
    format!("{url}{}\n", "x".repeat(999 - url.len()))
}

/// Regression: a line overwritten in place during a run (same length, so
/// the record count held) was sent as changed: the next line's image went
/// out twice, its own never, and the run ended 0. Now the run stops at the
/// block of the change with an error naming the line, sends no record from
/// other bytes than those checked, and `--resume` sends the rest.
#[test]
fn an_input_line_changed_during_the_run_stops_it_and_resume_sends_the_rest() {
    use std::io::{Seek, SeekFrom, Write};
    let server = start_mock(MockConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let (input, out) = (dir.path().join("list.txt"), dir.path().join("out.jsonl"));
    std::fs::write(&input, (1..=2400).map(padded_line).collect::<String>()).unwrap();
    let run = RunLine::new(&input)
        .base_url(&server.base_url())
        .rps("1000")
        .out(&out);
    let child = run
        .command(Some(KEY))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The first request comes after the check. Stopped then, the run has
    // read about 2,050 records ahead (queue and channel), far from line 2300.
    common::wait_until(Duration::from_secs(10), "a request", || {
        server.counters().requests > 0
    });
    common::signal(&child, "STOP");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(&input)
        .unwrap();
    file.seek(SeekFrom::Start(2299 * 1000)).unwrap();
    file.write_all(padded_line(2301).as_bytes()).unwrap();
    common::signal(&child, "CONT");
    let (code, stderr) = common::wait_with_limit(child, Duration::from_secs(60));
    assert_eq!(code, Some(1), "{stderr}");
    let name = input.display().to_string();
    let error = stderr
        .lines()
        .find_map(|line| line.strip_prefix(&format!("Error: {name}:")))
        .unwrap_or_else(|| panic!("no error naming the input: {stderr}"));
    let (line, reason) = error.split_once(": ").unwrap();
    let line: usize = line.parse().unwrap();
    assert!((2200..=2300).contains(&line), "{error}");
    assert!(
        reason.starts_with("the input changed after it was checked: its bytes "),
        "{error}"
    );
    let unsent = 2400 - (line - 1);
    assert!(
        reason.contains(&format!("; the {unsent} jobs after it were not sent")),
        "{error}"
    );
    let lines = outcome_lines(&out);
    assert_eq!(lines.len(), line - 1);
    for outcome in &lines {
        let id = outcome["id"].as_str().unwrap();
        let image = outcome["image"].as_str().unwrap();
        let sent = format!("https://example.com/photos/{id}.jpg?");
        assert!(image.starts_with(&sent), "record {id} sent as {image}");
    }
    let resumed = run.args(["--resume"]).run(Some(KEY));
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed.stderr));
    assert_eq!(outcome_lines(&out).len(), 2400);
}

/// Latencies are of successful requests: a run without one reports none,
/// not 0 ms (regression: `--stats-json` gave 0.0 for each, and the stats
/// line `p50 [0.0]`, which a consumer reads as instant replies).
#[test]
fn a_run_without_a_success_reports_no_latency() {
    let server = start_mock(MockConfig::default());
    let batch = Batch::of(2);
    let stats = batch.dir.path().join("stats.json");
    let output = RunLine::new(batch.input())
        .base_url(&server.base_url())
        .rps("50")
        .models("re_nope")
        .args(["--allow-unknown-models"])
        .out(&batch.out)
        .stats_json(&stats)
        .run(Some(KEY));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("latency [n/a] (no successful request)"),
        "{stderr}"
    );
    let json = json_file(&stats);
    assert_eq!(json["succeeded"], 0, "{json}");
    for field in [
        "mean_latency_ms",
        "p50_ms",
        "p90_ms",
        "p95_ms",
        "p99_ms",
        "max_ms",
    ] {
        assert!(json[field].is_null(), "{field}: {json}");
    }
}

//! `restb report` and the `restb::report` library: summaries, CSV and the
//! results table of hand-made outcome files.

use restb::outcome::{read_outcomes, OutcomeLine, ReadError};
use restb::report::{results_table, write_csv, Summary, CSV_HEADER};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ROOM: &str = "re_roomtype_global_v2";
const FEATURES: &str = "re_features_v4";
const CONDITION: &str = "re_condition_r1r6_global";
const CAPTION: &str = "re_image_caption_v1_beta";

fn ok(
    id: &str,
    latency: f64,
    room: (&str, f64),
    features: &[&str],
    score: f64,
    caption: &str,
) -> Value {
    let detections: Vec<Value> = features
        .iter()
        .map(|label| json!({"label": label, "confidence": 0.8}))
        .collect();
    json!({
        "id": id, "image": format!("https://example.com/{id}.jpg"),
        "models": [ROOM, FEATURES, CONDITION, CAPTION],
        "status": "ok", "http_status": 200, "attempts": 1, "rate_limited": 0, "latency_ms": latency,
        "solutions": {
            ROOM: {"top_prediction": {"label": room.0, "confidence": room.1}, "predictions": []},
            FEATURES: {"detections": detections},
            CONDITION: {"score": score},
            CAPTION: {"description": caption},
        }
    })
}

fn failed(id: &str, status: u16, error: &str, attempts: u32, rate_limited: u32) -> Value {
    json!({
        "id": id, "image": format!("photos/{id}.jpg"), "models": [ROOM, FEATURES],
        "status": "failed", "http_status": status, "attempts": attempts,
        "rate_limited": rate_limited, "error": error
    })
}

/// Six jobs (three ok, three failed) and a torn last line.
fn sample_lines() -> Vec<Value> {
    let mut first = ok(
        "1",
        1000.0,
        ("kitchen", 0.97),
        &["pool", "fireplace"],
        4.0,
        "A bright kitchen.",
    );
    first["attempts"] = json!(2);
    first["rate_limited"] = json!(1);
    vec![
        first,
        ok("2", 1200.0, ("kitchen", 0.88), &[], 3.0, "A cozy bedroom."),
        failed("3", 400, "invalid model_id: foo", 1, 0),
        ok(
            "10",
            800.0,
            ("bathroom", 0.7),
            &["pool"],
            4.0,
            "A bright kitchen.",
        ),
        failed("4", 400, "invalid model_id: foo", 1, 0),
        failed("5", 503, "service unavailable", 5, 2),
    ]
}

fn write_outcomes(dir: &Path, lines: &[Value], tail: &str) -> PathBuf {
    let path = dir.join("outcomes.jsonl");
    let mut body: String = lines.iter().map(|line| format!("{line}\n")).collect();
    body += tail;
    std::fs::write(&path, body).unwrap();
    path
}

const TORN: &str = r#"{"id":"6","image":"https://example.com/6.j"#;

fn summarise(path: &Path) -> Summary {
    let mut summary = Summary::new();
    for line in read_outcomes(path).unwrap() {
        summary.add(&line.unwrap());
    }
    summary
}

fn parse(line: &Value) -> OutcomeLine {
    serde_json::from_value(line.clone()).unwrap()
}

const EXPECTED_REPORT: &str = "\
Totals
  jobs          6
  ok            3
  failed        3
  requests      11
  rate-limited  3
  mean latency  1000.0 ms
  max latency   1200.0 ms
  (latency of ok jobs; requests and rate-limited replies summed over jobs)

Readings per model (share of the model's ok answers)
  re_condition_r1r6_global: 3 ok
    reading    count  share
    ---------  -----  -----
    score 4.0      2  66.7%
    score 3.0      1  33.3%
  re_features_v4: 3 ok, 3 failed
    reading             count  share
    ------------------  -----  -----
    pool                    2  66.7%
    (nothing detected)      1  33.3%
    fireplace               1  33.3%
  re_image_caption_v1_beta: 3 ok
    reading            count  share
    -----------------  -----  -----
    A bright kitchen.      2  66.7%
    A cozy bedroom.        1  33.3%
  re_roomtype_global_v2: 3 ok, 3 failed
    reading   count  share
    --------  -----  -----
    kitchen       2  66.7%
    bathroom      1  33.3%

Failures by reason
  count  http  reason
  -----  ----  ---------------------
      2  400   invalid model_id: foo
      1  503   service unavailable
";

#[test]
fn the_text_report_counts_jobs_readings_and_failures() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_outcomes(dir.path(), &sample_lines(), TORN);
    let summary = summarise(&path);
    assert_eq!((summary.jobs(), summary.ok(), summary.failed()), (6, 3, 3));
    assert_eq!((summary.requests(), summary.rate_limited()), (11, 3));
    assert_eq!(summary.mean_latency_ms(), Some(1000.0));
    assert_eq!(summary.max_latency_ms(), Some(1200.0));
    let room = summary.model(ROOM).unwrap();
    assert_eq!((room.ok(), room.failed()), (3, 3));
    assert_eq!(room.readings().get("kitchen"), 2);
    assert_eq!(summary.render_text(), EXPECTED_REPORT);
}

#[test]
fn failures_are_counted_by_reason_and_status_most_frequent_first() {
    let lines = [
        failed("1", 503, "service unavailable", 5, 0),
        failed("2", 400, "invalid model_id: foo", 1, 0),
        failed("3", 503, "service unavailable", 5, 0),
        failed("4", 500, "service unavailable", 5, 0),
        failed("5", 503, "service unavailable", 5, 0),
    ];
    let mut summary = Summary::new();
    for line in &lines {
        summary.add(&parse(line));
    }
    let top: Vec<(String, Option<u16>, u64)> = summary
        .failures()
        .top(10)
        .into_iter()
        .map(|(reason, count)| (reason.error.clone(), reason.http_status, count))
        .collect();
    assert_eq!(
        top,
        [
            ("service unavailable".to_string(), Some(503), 3),
            ("invalid model_id: foo".to_string(), Some(400), 1),
            ("service unavailable".to_string(), Some(500), 1),
        ]
    );
    let text = summary.render_text();
    let section = &text[text.find("Failures by reason").unwrap()..];
    assert!(
        section.contains("      3  503   service unavailable\n      1  400   invalid model_id: foo\n      1  500   service unavailable\n"),
        "{section}"
    );
}

#[test]
fn csv_has_one_row_per_job_and_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_outcomes(dir.path(), &sample_lines(), TORN);
    let lines = read_outcomes(&path).unwrap().map(Result::unwrap);
    let mut out = Vec::new();
    assert_eq!(write_csv(lines, &mut out).unwrap(), 3 * 4 + 3 * 2);
    let mut reader = csv::Reader::from_reader(out.as_slice());
    assert_eq!(
        reader.headers().unwrap(),
        &csv::StringRecord::from(CSV_HEADER.to_vec())
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 18);
    let row = |i: usize| rows[i].iter().collect::<Vec<&str>>();
    assert_eq!(
        row(0),
        [
            "1",
            "https://example.com/1.jpg",
            ROOM,
            "ok",
            "200",
            "2",
            "1",
            "1000",
            "kitchen (0.97)",
            "kitchen",
            "0.97",
            ""
        ]
    );
    assert_eq!(
        row(1)[2..],
        [
            FEATURES,
            "ok",
            "200",
            "2",
            "1",
            "1000",
            "pool (0.80), fireplace (0.80)",
            "",
            "",
            ""
        ]
    );
    assert_eq!(row(2)[8], "score 4.0");
    assert_eq!(row(3)[8], "A bright kitchen.");
    assert_eq!(
        row(8),
        [
            "3",
            "photos/3.jpg",
            ROOM,
            "failed",
            "400",
            "1",
            "0",
            "",
            "",
            "",
            "",
            "invalid model_id: foo"
        ]
    );
}

#[test]
fn the_results_table_orders_by_id_and_aligns() {
    let mut lines: Vec<OutcomeLine> = ["b", "10", "a", "2", "1"]
        .iter()
        .map(|id| parse(&ok(id, 1.0, ("kitchen", 0.5), &[], 1.0, "x")))
        .collect();
    lines[3].models.truncate(2); // id 2: only two of its models
    lines.push(parse(&failed("7", 400, "bad image", 1, 0)));
    let table = results_table(&lines);
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows[0], format!("{:<26}  {:<24}  result", "image", "model"));
    assert!(rows[1].starts_with(&format!("{}  -", "-".repeat(26))));
    let ids: Vec<&str> = rows[2..]
        .iter()
        .map(|row| {
            let image = row.split_whitespace().next().unwrap();
            image.rsplit('/').next().unwrap().split('.').next().unwrap()
        })
        .collect();
    assert_eq!(
        ids,
        [
            "1", "1", "1", "1", "2", "2", "7", "7", "10", "10", "10", "10", "a", "a", "a", "a",
            "b", "b", "b", "b"
        ]
    );
    // Models in each line's order; every cell starts at its column.
    assert!(rows[2].contains(ROOM) && rows[3].contains(FEATURES) && rows[5].contains(CAPTION));
    let model_column = rows[0].find("model").unwrap();
    let result_column = rows[0].find("result").unwrap();
    for row in &rows[2..] {
        assert_eq!(row.as_bytes()[model_column - 1], b' ', "{row}");
        assert_ne!(row.as_bytes()[model_column], b' ', "{row}");
        assert_ne!(row.as_bytes()[result_column], b' ', "{row}");
    }
    assert!(rows[8].ends_with("FAILED: bad image"), "{}", rows[8]);
    assert!(rows[2].ends_with("kitchen (0.50)"), "{}", rows[2]);
}

#[test]
fn a_job_redone_after_a_failure_shows_once_as_ok() {
    let lines = [
        parse(&failed("1", 503, "service unavailable", 5, 0)),
        parse(&ok("1", 1.0, ("garage", 0.9), &[], 1.0, "x")),
    ];
    let mut only_room = lines.clone();
    for line in &mut only_room {
        line.models = vec![ROOM.to_string()];
        line.image = "https://example.com/1.jpg".to_string();
    }
    let table = results_table(only_room.clone());
    assert_eq!(table.lines().count(), 3, "{table}");
    assert!(table.contains("garage (0.90)"), "{table}");

    // One id, two images: an input edited between a run and its --resume
    // (ids default to line numbers). Both are results; neither hides the other.
    only_room[0].image = "https://example.com/new.jpg".to_string();
    let table = results_table(only_room);
    assert_eq!(table.lines().count(), 4, "{table}");
    assert!(
        table.contains("new.jpg") && table.contains("garage (0.90)"),
        "{table}"
    );
}

#[test]
fn a_bad_line_is_named_by_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_outcomes(dir.path(), &sample_lines()[..2], "{\"id\": \"3\"}\n");
    let results: Vec<Result<OutcomeLine, ReadError>> = read_outcomes(&path).unwrap().collect();
    assert_eq!(results.len(), 3);
    let error = results[2].as_ref().unwrap_err().to_string();
    let expected = format!("{}:3: not an outcome line: missing field", path.display());
    assert!(error.starts_with(&expected), "{error}");
}

#[test]
fn a_torn_last_line_is_skipped_and_noted() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_outcomes(dir.path(), &sample_lines(), TORN);
    let mut outcomes = read_outcomes(&path).unwrap();
    assert_eq!(outcomes.by_ref().filter(Result::is_ok).count(), 6);
    assert_eq!(outcomes.torn_line(), Some(7));
}

#[test]
fn a_missing_file_is_an_open_error_naming_it() {
    let error = read_outcomes(Path::new("/nonexistent/out.jsonl")).unwrap_err();
    assert!(matches!(error, ReadError::Open { .. }));
    assert!(
        error
            .to_string()
            .starts_with("cannot open /nonexistent/out.jsonl: "),
        "{error}"
    );
}

fn restb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_restb"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_binary_prints_the_report_and_writes_the_csv() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_outcomes(dir.path(), &sample_lines(), TORN);
    let file = path.to_str().unwrap();

    let output = restb(&["report", file]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), EXPECTED_REPORT);
    assert!(
        text(&output.stderr).contains(":7: ignoring a torn last line"),
        "{}",
        text(&output.stderr)
    );

    let csv_path = dir.path().join("out.csv");
    let output = restb(&["report", file, "--csv", csv_path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), EXPECTED_REPORT);
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    assert_eq!(reader.records().map(Result::unwrap).count(), 18);
    assert!(!dir.path().join("out.csv.partial").exists());

    let output = restb(&["report", file, "--csv", "-"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.starts_with("id,image,model,status,"), "{stdout}");
    assert_eq!(
        csv::Reader::from_reader(stdout.as_bytes())
            .records()
            .count(),
        18
    );
}

#[test]
fn the_binary_exits_2_naming_a_missing_file_or_a_bad_line() {
    let output = restb(&["report", "/nonexistent/outcomes.jsonl"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("/nonexistent/outcomes.jsonl"),
        "{}",
        text(&output.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    let path = write_outcomes(dir.path(), &sample_lines()[..1], "oops\n");
    let csv_path = dir.path().join("out.csv");
    let output = restb(&[
        "report",
        path.to_str().unwrap(),
        "--csv",
        csv_path.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("{}:2: not an outcome line", path.display())),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
    assert!(!csv_path.exists() && !dir.path().join("out.csv.partial").exists());

    let output = restb(&[
        "report",
        path.to_str().unwrap(),
        "--csv",
        path.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        std::fs::read_to_string(&path).unwrap().contains("oops"),
        "the outcome file is intact"
    );
}

#[test]
fn the_help_shows_an_example() {
    let output = restb(&["report", "--help"]);
    assert_eq!(output.status.code(), Some(0));
    let help = text(&output.stdout);
    assert!(help.contains("--csv <FILE>"), "{help}");
    assert!(
        help.contains("restb report outcomes.jsonl --csv outcomes.csv"),
        "{help}"
    );
}

/// `restb report OUTCOMES --csv CSV`.
fn report_csv(outcomes: &Path, csv: &Path) -> Output {
    restb(&[
        "report",
        outcomes.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
    ])
}

/// Regression: `--csv FILE` wrote `FILE.partial` and renamed it over FILE
/// whatever either was: an outcome file named `X.partial` was replaced by a
/// header-only CSV, a link was replaced instead of written through, and a
/// FIFO by a regular file its reader never saw.
#[test]
fn the_csv_never_replaces_the_outcomes_a_link_or_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_outcomes(dir.path(), &sample_lines(), "");
    let outcomes = dir.path().join("o.csv.partial");
    std::fs::rename(&written, &outcomes).unwrap();
    let before = std::fs::read(&outcomes).unwrap();
    let csv = dir.path().join("o.csv");
    let output = report_csv(&outcomes, &csv);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("outcome file"));
    assert_eq!(std::fs::read(&outcomes).unwrap(), before);

    let target = dir.path().join("target.csv");
    let link = dir.path().join("link.csv");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    std::fs::write(&target, "old").unwrap();
    let output = report_csv(&outcomes, &link);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let through = std::fs::read_to_string(&target).unwrap();
    assert!(through.starts_with("id,image,model,status,"), "{through}");

    let fifo = dir.path().join("pipe.csv");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let output = report_csv(&outcomes, &fifo);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let read = reader.join().unwrap();
    assert!(read.starts_with("id,image,model,status,"), "{read}");
    assert!(!dir.path().join("pipe.csv.partial").exists());
}

/// The failed job `line` redone ok, as `--retry-failed` appends it.
fn redone_ok(line: &Value) -> Value {
    let mut line = line.clone();
    line["status"] = json!("ok");
    line["http_status"] = json!(200);
    line["latency_ms"] = json!(900.0);
    line["solutions"] = json!({
        ROOM: {"top_prediction": {"label": "garage", "confidence": 0.9}},
        FEATURES: {"detections": []},
    });
    line.as_object_mut().unwrap().remove("error");
    line
}

/// `restb report OUTCOMES --csv -` with `stdin` on standard input.
fn report_csv_from_stdin(stdin: &[u8]) -> Output {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_restb"))
        .args(["report", "-", "--csv", "-"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// The `(id, status, error)` of each CSV row.
fn csv_rows(csv: &str) -> Vec<(String, String, String)> {
    csv::Reader::from_reader(csv.as_bytes())
        .records()
        .map(|row| {
            let row = row.unwrap();
            (row[0].into(), row[3].into(), row[11].into())
        })
        .collect()
}

/// Regression: the text report counted a job redone by `--retry-failed`
/// once, its failure replaced, but the CSV kept a row of every line: a
/// "failed" and an "ok" row for each job a later run redid.
#[test]
fn the_csv_lists_a_redone_job_once_as_the_text_report_counts_it() {
    let first_run = [
        ok("1", 1000.0, ("kitchen", 0.97), &[], 4.0, "x"),
        failed("2", 500, "server error", 1, 0),
        failed("3", 500, "server error", 1, 0),
        failed("4", 500, "server error", 1, 0),
    ];
    let mut lines = first_run.to_vec();
    // A run with --resume --retry-failed, then another.
    lines.push(redone_ok(&first_run[1]));
    lines.push(failed("3", 500, "server error", 1, 0));
    lines.push(failed("4", 503, "service unavailable", 1, 0));
    lines.push(redone_ok(&first_run[2]));
    let dir = tempfile::tempdir().unwrap();
    let path = write_outcomes(dir.path(), &lines, "");
    let summary = summarise(&path);
    assert_eq!((summary.ok(), summary.failed()), (3, 1));

    // Job 1's four models, jobs 2 and 3 redone ok, job 4's last failure.
    let mut expected: Vec<(String, String, String)> = Vec::new();
    let mut add = |id: &str, models: usize, status: &str, error: &str| {
        let row = (id.to_string(), status.to_string(), error.to_string());
        expected.extend(std::iter::repeat_n(row, models));
    };
    add("1", 4, "ok", "");
    add("2", 2, "ok", "");
    add("4", 2, "failed", "service unavailable");
    add("3", 2, "ok", "");

    let csv_file = dir.path().join("out.csv");
    let output = report_csv(&path, &csv_file);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let report = text(&output.stdout);
    assert!(
        report.contains("  ok            3\n  failed        1\n"),
        "{report}"
    );
    let written = std::fs::read_to_string(&csv_file).unwrap();
    assert_eq!(csv_rows(&written), expected, "{written}");

    let output = restb(&["report", path.to_str().unwrap(), "--csv", "-"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(csv_rows(&text(&output.stdout)), expected);

    let output = report_csv_from_stdin(&std::fs::read(&path).unwrap());
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(csv_rows(&text(&output.stdout)), expected);
}

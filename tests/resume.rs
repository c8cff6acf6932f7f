//! `--resume` and `restb report` end to end, through the real `restb`
//! binary against the mock gateway on port 0: both read an outcome file
//! with the same reader, so they agree on a torn last line (dropped and
//! reported) and a bad line in the middle (an error naming `FILE:LINE`).

use restb::mock::{MockConfig, MockServer};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

const KEY: &str = "test-key-5ecr3t";

fn restb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_restb"))
        .args(args)
        .env_remove("RUST_LOG")
        .env("RESTB_CLIENT_KEY", KEY)
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every line of the outcome file, each required to be whole JSON.
fn outcome_lines(path: &Path) -> Vec<Value> {
    let body = std::fs::read_to_string(path).unwrap();
    assert!(body.is_empty() || body.ends_with('\n'), "{body:?}");
    body.lines()
        .map(|line| serde_json::from_str(line).expect("each line is whole JSON"))
        .collect()
}

fn write_input(dir: &Path, name: &str, images: &[&str]) -> String {
    let path = dir.join(name);
    let body: String = images
        .iter()
        .map(|image| format!("https://example.com/photos/{image}.jpg\n"))
        .collect();
    std::fs::write(&path, body).unwrap();
    path.to_string_lossy().into_owned()
}

fn ok_line(id: &str, image: &str) -> String {
    format!(
        "{{\"id\":\"{id}\",\"image\":\"https://example.com/photos/{image}.jpg\",\"models\":[\"re_logo\"],\"status\":\"ok\",\"http_status\":200,\"attempts\":1,\"rate_limited\":0,\"latency_ms\":3.0,\"solutions\":{{}}}}"
    )
}

/// The `jobs` figure of a text report.
fn jobs_in_report(report: &Output) -> u64 {
    text(&report.stdout)
        .lines()
        .find_map(|line| line.trim().strip_prefix("jobs"))
        .and_then(|count| count.trim().parse().ok())
        .expect("a jobs line")
}

/// `restb run INPUT --resume -o OUT` against `base`, fast; one model
/// unless `extra` names `--models`.
fn resume(input: &str, out: &Path, base: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "run",
        input,
        "--base-url",
        base,
        "--rps",
        "200",
        "-o",
        out.to_str().unwrap(),
        "--resume",
    ];
    if !extra.contains(&"--models") {
        args.extend(["--models", "re_logo"]);
    }
    args.extend_from_slice(extra);
    restb(&args)
}

#[test]
fn report_and_resume_both_drop_a_torn_last_line_and_say_where() {
    let server = MockServer::start(MockConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path(), "in.txt", &["a", "b", "c", "d"]);
    let out = dir.path().join("out.jsonl");
    let torn = format!(
        "{}\n{}\n{{\"id\":\"3\",\"ima",
        ok_line("1", "a"),
        ok_line("2", "b")
    );
    std::fs::write(&out, &torn).unwrap();
    let name = out.to_str().unwrap();

    let report = restb(&["report", name]);
    assert_eq!(report.status.code(), Some(0), "{}", text(&report.stderr));
    assert_eq!(jobs_in_report(&report), 2, "{}", text(&report.stdout));
    let warning = format!("{name}:3: ignoring a torn last line");
    assert!(
        text(&report.stderr).contains(&warning),
        "{}",
        text(&report.stderr)
    );

    // Nothing left to send: the fragment must go all the same.
    let done = write_input(dir.path(), "done.txt", &["a", "b"]);
    let run = resume(&done, &out, &server.base_url(), &[]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    assert!(
        text(&run.stderr).contains(&warning),
        "{}",
        text(&run.stderr)
    );
    assert_eq!(server.counters().requests, 0);
    assert_eq!(outcome_lines(&out).len(), 2);

    let run = resume(&input, &out, &server.base_url(), &[]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    assert_eq!(server.counters().requests, 2, "c and d only");
    let lines = outcome_lines(&out);
    assert_eq!(lines.len(), 4, "the torn fragment is gone");
}

#[test]
fn report_and_resume_both_refuse_a_bad_middle_line_naming_it() {
    let server = MockServer::start(MockConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path(), "in.txt", &["a", "b", "c"]);
    let out = dir.path().join("out.jsonl");
    let body = format!(
        "{}\n{{\"id\":\"2\",\"ima\n{}\n",
        ok_line("1", "a"),
        ok_line("3", "c")
    );
    std::fs::write(&out, &body).unwrap();
    let expected = format!("{}:2: not an outcome line", out.display());

    let report = restb(&["report", out.to_str().unwrap()]);
    assert_eq!(report.status.code(), Some(2));
    assert!(
        text(&report.stderr).contains(&expected),
        "{}",
        text(&report.stderr)
    );

    let run = resume(&input, &out, &server.base_url(), &[]);
    assert_eq!(run.status.code(), Some(2));
    assert!(
        text(&run.stderr).contains(&expected),
        "{}",
        text(&run.stderr)
    );
    assert_eq!(server.counters().requests, 0);
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        body,
        "left as it was"
    );
}

#[test]
fn a_whole_last_line_without_its_newline_counts_and_is_ended_before_appending() {
    let server = MockServer::start(MockConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path(), "in.txt", &["a", "b", "c"]);
    let out = dir.path().join("out.jsonl");
    std::fs::write(
        &out,
        format!("{}\n{}", ok_line("1", "a"), ok_line("2", "b")),
    )
    .unwrap();

    let report = restb(&["report", out.to_str().unwrap()]);
    assert_eq!(report.status.code(), Some(0), "{}", text(&report.stderr));
    assert_eq!(jobs_in_report(&report), 2, "{}", text(&report.stdout));

    let run = resume(&input, &out, &server.base_url(), &[]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    assert_eq!(server.counters().requests, 1, "c only");
    assert_eq!(outcome_lines(&out).len(), 3);
}

/// How many outcome lines each image has, and how many are ok.
fn lines_per_image(lines: &[Value]) -> std::collections::BTreeMap<String, (usize, usize)> {
    let mut per_image = std::collections::BTreeMap::new();
    for line in lines {
        let image = line["image"].as_str().unwrap().rsplit('/').next().unwrap();
        let entry: &mut (usize, usize) = per_image.entry(image.to_string()).or_default();
        entry.0 += 1;
        entry.1 += usize::from(line["status"] == "ok");
    }
    per_image
}

/// Regression: input v1 = a, b; run; input v2 = new, a, b; `--resume` took
/// `new` (id 1) as done by a's outcome, never sent it, sent b again, and
/// exited 0. Ids default to line numbers; the job is its image and models.
#[test]
fn resume_over_an_edited_input_sends_exactly_the_images_without_an_outcome() {
    let server = MockServer::start(MockConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let base = server.base_url();
    let v1 = write_input(dir.path(), "v1.txt", &["a", "b"]);
    let run = resume(&v1, &out, &base, &[]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    assert_eq!(server.counters().requests, 2);

    let v2 = write_input(dir.path(), "v2.txt", &["new", "a", "b"]);
    let run = resume(&v2, &out, &base, &[]);
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("resuming: 2 of 3 jobs already done"),
        "{stderr}"
    );
    assert_eq!(
        server.counters().requests,
        3,
        "only `new` was sent: {stderr}"
    );
    let lines = outcome_lines(&out);
    let expected: std::collections::BTreeMap<String, (usize, usize)> =
        ["a.jpg", "b.jpg", "new.jpg"]
            .iter()
            .map(|image| (image.to_string(), (1, 1)))
            .collect();
    assert_eq!(lines_per_image(&lines), expected, "each image once, ok");

    // And once more: nothing left.
    let run = resume(&v2, &out, &base, &[]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    assert_eq!(server.counters().requests, 3);
    assert_eq!(outcome_lines(&out).len(), 3);
}

#[test]
fn an_outcome_with_the_same_id_but_another_image_does_not_count_as_done() {
    let server = MockServer::start(MockConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let input = dir.path().join("in.jsonl");
    let base = server.base_url();
    let write = |image: &str| {
        let url = format!("https://example.com/photos/{image}.jpg");
        std::fs::write(
            &input,
            format!("{{\"id\":\"listing-7\",\"url\":\"{url}\"}}\n"),
        )
        .unwrap();
    };
    write("kitchen");
    let run = resume(input.to_str().unwrap(), &out, &base, &[]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    write("kitchen-retouched");
    let run = resume(input.to_str().unwrap(), &out, &base, &[]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    assert_eq!(server.counters().requests, 2, "the new image was sent");
    let per_image = lines_per_image(&outcome_lines(&out));
    assert_eq!(per_image.len(), 2);
    assert!(per_image.values().all(|counts| *counts == (1, 1)));
}

#[test]
fn per_model_requests_are_other_jobs_than_one_multipredict() {
    let server = MockServer::start(MockConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let input = write_input(dir.path(), "in.txt", &["a", "b"]);
    let base = server.base_url();
    let two = ["--models", "re_logo,re_condition_r1r6_global"];
    let run = resume(&input, &out, &base, &two);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    assert_eq!(server.counters().requests, 2);
    let run = resume(&input, &out, &base, &two);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    assert_eq!(
        server.counters().requests,
        2,
        "multipredict outcomes cover multipredict jobs"
    );
    let per_model = [&two[..], &["--per-model"]].concat();
    let run = resume(&input, &out, &base, &per_model);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    assert_eq!(
        server.counters().requests,
        6,
        "one predict per image and model"
    );
    assert_eq!(outcome_lines(&out).len(), 6);
}

#[test]
fn a_model_listed_twice_is_refused_naming_the_flag() {
    let server = MockServer::start(MockConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let input = write_input(dir.path(), "in.txt", &["a"]);
    let base = server.base_url();
    for extra in [
        &["--models", "re_logo,re_logo"][..],
        &["--models", "re_logo,caption,re_logo", "--per-model"],
    ] {
        let run = resume(&input, &out, &base, extra);
        let stderr = text(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("--models: 're_logo' is listed twice"),
            "{stderr}"
        );
    }
    assert_eq!(server.counters().requests, 0);
}

/// `{"id":ID,"url":...}` lines: two listings may share a photo.
fn write_listings(dir: &Path, listings: &[(&str, &str)]) -> String {
    let path = dir.join("listings.jsonl");
    let body: String = listings
        .iter()
        .map(|(id, image)| {
            format!("{{\"id\":\"{id}\",\"url\":\"https://example.com/photos/{image}.jpg\"}}\n")
        })
        .collect();
    std::fs::write(&path, body).unwrap();
    path.to_string_lossy().into_owned()
}

fn failed_line(id: &str, image: &str) -> String {
    format!(
        "{{\"id\":\"{id}\",\"image\":\"https://example.com/photos/{image}.jpg\",\"models\":[\"re_logo\"],\"status\":\"failed\",\"http_status\":400,\"attempts\":1,\"rate_limited\":0,\"error\":\"bad\"}}"
    )
}

/// The ids of the outcome lines, in file order, with their status.
fn ids_and_status(path: &Path) -> Vec<(String, String)> {
    outcome_lines(path)
        .iter()
        .map(|line| {
            let field = |name: &str| line[name].as_str().unwrap().to_string();
            (field("id"), field("status"))
        })
        .collect()
}

/// Regression: jobs `a` and `b` share an image; the file has `a failed`,
/// `b ok`. `--resume --retry-failed` paired lines by image and models only,
/// so b's ok line cancelled a's failure: b was sent again and a never was.
#[test]
fn resume_retry_failed_redoes_the_failed_job_not_its_twin_sharing_the_image() {
    let server = MockServer::start(MockConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let input = write_listings(dir.path(), &[("a", "shared"), ("b", "shared")]);
    let base = server.base_url();
    let before = format!(
        "{}\n{}\n",
        failed_line("a", "shared"),
        ok_line("b", "shared")
    );
    std::fs::write(&out, &before).unwrap();
    for _ in 0..2 {
        let run = resume(&input, &out, &base, &["--retry-failed"]);
        assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    }
    assert_eq!(server.counters().requests, 1, "a once, b never");
    let ids = ids_and_status(&out);
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert_eq!(ids[2], ("a".to_string(), "ok".to_string()), "{ids:?}");
}

/// Regression: the same two jobs without `--retry-failed`: whichever line
/// came first, the failed job was sent again, duplicating its outcome.
#[test]
fn resume_without_retry_failed_sends_neither_twin_sharing_an_image() {
    let server = MockServer::start(MockConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let input = write_listings(dir.path(), &[("a", "shared"), ("b", "shared")]);
    let base = server.base_url();
    let (a, b) = (failed_line("a", "shared"), ok_line("b", "shared"));
    for before in [format!("{a}\n{b}\n"), format!("{b}\n{a}\n")] {
        std::fs::write(&out, &before).unwrap();
        let run = resume(&input, &out, &base, &[]);
        let stderr = text(&run.stderr);
        assert_eq!(run.status.code(), Some(1), "a failed earlier: {stderr}");
        assert!(
            stderr.contains("resuming: 2 of 2 jobs already done"),
            "{stderr}"
        );
        assert!(
            stderr.contains("(0 of its outcomes match no job"),
            "{stderr}"
        );
        assert_eq!(std::fs::read_to_string(&out).unwrap(), before);
    }
    assert_eq!(server.counters().requests, 0);
}

/// Regression: `c` failed, was redone and failed again; `d`, sharing its
/// image, has no outcome. c's second failed line covered d, which was never
/// sent.
#[test]
fn a_repeated_failure_of_a_job_does_not_cover_its_twin_sharing_the_image() {
    let server = MockServer::start(MockConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let input = write_listings(dir.path(), &[("c", "shared"), ("d", "shared")]);
    let base = server.base_url();
    let c = failed_line("c", "shared");
    std::fs::write(&out, format!("{c}\n{c}\n")).unwrap();
    let run = resume(&input, &out, &base, &[]);
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "c failed earlier: {stderr}");
    assert!(
        stderr.contains("resuming: 1 of 2 jobs already done"),
        "{stderr}"
    );
    assert_eq!(server.counters().requests, 1, "d only");
    assert_eq!(ids_and_status(&out)[2], ("d".to_string(), "ok".to_string()));
}

/// Regression: "N of its outcomes match no job" counted a job's repeated
/// failed lines (a failure redone with `--retry-failed` that failed again)
/// as outcomes of no job.
#[test]
fn repeated_failed_lines_of_a_job_are_not_counted_as_matching_no_job() {
    let server = MockServer::start(MockConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let input = write_listings(dir.path(), &[("c", "kept"), ("e", "redone")]);
    let lines = [
        failed_line("c", "kept"),
        failed_line("c", "kept"),
        failed_line("c", "kept"),
        // e failed with id 1, then (input edited) was redone as e.
        failed_line("1", "redone"),
        ok_line("e", "redone"),
        ok_line("g", "gone"),
        failed_line("h", "gone-too"),
    ];
    std::fs::write(&out, lines.join("\n") + "\n").unwrap();
    let run = resume(&input, &out, &server.base_url(), &[]);
    let stderr = text(&run.stderr);
    assert!(
        stderr.contains("resuming: 2 of 2 jobs already done"),
        "{stderr}"
    );
    assert!(
        stderr.contains("(2 of its outcomes match no job of this input)"),
        "only gone and gone-too: {stderr}"
    );
    assert_eq!(server.counters().requests, 0);
}

/// Regression: a last line without its newline that is whole JSON but not
/// an outcome (`{"note":"x"}`) was taken as torn: `--resume` deleted it
/// and `restb report` skipped it. Both now refuse it, naming FILE:LINE.
#[test]
fn a_whole_json_last_line_that_is_not_an_outcome_is_refused_not_deleted() {
    let server = MockServer::start(MockConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path(), "in.txt", &["a", "b"]);
    let out = dir.path().join("out.jsonl");
    let body = format!("{}\n{{\"note\":\"x\"}}", ok_line("1", "a"));
    std::fs::write(&out, &body).unwrap();
    let expected = format!("{}:2: not an outcome line", out.display());

    let report = restb(&["report", out.to_str().unwrap()]);
    assert_eq!(report.status.code(), Some(2), "{}", text(&report.stdout));
    assert!(
        text(&report.stderr).contains(&expected),
        "{}",
        text(&report.stderr)
    );

    let run = resume(&input, &out, &server.base_url(), &[]);
    assert_eq!(run.status.code(), Some(2), "{}", text(&run.stderr));
    assert!(
        text(&run.stderr).contains(&expected),
        "{}",
        text(&run.stderr)
    );
    assert_eq!(server.counters().requests, 0);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), body, "kept");
}

/// A crash can leave zeros where the last line was going: still torn.
#[test]
fn a_last_line_of_zero_padding_is_torn() {
    let server = MockServer::start(MockConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path(), "in.txt", &["a", "b"]);
    let out = dir.path().join("out.jsonl");
    let padded = format!("{}\n{{\"id\":\"2\",\"ima\0\0\0\0", ok_line("1", "a"));
    for body in [format!("{}\n\0\0\0\0", ok_line("1", "a")), padded] {
        std::fs::write(&out, &body).unwrap();
        let report = restb(&["report", out.to_str().unwrap()]);
        assert_eq!(report.status.code(), Some(0), "{}", text(&report.stderr));
        assert_eq!(jobs_in_report(&report), 1);
    }
    let run = resume(&input, &out, &server.base_url(), &[]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    assert_eq!(server.counters().requests, 1, "b only");
    assert_eq!(outcome_lines(&out).len(), 2);
}

/// Regression: `--stats-json` was created (emptied) before the `--resume`
/// checks, so a resume refused for a bad outcome file wiped the stats of the
/// run before it.
#[test]
fn refused_resume_keeps_the_previous_stats_json() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path(), "urls.txt", &["a", "b"]);
    let out = dir.path().join("out.jsonl");
    std::fs::write(
        &out,
        format!(
            "{}\nnot an outcome\n{}\n",
            ok_line("1", "a"),
            ok_line("2", "b")
        ),
    )
    .unwrap();
    let stats = dir.path().join("stats.json");
    let previous = "{\"jobs\": 2}\n";
    std::fs::write(&stats, previous).unwrap();
    // No request is sent: the base URL is never reached.
    let output = resume(
        &input,
        &out,
        "http://127.0.0.1:9",
        &["--stats-json", stats.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("--resume"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(std::fs::read_to_string(&stats).unwrap(), previous);
}

/// Regression: `--resume` on a pipe read the run's own output (`-o
/// /dev/stdout` into a pipe: it waited until killed), and on `/dev/null`
/// failed with "cannot repair its end: Invalid argument". Neither holds
/// outcomes to resume from: both are refused at once.
#[test]
fn resume_refuses_an_output_that_is_not_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path(), "in.txt", &["a", "b"]);
    let fifo = dir.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    for out in [fifo.as_path(), Path::new("/dev/null")] {
        // A gateway nobody listens on: nothing may be sent anyway. Bounded:
        // the bug this guards against waits for ever.
        let output = Command::new("timeout")
            .arg("20")
            .arg(env!("CARGO_BIN_EXE_restb"))
            .args(["run", &input, "--base-url", "http://127.0.0.1:9"])
            .args(["--models", "re_logo", "--resume", "-o"])
            .arg(out)
            .env_remove("RUST_LOG")
            .env("RESTB_CLIENT_KEY", KEY)
            .output()
            .unwrap();
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{}: {stderr}", out.display());
        assert!(stderr.contains("is not a regular file"), "{stderr}");
    }
    // A dry run of it too (opening a FIFO to read waits for a writer).
    let output = Command::new("timeout")
        .arg("20")
        .arg(env!("CARGO_BIN_EXE_restb"))
        .args(["run", &input, "--dry-run", "--resume", "-o"])
        .arg(&fifo)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not a regular file"), "{stderr}");
}

//! The files `restb run` writes, with the real binary against the mock on
//! loopback: it never writes over its own input or its outcomes with its
//! stats, `-` is standard output, an outcome file has one writer at a time,
//! and a stats file it cannot write does not hide how the run ended.

mod common;

use common::{outcome_lines, start_mock, text, Batch, RunLine, KEY};
use restb::mock::MockConfig;
use std::fs::File;

fn run_line(batch: &Batch, base_url: &str) -> RunLine {
    RunLine::new(batch.input())
        .base_url(base_url)
        .rps("50")
        .models("re_logo")
}

#[test]
fn the_input_and_the_outcome_and_stats_files_must_differ() {
    let server = start_mock(MockConfig::default());
    let batch = Batch::of(3);
    let input_before = std::fs::read(&batch.input).unwrap();
    let refused = run_line(&batch, &server.base_url())
        .out(&batch.input)
        .run(Some(KEY));
    let said = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{said}");
    assert!(said.contains("--output is the input"), "{said}");
    assert_eq!(std::fs::read(&batch.input).unwrap(), input_before);
    let refused = run_line(&batch, &server.base_url())
        .out(&batch.out)
        .stats_json(&batch.out)
        .run(Some(KEY));
    let said = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{said}");
    assert!(said.contains("--stats-json is --output"), "{said}");
    assert_eq!(server.counters().requests, 0, "refused before any request");
}

#[test]
fn a_dash_is_standard_output() {
    let server = start_mock(MockConfig::default());
    let batch = Batch::of(2);
    let dir = batch.out.parent().unwrap();
    let ran = run_line(&batch, &server.base_url())
        .out("-")
        .command(Some(KEY))
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(ran.status.code(), Some(0), "{}", text(&ran.stderr));
    assert_eq!(text(&ran.stdout).lines().count(), 2, "the outcomes");
    assert!(!dir.join("-").exists(), "no file named -");
    let ran = run_line(&batch, &server.base_url())
        .out(&batch.out)
        .stats_json("-")
        .run(Some(KEY));
    assert_eq!(ran.status.code(), Some(0), "{}", text(&ran.stderr));
    let stats: serde_json::Value = serde_json::from_slice(&ran.stdout).unwrap();
    assert_eq!(stats["succeeded"], 2);
    let refused = run_line(&batch, &server.base_url())
        .stats_json("-")
        .run(Some(KEY));
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused.stderr).contains("--stats-json -"));
    // Review: `-o /dev/stdout` is standard output by another name; the
    // stats went after the outcomes in one stream.
    let sent = server.counters().requests;
    let refused = run_line(&batch, &server.base_url())
        .out("/dev/stdout")
        .stats_json("-")
        .run(Some(KEY));
    let said = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{said}");
    assert!(said.contains("--output is standard output too"), "{said}");
    assert_eq!(
        server.counters().requests,
        sent,
        "refused before any request"
    );
}

/// A stats file ends with a line break (as on standard output), and a run
/// whose outcomes cannot be written does not advise `--resume` where it
/// cannot read them back (a device).
#[test]
fn a_stats_file_ends_its_line_and_a_device_gets_no_resume_advice() {
    let server = start_mock(MockConfig::default());
    let batch = Batch::of(2);
    let stats = batch.dir.path().join("stats.json");
    let ran = run_line(&batch, &server.base_url())
        .out(&batch.out)
        .stats_json(&stats)
        .run(Some(KEY));
    assert_eq!(ran.status.code(), Some(0), "{}", text(&ran.stderr));
    assert!(std::fs::read_to_string(&stats).unwrap().ends_with("}\n"));
    let failed = run_line(&batch, &server.base_url())
        .out("/dev/full")
        .run(Some(KEY));
    let said = text(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{said}");
    assert!(said.contains("writing outcomes failed"), "{said}");
    assert!(!said.contains("--resume"), "{said}");
    // Review: the stats counted by status a line never written.
    let failed = run_line(&batch, &server.base_url())
        .out("/dev/full")
        .stats_json(&stats)
        .run(Some(KEY));
    assert_eq!(failed.status.code(), Some(1));
    let figures: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    assert_eq!(figures["finished"], 0, "{figures}");
    assert_eq!(figures["by_status"], serde_json::json!({}), "{figures}");
}

#[test]
fn a_second_run_on_an_outcome_file_in_use_is_refused_and_changes_nothing() {
    let server = start_mock(MockConfig::default());
    let batch = Batch::of(3);
    let first = run_line(&batch, &server.base_url())
        .out(&batch.out)
        .run(Some(KEY));
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let before = std::fs::read(&batch.out).unwrap();
    // Another run holds the file: its lock, taken here.
    let holder = File::options().append(true).open(&batch.out).unwrap();
    rustix::fs::flock(
        &holder,
        rustix::fs::FlockOperation::NonBlockingLockExclusive,
    )
    .unwrap();
    for resume in [false, true] {
        let mut line = run_line(&batch, &server.base_url()).out(&batch.out);
        if resume {
            line = line.args(["--resume"]);
        }
        let refused = line.run(Some(KEY));
        let said = text(&refused.stderr);
        assert_eq!(refused.status.code(), Some(2), "--resume {resume}: {said}");
        assert!(said.contains("another run is writing it"), "{said}");
        assert_eq!(std::fs::read(&batch.out).unwrap(), before);
    }
    drop(holder);
    let resumed = run_line(&batch, &server.base_url())
        .out(&batch.out)
        .args(["--resume"])
        .run(Some(KEY));
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed.stderr));
    assert_eq!(
        server.counters().requests,
        3,
        "only the first run sent anything"
    );
}

#[test]
fn a_stats_file_that_cannot_be_written_fails_the_run_after_its_outcomes() {
    let server = start_mock(MockConfig::default());
    let batch = Batch::of(2);
    let ran = run_line(&batch, &server.base_url())
        .out(&batch.out)
        .stats_json("/dev/full")
        .run(Some(KEY));
    let said = text(&ran.stderr);
    assert_eq!(ran.status.code(), Some(1), "{said}");
    assert!(
        said.contains("--stats-json: cannot write /dev/full"),
        "{said}"
    );
    assert_eq!(outcome_lines(&batch.out).len(), 2, "every outcome written");
}

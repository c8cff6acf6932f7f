//! What `restb run` says when it ends early, over real runs: the cause it
//! had, `--resume` only where it is accepted (with `--output`), and
//! `--stats-json` calling a run `interrupted` only when a signal stopped it.

mod common;

use common::tiny_server::{answer, TinyServer};
use common::{json_file, start_mock, text, Batch, RunLine, KEY};
use restb::mock::MockConfig;

/// Regression: with outcomes on standard output, a refused key ended with
/// "run the same command with --resume", which is refused without --output.
#[test]
fn refused_key_with_outcomes_on_stdout_does_not_advise_resume() {
    let server = TinyServer::start(|_, stream| {
        answer(
            stream,
            401,
            "application/json",
            r#"{"message":"Invalid key"}"#,
        )
    });
    let batch = Batch::of(3);
    let output = RunLine::new(batch.input())
        .base_url(&server.base_url())
        .models("re_logo")
        .run(Some(KEY));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("refused the client key"), "{stderr}");
    assert!(!stderr.contains("--resume"), "{stderr}");
}

/// Regression: `--stats-json` said `"interrupted": true` when the outcome
/// file could not be written (a full disk: `/dev/full`), and the run said
/// "interrupted" as if a signal had stopped it.
#[test]
fn sink_failure_is_not_reported_as_interrupted() {
    let server = start_mock(MockConfig::default());
    let batch = Batch::of(5);
    let stats = batch.dir.path().join("stats.json");
    let output = RunLine::new(batch.input())
        .base_url(&server.base_url())
        .models("re_logo")
        .out("/dev/full")
        .stats_json(&stats)
        .run(Some(KEY));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("writing outcomes failed"), "{stderr}");
    assert!(!stderr.contains("interrupted"), "{stderr}");
    let stats = json_file(&stats);
    assert_eq!(stats["interrupted"], false, "{stats}");
    assert_eq!(stats["aborted"], false, "{stats}");
}

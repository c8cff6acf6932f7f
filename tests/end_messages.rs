//! What `restb run` says when it ends early, over real runs: the cause it
//! had, `--resume` only where it is accepted (with `--output`), and
//! `--stats-json` calling a run `interrupted` only when a signal stopped it.

mod common;

use common::tiny_server::{answer, TinyServer};
use common::{start_mock, text, url_list};
use restb::mock::MockConfig;
use serde_json::Value;

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
    let dir = tempfile::tempdir().unwrap();
    let input = url_list(dir.path(), 3);
    let output = common::run(
        &[
            "run",
            &input,
            "--base-url",
            &server.base_url(),
            "--models",
            "re_logo",
        ],
        Some(common::KEY),
    );
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
    let dir = tempfile::tempdir().unwrap();
    let input = url_list(dir.path(), 5);
    let stats = dir.path().join("stats.json");
    let output = common::run(
        &[
            "run",
            &input,
            "--base-url",
            &server.base_url(),
            "--models",
            "re_logo",
            "-o",
            "/dev/full",
            "--stats-json",
            stats.to_str().unwrap(),
        ],
        Some(common::KEY),
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("writing outcomes failed"), "{stderr}");
    assert!(!stderr.contains("interrupted"), "{stderr}");
    let stats: Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    assert_eq!(stats["interrupted"], false, "{stats}");
    assert_eq!(stats["aborted"], false, "{stats}");
}

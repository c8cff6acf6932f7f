//! What `restb run` says when it ends early, over real runs: the cause it
//! had, `--resume` only where it is accepted (with `--output`), and
//! `--stats-json` calling a run `interrupted` only when a signal stopped it.

mod common;

use common::tiny_server::{answer, TinyServer};
use common::{json_file, start_mock, text, Batch, RunLine, KEY};
use restb::mock::{LimiterKind, MockConfig};
use std::time::Duration;

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

/// 429s that persist at the paced rate (here an allotment of 5/s and
/// `--rps 20`) cut the rate; the stats count the cuts, and the run names
/// the usual cause and `--shared-limit`. A run without cuts says neither.
#[test]
fn cuts_of_the_rate_are_counted_and_point_to_the_shared_limit() {
    let mut config = MockConfig::default();
    config.rps = Some(5);
    config.limiter = LimiterKind::Leaky;
    config.latency = Duration::from_millis(20);
    let server = start_mock(config);
    let batch = Batch::of(20);
    let stats = batch.dir.path().join("stats.json");
    let output = RunLine::new(batch.input())
        .base_url(&server.base_url())
        .rps("20")
        .models("re_logo")
        .out(batch.out())
        .stats_json(&stats)
        .run(Some(KEY));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let cuts = json_file(&stats)["rate_cuts"].as_u64().unwrap();
    assert!(cuts >= 1, "{stderr}");
    assert!(
        stderr.contains(&format!("[{cuts}] cuts of the rate")),
        "{stderr}"
    );
    assert!(stderr.contains("--shared-limit redis://HOST"), "{stderr}");

    let calm = Batch::of(3);
    let output = RunLine::new(calm.input())
        .base_url(&server.base_url())
        .models("re_logo")
        .out(calm.out())
        .stats_json(&stats)
        .run(Some(KEY));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(json_file(&stats)["rate_cuts"], 0, "{stderr}");
    assert!(!stderr.contains("cuts of the rate"), "{stderr}");
    assert!(!stderr.contains("--shared-limit"), "{stderr}");
}

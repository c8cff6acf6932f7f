//! The API does not redirect, and a redirect would carry the client key
//! (`?client_key=`) to wherever it points, in clear if that is `http://`,
//! past the `--allow-http` check made on the base URL. restb follows none.

mod common;

use common::tiny_server::{answer_with, TinyServer};
use common::{client, KEY};
use restb::api::{ImageSource, Verdict};
use std::net::TcpListener;
use std::time::Duration;

/// Regression: ureq followed up to 10 redirects, so a 301 to another host
/// sent it the request, client key and all.
#[test]
fn redirect_is_not_followed_and_the_key_stays_home() {
    // The place the redirect points at: a listener that notes any connection.
    let elsewhere = TcpListener::bind("127.0.0.1:0").unwrap();
    let elsewhere_port = elsewhere.local_addr().unwrap().port();
    elsewhere.set_nonblocking(true).unwrap();
    let location = format!("http://127.0.0.1:{elsewhere_port}/collect");
    let server = TinyServer::start(move |_, stream| {
        answer_with(
            stream,
            301,
            "text/plain",
            &[("Location", &location)],
            "moved",
        )
    });
    let client = client(&server.base_url(), KEY, Duration::from_secs(5));
    let image = ImageSource::Url("https://example.com/a.jpg".into());
    let reply = client.predict(&image, &["re_logo".to_string()]);

    // The request is over: a followed redirect would have connected by now
    // (the connection waits in the listener's backlog).
    assert!(elsewhere.accept().is_err(), "the redirect was followed");
    assert_eq!(reply.http_status, Some(301));
    match &reply.verdict {
        Verdict::Fatal(message) => {
            assert!(message.contains("redirect"), "{message}");
            assert!(!message.contains(KEY), "{message}");
        }
        other => panic!("a redirect ends the run, got {other:?}"),
    }
}

/// Regression: a redirect failed its job alone, so a batch against an
/// endpoint that redirects was sent whole and every job marked failed (and
/// skipped by a later `--resume`). It now stops the run at the first one,
/// the jobs left for a resume against the right URL.
#[test]
fn a_redirect_stops_the_run_and_leaves_the_jobs_unfinished() {
    let server = TinyServer::start(|_, stream| {
        answer_with(
            stream,
            302,
            "text/plain",
            &[("Location", "https://elsewhere.example/")],
            "found",
        )
    });
    let batch = common::Batch::of(20);
    let output = common::restb(Some(KEY))
        .args(["run", batch.input(), "--base-url", &server.base_url()])
        .args([
            "-o",
            batch.out(),
            "--models",
            "re_logo",
            "--rps",
            "50",
            "--threads",
            "1",
        ])
        .output()
        .unwrap();
    let stderr = common::text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(
        common::outcome_lines(&batch.out).len(),
        0,
        "no job recorded"
    );
    assert!(stderr.contains("redirect"), "{stderr}");
    assert!(stderr.contains("20 jobs have no outcome"), "{stderr}");
    assert!(!stderr.contains(KEY), "{stderr}");
}

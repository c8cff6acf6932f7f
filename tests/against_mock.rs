//! The Restb.ai client and the pool together, over real sockets, against the
//! mock gateway on port 0.

mod common;

use base64::Engine as _;
use common::tiny_server::{answer, percent_decode, TinyServer};
use common::{assert_jobs_once, start_mock};
use restb::api::{Client, ClientConfig, ClientKey, ImageSource, Verdict};
use restb::input::Record;
use restb::job::{jobs_from_records, CallOutput, Job, RestbWork};
use restb::limiter::Rate;
use restb::mock::{HeaderStyle, MockConfig, MockServer};
use restb::pool::{AbortReason, Ending, Finished, Pool, PoolConfig, PoolSummary};
use restb::stop::Stop;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn client_for(server: &MockServer, key: &str) -> Client {
    common::client(&server.base_url(), key, Duration::from_secs(5))
}

fn records(count: usize) -> Vec<Record> {
    (1..=count)
        .map(|n| Record {
            id: n.to_string(),
            image: ImageSource::Url(format!("https://example.com/photos/{n}.jpg")),
            models: None,
            line: n,
        })
        .collect()
}

fn models(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|m| m.to_string()).collect()
}

/// What a run gives back: its summary and every job's outcome.
type Ran = (PoolSummary, Vec<Finished<Job, CallOutput>>);

/// Runs `jobs` through a pool paced at `rate` per second.
fn run_jobs(client: Client, jobs: Vec<Job>, rate: f64) -> Ran {
    let mut config = PoolConfig::default();
    config.rate = Rate::per_second(rate);
    let pool = Pool::new(config, Stop::new());
    let mut outcomes = Vec::new();
    let summary = pool.run(&RestbWork::new(client), jobs, |finished| {
        outcomes.push(finished);
        Ok(())
    });
    (summary, outcomes)
}

/// [`run_jobs`] against `server` with the key `k`, and each job finished
/// exactly once.
fn run_each_once(server: &MockServer, jobs: Vec<Job>, rate: f64) -> Ran {
    let (summary, outcomes) = run_jobs(client_for(server, "k"), jobs.clone(), rate);
    assert_jobs_once(&jobs, &outcomes);
    (summary, outcomes)
}

/// A gateway that allows `rps` requests a second and tells it in `style`
/// headers.
fn limited(rps: u32, style: HeaderStyle) -> MockConfig {
    let mut config = MockConfig::default();
    config.rps = Some(rps);
    config.header_style = style;
    config
}

/// `count` images, one job per image for the model `re_logo`.
fn logo_jobs(count: usize) -> Vec<Job> {
    jobs_from_records(records(count), &models(&["re_logo"]), true)
}

#[test]
fn grouped_jobs_send_one_multipredict_request_per_image() {
    let server = MockServer::start(MockConfig::default()).unwrap();
    let jobs = jobs_from_records(
        records(12),
        &models(&["re_logo", "re_roomtype_global_v2"]),
        false,
    );
    let (summary, outcomes) = run_each_once(&server, jobs, 200.0);
    assert_eq!(summary.report.succeeded, 12);
    for outcome in &outcomes {
        let solutions = outcome.output.solutions.as_ref().unwrap();
        assert!(
            solutions.get("re_logo").is_some() && solutions.get("re_roomtype_global_v2").is_some()
        );
        assert_eq!(outcome.output.http_status, Some(200));
    }
    let arrivals = server.arrivals();
    assert_eq!(arrivals.len(), 12);
    assert!(arrivals.iter().all(|a| a.path == "/vision/v2/multipredict"));
}

#[test]
fn per_model_jobs_send_one_predict_request_per_image_and_model() {
    let server = MockServer::start(MockConfig::default()).unwrap();
    let jobs = jobs_from_records(
        records(5),
        &models(&["re_logo", "re_condition_r1r6_global", "caption"]),
        true,
    );
    assert_eq!(jobs.len(), 15);
    let (summary, _) = run_each_once(&server, jobs, 200.0);
    assert_eq!(summary.report.succeeded, 15);
    assert!(server
        .arrivals()
        .iter()
        .all(|a| a.path == "/vision/v2/predict"));
}

#[test]
fn a_rate_limited_gateway_costs_at_most_one_429_and_loses_nothing() {
    // Pacing exactly at the gateway's limit: even spacing fills each
    // one-second window without overflowing it.
    let mut mock_config = limited(10, HeaderStyle::KongLegacy);
    mock_config.latency = Duration::from_millis(300);
    let server = MockServer::start(mock_config).unwrap();
    let (summary, _) = run_each_once(&server, logo_jobs(30), 10.0);
    assert_eq!(summary.report.succeeded, 30);
    assert!(
        summary.report.rate_limited <= 1,
        "{} 429s",
        summary.report.rate_limited
    );
    assert_eq!(server.counters().rate_limited, summary.report.rate_limited);
}

#[test]
fn a_rate_above_the_gateways_limit_learns_its_window_from_the_headers() {
    // Pacing at twice the gateway's limit: the window headers of the first
    // replies (or the first 429) switch the limiter to 5 per window.
    let server = MockServer::start(limited(5, HeaderStyle::Kong2)).unwrap();
    let (summary, outcomes) = run_each_once(&server, logo_jobs(15), 10.0);
    assert_eq!(summary.report.succeeded, 15);
    let limited = summary.report.rate_limited;
    assert!(limited <= 5, "{limited} 429s for 15 requests");
    let retried: u32 = outcomes.iter().map(|o| o.rate_limited).sum();
    assert_eq!(u64::from(retried), limited);
}

#[test]
fn without_headers_429s_pause_the_pool_and_nothing_is_lost() {
    // No rate-limit headers at all: each 429 widens the pacing and pauses
    // every worker, longer with each one in a row.
    let server = MockServer::start(limited(5, HeaderStyle::None)).unwrap();
    let (summary, _) = run_each_once(&server, logo_jobs(15), 10.0);
    assert_eq!(summary.report.succeeded, 15);
    let limited = summary.report.rate_limited;
    assert!(
        (1..=15).contains(&limited),
        "{limited} 429s for 15 requests"
    );
}

#[test]
fn a_refused_key_aborts_the_run() {
    let mut mock_config = MockConfig::default();
    mock_config.valid_keys = Some(vec!["right".into()]);
    let server = MockServer::start(mock_config).unwrap();
    let (summary, outcomes) = run_jobs(client_for(&server, "wrong"), logo_jobs(20), 5.0);
    assert_eq!(
        summary.ending,
        Ending::Aborted {
            reason: AbortReason::Job
        }
    );
    // The refused jobs were not processed: none has an outcome, so a resumed
    // run with the right key sends every one.
    assert!(outcomes.is_empty(), "{outcomes:?}");
    assert_eq!(summary.unfinished, 20);
    assert!(
        server.counters().requests <= 2,
        "{} requests went out after the 401",
        server.counters().requests
    );
    let reply = client_for(&server, "wrong").predict(
        &ImageSource::Url("https://example.com/1.jpg".into()),
        &models(&["re_logo"]),
    );
    match reply.verdict {
        Verdict::Auth(error) => assert!(!error.contains("wrong"), "{error}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_local_file_arrives_byte_for_byte_as_url_safe_base64() {
    // A gateway that keeps each request's body, and answers like the API.
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let server = {
        let bodies = bodies.clone();
        TinyServer::start(move |request, stream| {
            bodies
                .lock()
                .unwrap()
                .push((request.line.clone(), request.body.clone()));
            let reply = json!({"error": "false", "response": {"solutions": {
                "re_roomtype_global_v2": {"top_prediction": {"label": "kitchen"}},
                "re_logo": {"detections": []}}}});
            answer(stream, 200, "application/json", &reply.to_string())
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kitchen.jpg");
    // Every byte value, in an order that gives base64's `-` and `_` (the
    // URL-safe digits) and a padded end.
    let picture: Vec<u8> = (0..70_001u32)
        .map(|n| (n.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, &picture).unwrap();
    let client = common::client(&server.base_url(), "k", Duration::from_secs(5));
    let reply = client.predict(
        &ImageSource::File(path),
        &models(&["re_roomtype_global_v2", "re_logo"]),
    );
    assert_eq!(reply.http_status, Some(200));
    assert!(
        matches!(reply.verdict, Verdict::Ok(_)),
        "{:?}",
        reply.verdict
    );
    let bodies = bodies.lock().unwrap();
    assert_eq!(bodies.len(), 1);
    let (line, body) = &bodies[0];
    assert!(line.starts_with("POST /vision/v2/multipredict?"), "{line}");
    let form = String::from_utf8(body.clone()).expect("a form is ASCII");
    let field = |name: &str| {
        form.split('&')
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
            .map(percent_decode)
            .unwrap_or_else(|| panic!("no {name} in the form"))
    };
    assert_eq!(field("model_id"), "re_roomtype_global_v2,re_logo");
    let encoded = field("image_base64");
    assert!(encoded.contains('-') && encoded.contains('_') && encoded.ends_with('='));
    let received = base64::engine::general_purpose::URL_SAFE
        .decode(&encoded)
        .expect("URL-safe base64");
    assert_eq!(received.len(), picture.len());
    assert!(
        received == picture,
        "the bytes received differ from the file"
    );
}

#[test]
fn a_local_file_that_cannot_be_read_is_a_permanent_failure() {
    let server = start_mock(MockConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let client = client_for(&server, "k");
    let missing = client.predict(
        &ImageSource::File(dir.path().join("gone.jpg")),
        &models(&["re_logo"]),
    );
    assert!(matches!(missing.verdict, Verdict::Permanent(ref m) if m.starts_with("cannot read")));
    assert_eq!(server.counters().requests, 0);
}

#[test]
fn an_unknown_model_is_a_permanent_failure_with_the_gateways_reason() {
    let server = MockServer::start(MockConfig::default()).unwrap();
    let client = client_for(&server, "k");
    let reply = client.predict(
        &ImageSource::Url("https://x/1.jpg".into()),
        &models(&["re_nonsense"]),
    );
    assert_eq!(reply.http_status, Some(400));
    match reply.verdict {
        Verdict::Permanent(message) => assert!(message.contains("re_nonsense"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_dead_gateway_is_a_transient_failure_without_the_key() {
    let server = MockServer::start(MockConfig::default()).unwrap();
    let client = client_for(&server, "very-secret-key");
    server.stop();
    let reply = client.predict(
        &ImageSource::Url("https://x/1.jpg".into()),
        &models(&["re_logo"]),
    );
    assert_eq!(reply.http_status, None);
    match reply.verdict {
        Verdict::Transient(message) => assert!(!message.contains("very-secret-key"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_hung_request_is_ended_by_the_timeout() {
    // A server that accepts and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let holder = std::thread::spawn(move || {
        let (socket, _) = listener.accept().unwrap();
        std::thread::sleep(Duration::from_secs(3));
        drop(socket);
    });
    let mut config = ClientConfig::default();
    config.base_url = base_url;
    config.timeout = Duration::from_millis(300);
    let client = Client::new(ClientKey::new("k").unwrap(), &config).unwrap();
    let started = std::time::Instant::now();
    let reply = client.predict(
        &ImageSource::Url("https://x/1.jpg".into()),
        &models(&["re_logo"]),
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    match reply.verdict {
        Verdict::Transient(message) => {
            assert!(message.to_lowercase().contains("timeout"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    holder.join().unwrap();
}

//! Fault injection and the concurrency limit of the mock gateway, over real sockets,
//! with a raw client that also sees broken answers (short bodies, closes, silence).

mod common;

use common::raw_http::{Client, Outcome, Reply};
use common::{start_mock as start, STOP_BOUND};
use restb::mock::{Fault, FaultMix, HeaderStyle, MockConfig, MockServer};
use serde_json::Value;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PREDICT: &str = "/vision/v2/predict?client_key=key1&model_id=re_logo&image_url=https%3A%2F%2Fexample.com%2F1.jpg";

/// A server that injects `fault` into every request, after 100 ms of latency.
fn always(fault: Fault) -> MockServer {
    let mut mock_config = MockConfig::default();
    mock_config.latency = Duration::from_millis(100);
    mock_config.rps = Some(50);
    mock_config.header_style = HeaderStyle::Kong2;
    mock_config.faults = FaultMix::none().with(fault, 1.0);
    mock_config.hang = Duration::from_secs(2);
    start(mock_config)
}

const WAIT: Duration = Duration::from_secs(3);

#[test]
fn answering_faults_send_their_status_type_and_body() {
    let html = "<html>\r\n<head><title>502 Bad Gateway</title></head>";
    let cases = [
        (
            Fault::Status500,
            500,
            "application/json",
            r#"{"error":"true","error_id":"500","message":"internal server error"}"#,
        ),
        (
            Fault::Status503,
            503,
            "application/json",
            r#"{"message":"service unavailable"}"#,
        ),
        (Fault::Html502, 502, "text/html", html),
        (Fault::NotJson, 200, "text/plain", "upstream said: OK"),
        (
            Fault::Error200,
            200,
            "application/json",
            r#"{"error":"true","error_id":"003","message":"image could not be processed"}"#,
        ),
        (
            Fault::Legacy005,
            200,
            "application/json",
            r#"{"error":"true","error_id":"005","message":"API rate limit exceeded"}"#,
        ),
    ];
    for (fault, status, content_type, body) in cases {
        let server = always(fault);
        let mut c = Client::connect(server.addr());
        for _ in 0..2 {
            // Twice on one connection: a faulty answer keeps the connection usable.
            let t = Instant::now();
            let r = c.try_get(PREDICT, WAIT).reply();
            assert!(
                t.elapsed() >= Duration::from_millis(100),
                "{fault:?}: no latency"
            );
            assert_eq!(r.status, status, "{fault:?}");
            assert_eq!(r.header("content-type"), Some(content_type), "{fault:?}");
            assert!(r.text().starts_with(body), "{fault:?}: {}", r.text());
            // Behind the gateway, the window's headers are there; the load balancer's 502 has none.
            assert_eq!(
                r.has_rate_limit_headers(),
                fault != Fault::Html502,
                "{fault:?}"
            );
        }
        let counters = server.counters();
        assert_eq!(
            (counters.requests, counters.faults, counters.ok),
            (2, 2, 0),
            "{fault:?}"
        );
        let arrivals = server.arrivals();
        assert!(arrivals
            .iter()
            .all(|a| a.fault == Some(fault) && a.status == status));
    }
}

#[test]
fn the_html_502_is_an_nginx_page() {
    let server = always(Fault::Html502);
    let r = Client::connect(server.addr())
        .try_get(PREDICT, WAIT)
        .reply();
    assert!(r.text().contains("<center>nginx</center>"), "{}", r.text());
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());
}

#[test]
fn no_rate_limit_headers_is_a_normal_success_without_them() {
    let server = always(Fault::NoRateLimitHeaders);
    let r = Client::connect(server.addr())
        .try_get(PREDICT, WAIT)
        .reply();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["error"], "false");
    assert!(r.json()["response"]["solutions"]["re_logo"].is_object());
    assert!(!r.has_rate_limit_headers(), "{:?}", r.headers);
    let counters = server.counters();
    assert_eq!((counters.ok, counters.faults), (1, 1));
}

#[test]
fn reset_closes_without_a_byte_after_the_latency() {
    let server = always(Fault::Reset);
    let mut c = Client::connect(server.addr());
    let t = Instant::now();
    match c.try_get(PREDICT, WAIT) {
        Outcome::Closed => {}
        other => panic!("expected a close without an answer, got {other:?}"),
    }
    assert!(t.elapsed() >= Duration::from_millis(100));
    let arrivals = server.arrivals();
    assert_eq!(arrivals.len(), 1);
    assert_eq!(
        (arrivals[0].status, arrivals[0].fault),
        (0, Some(Fault::Reset))
    );
    let counters = server.counters();
    assert_eq!(
        (counters.faults, counters.ok, counters.in_flight),
        (1, 0, 0)
    );
}

#[test]
fn truncated_sends_less_than_its_content_length_then_closes() {
    let server = always(Fault::Truncated);
    let mut c = Client::connect(server.addr());
    match c.try_get(PREDICT, WAIT) {
        Outcome::Short { reply, announced } => {
            assert_eq!(reply.status, 200);
            assert_eq!(reply.header("content-type"), Some("application/json"));
            assert_eq!(reply.body.len(), announced / 2);
            assert!(reply.body.len() < announced);
            assert!(reply.text().starts_with('{'), "{}", reply.text());
            assert!(serde_json::from_slice::<Value>(&reply.body).is_err());
        }
        other => panic!("expected a short body, got {other:?}"),
    }
    let arrivals = server.arrivals();
    assert_eq!(
        (arrivals[0].status, arrivals[0].fault),
        (200, Some(Fault::Truncated))
    );
    assert_eq!(server.counters().ok, 0);
}

#[test]
fn hang_answers_nothing_and_stop_still_returns_quickly() {
    let mut mock_config = MockConfig::default();
    mock_config.faults = FaultMix::none().with(Fault::Hang, 1.0);
    mock_config.hang = Duration::from_secs(2);
    let server = start(mock_config);
    let mut c = Client::connect(server.addr());
    match c.try_get(PREDICT, Duration::from_millis(300)) {
        Outcome::TimedOut { got: 0 } => {}
        other => panic!("expected silence, got {other:?}"),
    }
    assert_eq!(server.counters().in_flight, 1);
    let t = Instant::now();
    server.stop();
    assert!(t.elapsed() < STOP_BOUND, "{:?}", t.elapsed());
    match c.read(Duration::from_secs(1)) {
        Outcome::Closed => {}
        other => panic!("expected a close without an answer, got {other:?}"),
    }
}

#[test]
fn hang_closes_unanswered_once_its_time_is_up() {
    let mut mock_config = MockConfig::default();
    mock_config.latency = Duration::from_millis(50);
    mock_config.faults = FaultMix::none().with(Fault::Hang, 1.0);
    mock_config.hang = Duration::from_millis(250);
    let server = start(mock_config);
    let mut c = Client::connect(server.addr());
    let t = Instant::now();
    match c.try_get(PREDICT, WAIT) {
        Outcome::Closed => {}
        other => panic!("expected a close without an answer, got {other:?}"),
    }
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    let arrivals = server.arrivals();
    assert_eq!(
        (arrivals[0].status, arrivals[0].fault),
        (0, Some(Fault::Hang))
    );
    assert!(arrivals[0].answered_after >= Duration::from_millis(300));
}

/// Sleep until just after the next wall-clock second boundary.
fn wait_for_second_boundary() {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let into = Duration::from_nanos(u64::from(now.subsec_nanos()));
    thread::sleep(Duration::from_secs(1) - into + Duration::from_millis(5));
}

#[test]
fn faulty_answers_count_against_the_window() {
    let mut mock_config = MockConfig::default();
    mock_config.rps = Some(1);
    mock_config.faults = FaultMix::none().with(Fault::Status500, 1.0);
    let server = start(mock_config);
    let mut c = Client::connect(server.addr());
    wait_for_second_boundary();
    assert_eq!(c.try_get(PREDICT, WAIT).reply().status, 500);
    let limited = c.try_get(PREDICT, WAIT).reply();
    assert_eq!(limited.status, 429);
    let counters = server.counters();
    assert_eq!((counters.faults, counters.rate_limited), (1, 1));
}

/// What each of `n` requests met, one connection each (resets and truncations end theirs).
fn outcomes(seed: u64, n: usize) -> (Vec<String>, Vec<Option<Fault>>) {
    let mut mock_config = MockConfig::default();
    mock_config.seed = seed;
    mock_config.faults =
        "500=0.15,503=0.1,502=0.1,reset=0.1,truncated=0.1,notjson=0.1,error200=0.1,005=0.05"
            .parse()
            .unwrap();
    let server = start(mock_config);
    let seen = (0..n)
        .map(
            |_| match Client::connect(server.addr()).try_get(PREDICT, WAIT) {
                // A success's `time` is the wall clock: its correlation id stands for it.
                Outcome::Reply(r) if r.text().contains(r#""error":"false""#) => {
                    format!("ok {}", r.json()["correlation_id"])
                }
                Outcome::Reply(r) => format!("{} {}", r.status, r.text()),
                Outcome::Short { reply, .. } => format!("short {}", reply.status),
                Outcome::Closed => "closed".to_string(),
                other => panic!("{other:?}"),
            },
        )
        .collect();
    let faults = server.arrivals().iter().map(|a| a.fault).collect();
    (seen, faults)
}

#[test]
fn a_fault_mix_is_deterministic_under_a_seed() {
    let (a, faults_a) = outcomes(42, 40);
    let (b, faults_b) = outcomes(42, 40);
    assert_eq!(a, b);
    assert_eq!(faults_a, faults_b);
    let distinct: std::collections::HashSet<_> = faults_a.iter().collect();
    assert!(distinct.len() >= 5, "{faults_a:?}");
    assert!(a.iter().any(|o| o == "closed") && a.iter().any(|o| o == "short 200"));
    let (_, faults_c) = outcomes(43, 40);
    assert_ne!(faults_a, faults_c);
}

#[test]
fn max_in_flight_refuses_the_requests_over_it() {
    const CLIENTS: usize = 5;
    // Long enough that the two accepted are still in flight when the other three
    // arrive, on a loaded machine too; a refusal comes back long before it.
    const LATENCY: Duration = Duration::from_secs(2);
    let mut mock_config = MockConfig::default();
    mock_config.latency = LATENCY;
    mock_config.max_in_flight = Some(2);
    let server = start(mock_config);
    let addr = server.addr();
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let handles: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                let mut c = Client::connect(addr);
                barrier.wait();
                let t = Instant::now();
                let r = c.try_get(PREDICT, WAIT).reply();
                (r, t.elapsed())
            })
        })
        .collect();
    let replies: Vec<(Reply, Duration)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let ok = replies.iter().filter(|(r, _)| r.status == 200).count();
    let refused: Vec<_> = replies.iter().filter(|(r, _)| r.status == 429).collect();
    assert_eq!((ok, refused.len()), (2, 3), "{replies:?}");
    for (r, after) in refused {
        assert_eq!(r.text(), r#"{"message":"API rate limit exceeded"}"#);
        assert_eq!(r.header("retry-after"), None);
        assert!(*after < LATENCY, "not immediate: {after:?}");
    }
    let counters = server.counters();
    assert_eq!((counters.ok, counters.rate_limited), (2, 3));
    // The places are free again once answered; another key was never limited.
    let mut c = Client::connect(addr);
    assert_eq!(c.try_get(PREDICT, WAIT).reply().status, 200);
}

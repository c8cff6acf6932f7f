//! The limiter against the mock's gateway kinds, over real sockets: who waits
//! after a 429, and what the gateway sees. Behaviour bounds only (counts,
//! exactly-once, which pauses happened); rates and shares are measured by
//! the scripts, not here.

use restb::api::{Client, ClientConfig, ClientKey, ImageSource};
use restb::input::Record;
use restb::job::{jobs_from_records, CallOutput, Job, RestbWork};
use restb::limiter::Rate;
use restb::mock::{HeaderStyle, LimiterKind, MockConfig, MockServer};
use restb::pool::{Finished, Pool, PoolConfig, PoolSummary};
use restb::stop::Stop;
use std::collections::HashSet;
use std::time::Duration;

fn run(
    server: &MockServer,
    jobs: usize,
    rate: f64,
) -> (PoolSummary, Vec<Job>, Vec<Finished<Job, CallOutput>>) {
    let mut client_config = ClientConfig::default();
    client_config.base_url = server.base_url();
    client_config.timeout = Duration::from_secs(5);
    let client = Client::new(ClientKey::new("pacing-key").unwrap(), &client_config).unwrap();
    let records = (1..=jobs)
        .map(|n| Record {
            id: n.to_string(),
            image: ImageSource::Url(format!("https://example.com/p/{n}.jpg")),
            models: None,
            line: n,
        })
        .collect();
    let jobs = jobs_from_records(records, &["re_logo".to_string()], false);
    let mut config = PoolConfig::default();
    config.rate = Rate::per_second(rate);
    let pool = Pool::new(config, Stop::new());
    let mut outcomes = Vec::new();
    let summary = pool.run(&RestbWork::new(client), jobs.clone(), |finished| {
        outcomes.push(finished);
        Ok(())
    });
    (summary, jobs, outcomes)
}

fn assert_exactly_once_ok(jobs: &[Job], outcomes: &[Finished<Job, CallOutput>]) {
    let id_and_models = |job: &Job| (job.id.clone(), job.models.clone());
    let mut seen = HashSet::new();
    for outcome in outcomes {
        let key = id_and_models(&outcome.job);
        assert!(outcome.success, "{key:?} failed");
        assert!(seen.insert(key.clone()), "{key:?} twice");
    }
    assert_eq!(seen, jobs.iter().map(id_and_models).collect::<HashSet<_>>());
}

/// The mock with `limiter` at `rps`, 20 ms of latency, and `adjust` applied.
fn mock(rps: u32, limiter: LimiterKind, adjust: impl FnOnce(&mut MockConfig)) -> MockServer {
    let mut config = MockConfig::default();
    config.rps = Some(rps);
    config.limiter = limiter;
    config.latency = Duration::from_millis(20);
    adjust(&mut config);
    MockServer::start(config).unwrap()
}

#[test]
fn a_lone_429_from_a_leaky_bucket_pauses_nobody() {
    // nginx limit_req answering 429 + `Retry-After: 1` (+ `Remaining: 0`), and
    // a client told a slightly higher rate than the bucket allows: 429s come,
    // each is a spacing error of one job; the pool never stops for a second.
    let server = mock(20, LimiterKind::Leaky, |config| {
        config.retry_after = Some(1)
    });
    let (summary, jobs, outcomes) = run(&server, 60, 21.0);
    assert_exactly_once_ok(&jobs, &outcomes);
    let limited = server.counters().rate_limited;
    assert!(limited >= 1, "the test needs a 429 to mean anything");
    assert!(
        summary.report.paused < Duration::from_millis(500),
        "{limited} 429s paused every worker for {:?}",
        summary.report.paused
    );
    server.stop();
}

#[test]
fn a_retry_after_longer_than_a_window_pauses_every_worker() {
    // A fixed window of 5 per second without rate-limit headers whose 429
    // says `Retry-After: 2`, and a client told 10 per second: the first
    // window overflows, and everyone waits the two seconds (counted in the
    // report; a lone 429 with `Retry-After: 1` would pause nobody).
    let server = mock(5, LimiterKind::Fixed, |config| {
        config.retry_after = Some(2);
        config.header_style = HeaderStyle::None;
    });
    let (summary, jobs, outcomes) = run(&server, 12, 10.0);
    assert_exactly_once_ok(&jobs, &outcomes);
    assert!(server.counters().rate_limited >= 1);
    let paused = summary.report.paused;
    assert!(
        paused >= Duration::from_millis(1900) && paused < Duration::from_secs(10),
        "paused {paused:?}"
    );
    server.stop();
}

#[test]
fn headers_from_another_layer_give_way_to_even_pacing() {
    // A sliding window of 20 per second that counts rejections, behind
    // headers of an upstream allowing 1000: the window bursts the headers
    // invite draw 429s, after which the limiter paces evenly, and the 429s
    // stop (before: about every other second, for the whole run).
    let server = mock(20, LimiterKind::Sliding, |config| {
        config.headers_rps = Some(1000)
    });
    let (_, jobs, outcomes) = run(&server, 120, 20.0);
    assert_exactly_once_ok(&jobs, &outcomes);
    let arrivals = server.arrivals();
    let second_half = &arrivals[arrivals.len() / 2..];
    let late_429s = second_half.iter().filter(|a| a.status == 429).count();
    assert!(
        late_429s <= 2,
        "{late_429s} 429s in the second half of the run"
    );
    // Evenly paced: starts fall all through each second, not only in a
    // burst at its start (window mode sends a window's 20 within 100 ms).
    let in_second_half_of_a_second = second_half
        .iter()
        .filter(|a| {
            let since = a.at.duration_since(std::time::UNIX_EPOCH).unwrap();
            since.subsec_millis() >= 500
        })
        .count();
    assert!(
        in_second_half_of_a_second * 4 >= second_half.len(),
        "{in_second_half_of_a_second} of {} starts late in their second",
        second_half.len()
    );
    server.stop();
}

#[test]
fn an_allotment_below_the_rate_given_draws_a_few_429s_not_a_third() {
    // A leaky bucket of 10 per second (nginx's 429 + `Retry-After: 1`) and
    // a client told 20: the cut goes to just under what passed, and each
    // probe back up returns at its first 429. Once the first cut is behind
    // it, only those few 429s come (before: a third of all requests, in
    // bursts at every probe, which waited for the 429s to persist).
    let server = mock(10, LimiterKind::Leaky, |config| {
        config.retry_after = Some(1)
    });
    let (_, jobs, outcomes) = run(&server, 150, 20.0);
    assert_exactly_once_ok(&jobs, &outcomes);
    let arrivals = server.arrivals();
    let second_half = &arrivals[arrivals.len() / 2..];
    let late_429s = second_half.iter().filter(|a| a.status == 429).count();
    assert!(
        late_429s <= 8,
        "{late_429s} 429s among the last {} requests",
        second_half.len()
    );
    server.stop();
}

//! The engine against the mock's injected faults, over real sockets:
//! transient faults are retried to success, permanent ones are recorded once
//! with a reason, and whatever the mix, every job ends with exactly one outcome.

mod common;

use common::assert_jobs_once;
use proptest::prelude::*;
use restb::api::ImageSource;
use restb::input::Record;
use restb::job::{jobs_from_records, CallOutput, Job, RestbWork};
use restb::limiter::Rate;
use restb::mock::{Fault, FaultMix, MockConfig, MockServer};
use restb::pool::{Finished, Pool, PoolConfig, PoolSummary, Threads};
use restb::retry::RetryPolicy;
use restb::stop::Stop;
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

fn jobs(count: usize) -> Vec<Job> {
    let records = (1..=count)
        .map(|n| Record {
            id: n.to_string(),
            image: ImageSource::Url(format!("https://example.com/{n}.jpg")),
            models: None,
            line: n,
        })
        .collect();
    jobs_from_records(records, &["re_logo".to_string()], true)
}

fn patient_pool(max_attempts: u32) -> PoolConfig {
    let mut retry = RetryPolicy::default();
    retry.max_attempts = NonZeroU32::new(max_attempts).unwrap();
    retry.max_rate_limited = 30;
    retry.base_delay = Duration::from_millis(2);
    retry.max_delay = Duration::from_millis(20);
    let mut config = PoolConfig::default();
    config.threads = Threads::Fixed(NonZeroUsize::new(6).unwrap());
    config.rate = Rate::per_second(2000.0);
    config.retry = retry;
    config
}

fn run(
    server: &MockServer,
    jobs: Vec<Job>,
    config: PoolConfig,
) -> (PoolSummary, Vec<Finished<Job, CallOutput>>) {
    let client = common::client(&server.base_url(), "k", Duration::from_millis(300));
    let pool = Pool::new(config, Stop::new());
    let mut outcomes = Vec::new();
    let summary = pool.run(&RestbWork::new(client), jobs, |finished| {
        outcomes.push(finished);
        Ok(())
    });
    (summary, outcomes)
}

fn faulty(mix: FaultMix, seed: u64) -> MockServer {
    let mut mock_config = MockConfig::default();
    mock_config.faults = mix;
    mock_config.seed = seed;
    mock_config.hang = Duration::from_secs(2);
    MockServer::start(mock_config).unwrap()
}

#[test]
fn each_transient_fault_is_retried_to_success() {
    let transient = [
        Fault::Status500,
        Fault::Status503,
        Fault::Html502,
        Fault::Reset,
        Fault::Truncated,
        Fault::NotJson,
        Fault::Hang,
        Fault::Legacy005,
        Fault::NoRateLimitHeaders,
    ];
    for fault in transient {
        let server = faulty(FaultMix::none().with(fault, 0.4), 7);
        let (summary, outcomes) = run(&server, jobs(20), patient_pool(12));
        assert_jobs_once(&jobs(20), &outcomes);
        assert!(
            outcomes.iter().all(|o| o.success),
            "{fault:?}: {:?}",
            outcomes.iter().find(|o| !o.success)
        );
        // A hung request is counted when the mock closes it, after the run.
        if fault != Fault::Hang {
            assert!(server.counters().faults > 0, "{fault:?} was never injected");
        }
        let report = summary.report;
        match fault {
            Fault::NoRateLimitHeaders => assert_eq!(report.transient + report.rate_limited, 0),
            Fault::Legacy005 => assert!(report.rate_limited > 0, "{fault:?}"),
            _ => assert!(report.transient > 0 && report.retried > 0, "{fault:?}"),
        }
    }
}

#[test]
fn an_error_with_http_200_is_recorded_once_with_its_reason() {
    let server = faulty(FaultMix::none().with(Fault::Error200, 1.0), 1);
    let (summary, outcomes) = run(&server, jobs(10), patient_pool(5));
    assert_jobs_once(&jobs(10), &outcomes);
    for outcome in &outcomes {
        assert!(!outcome.success);
        assert_eq!(outcome.attempts, 1);
        assert_eq!(outcome.output.http_status, Some(200));
        assert_eq!(
            outcome.output.error.as_deref(),
            Some("image could not be processed")
        );
    }
    assert_eq!(summary.report.failed, 10);
    assert_eq!(server.counters().requests, 10);
}

#[test]
fn transient_faults_give_up_after_max_attempts() {
    let server = faulty(FaultMix::none().with(Fault::Status503, 1.0), 1);
    let (summary, outcomes) = run(&server, jobs(4), patient_pool(3));
    assert_jobs_once(&jobs(4), &outcomes);
    assert!(outcomes.iter().all(|o| !o.success && o.attempts == 3));
    assert_eq!(outcomes[0].output.http_status, Some(503));
    assert_eq!(server.counters().requests, 12);
    assert_eq!(summary.report.retried, 8);
}

#[test]
fn concurrency_mode_respects_an_in_flight_limit() {
    let mut mock_config = MockConfig::default();
    mock_config.max_in_flight = Some(3);
    mock_config.latency = Duration::from_millis(50);
    let server = MockServer::start(mock_config).unwrap();
    let mut config = patient_pool(3);
    config.threads = Threads::Fixed(NonZeroUsize::new(3).unwrap());
    config.rate = None;
    let (summary, outcomes) = run(&server, jobs(30), config);
    assert_jobs_once(&jobs(30), &outcomes);
    assert_eq!(summary.report.rate_limited, 0);
    assert_eq!(server.counters().max_in_flight, 3);
}

fn mix() -> impl Strategy<Value = FaultMix> {
    prop::collection::vec((0usize..Fault::ALL.len(), 0.0f64..0.12), 0..6).prop_map(|items| {
        let mut mix = FaultMix::none();
        for (kind, probability) in items {
            if let Ok(more) = mix.try_with(Fault::ALL[kind], probability) {
                mix = more;
            }
        }
        mix
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Whatever the fault mix, every job ends with exactly one outcome, and
    /// a job fails only for a permanent fault or after its retries ran out.
    #[test]
    fn random_fault_mixes_keep_exactly_once(mix in mix(), seed in any::<u64>(), count in 1usize..40) {
        let server = faulty(mix, seed);
        let (summary, outcomes) = run(&server, jobs(count), patient_pool(4));
        assert_jobs_once(&jobs(count), &outcomes);
        prop_assert_eq!(summary.unfinished, 0);
        for outcome in outcomes.iter().filter(|o| !o.success) {
            let error = outcome.output.error.clone().unwrap_or_default();
            prop_assert!(
                error == "image could not be processed" || outcome.attempts >= 4,
                "{} failed after {} attempts: {}", outcome.job.id, outcome.attempts, error
            );
        }
    }
}

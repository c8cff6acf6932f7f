//! The engine with a scripted work (no HTTP): every job ends with exactly one
//! outcome whatever mix of successes, failures, retries, rate limits and
//! panics it meets.

use parking_lot::Mutex;
use restb::limiter::Rate;
use restb::pool::{AbortReason, Attempt, Ending, Finished, Pool, PoolConfig, Threads, Work};
use restb::retry::RetryPolicy;
use restb::stop::Stop;
use std::collections::HashMap;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Job `n` follows a script of replies, one per try; the last repeats.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Reply {
    Ok,
    Fail,
    Busy,
    Slow(Duration),
    Limited,
    Panic,
    Refused,
}

struct Scripted {
    scripts: HashMap<usize, Vec<Reply>>,
    tries: Mutex<HashMap<usize, usize>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl Scripted {
    fn new(scripts: HashMap<usize, Vec<Reply>>) -> Scripted {
        Scripted {
            scripts,
            tries: Mutex::new(HashMap::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        }
    }
}

impl Work for Scripted {
    type Job = usize;
    type Output = String;

    fn attempt(&self, job: &usize) -> Attempt<String> {
        let try_index = {
            let mut tries = self.tries.lock();
            let entry = tries.entry(*job).or_insert(0);
            *entry += 1;
            *entry - 1
        };
        let script = self
            .scripts
            .get(job)
            .map_or(&[Reply::Ok][..], Vec::as_slice);
        let reply = script[try_index.min(script.len() - 1)];
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let result = match reply {
            Reply::Ok => Attempt::Success(format!("ok {job}")),
            Reply::Slow(d) => {
                std::thread::sleep(d);
                Attempt::Success(format!("ok {job}"))
            }
            Reply::Fail => Attempt::Failure(format!("bad {job}")),
            Reply::Busy => Attempt::Transient(format!("busy {job}")),
            Reply::Limited => Attempt::RateLimited {
                retry_after: Some(Duration::from_millis(1)),
                output: format!("limited {job}"),
            },
            Reply::Refused => Attempt::Abort(format!("refused {job}")),
            Reply::Panic => {
                self.in_flight.fetch_sub(1, Ordering::SeqCst);
                panic!("job {job} blew up")
            }
        };
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    }

    fn panicked(&self, job: &usize, message: &str) -> String {
        format!("panic {job}: {message}")
    }
}

fn fast_retries(max_attempts: u32) -> RetryPolicy {
    let mut policy = RetryPolicy::default();
    policy.max_attempts = NonZeroU32::new(max_attempts).unwrap();
    policy.max_rate_limited = 5;
    policy.base_delay = Duration::from_millis(2);
    policy.max_delay = Duration::from_millis(10);
    policy
}

fn unpaced(threads: usize, retry: RetryPolicy) -> PoolConfig {
    let mut config = PoolConfig::default();
    config.threads = Threads::Fixed(NonZeroUsize::new(threads).unwrap());
    config.rate = None;
    config.retry = retry;
    config
}

fn run(
    config: PoolConfig,
    work: &Scripted,
    jobs: usize,
    stop: Stop,
) -> (restb::pool::PoolSummary, Vec<Finished<usize, String>>) {
    let pool = Pool::new(config, stop);
    let mut outcomes = Vec::new();
    let summary = pool.run(work, 0..jobs, |finished| {
        outcomes.push(finished);
        Ok(())
    });
    (summary, outcomes)
}

fn by_job(outcomes: &[Finished<usize, String>]) -> HashMap<usize, &Finished<usize, String>> {
    let mut map = HashMap::new();
    for outcome in outcomes {
        assert!(
            map.insert(outcome.job, outcome).is_none(),
            "job {} finished twice",
            outcome.job
        );
    }
    map
}

#[test]
fn every_job_gets_exactly_one_outcome_through_a_mix_of_replies() {
    let mut scripts = HashMap::new();
    for job in 0..300 {
        let script = match job % 7 {
            0 => vec![Reply::Busy, Reply::Busy, Reply::Ok],
            1 => vec![Reply::Fail],
            2 => vec![Reply::Limited, Reply::Ok],
            3 => vec![Reply::Panic],
            4 => vec![Reply::Busy],
            5 => vec![Reply::Limited, Reply::Busy, Reply::Ok],
            _ => vec![Reply::Ok],
        };
        scripts.insert(job, script);
    }
    let work = Scripted::new(scripts);
    let (summary, outcomes) = run(unpaced(8, fast_retries(3)), &work, 300, Stop::new());
    let outcomes = by_job(&outcomes);
    assert_eq!(outcomes.len(), 300);
    assert_eq!(summary.finished, 300);
    assert_eq!(summary.unfinished, 0);
    assert_eq!(summary.ending, Ending::Completed);
    for (job, outcome) in &outcomes {
        match job % 7 {
            0 => assert!(outcome.success && outcome.attempts == 3, "{outcome:?}"),
            1 => assert!(
                !outcome.success && outcome.attempts == 1 && outcome.output == format!("bad {job}")
            ),
            2 => assert!(outcome.success && outcome.attempts == 2 && outcome.rate_limited == 1),
            3 => assert!(
                !outcome.success
                    && outcome
                        .output
                        .starts_with(&format!("panic {job}: job {job} blew up"))
            ),
            4 => assert!(
                !outcome.success
                    && outcome.attempts == 3
                    && outcome.output == format!("busy {job}")
            ),
            5 => assert!(outcome.success && outcome.attempts == 3 && outcome.rate_limited == 1),
            _ => assert!(outcome.success && outcome.attempts == 1),
        }
    }
    let report = summary.report;
    let failures = outcomes.values().filter(|o| !o.success).count() as u64;
    assert_eq!(report.failed, failures);
    assert_eq!(report.succeeded, 300 - failures);
}

#[test]
fn endless_rate_limits_end_in_a_failure_not_a_loop() {
    let scripts = HashMap::from([(0, vec![Reply::Limited])]);
    let work = Scripted::new(scripts);
    let (summary, outcomes) = run(unpaced(2, fast_retries(3)), &work, 3, Stop::new());
    let outcomes = by_job(&outcomes);
    let stuck = outcomes[&0];
    assert!(!stuck.success);
    assert_eq!(
        stuck.rate_limited, 6,
        "max_rate_limited is 5: the 6th 429 ends it"
    );
    assert_eq!(summary.report.rate_limited, 6);
    assert!(outcomes[&1].success && outcomes[&2].success);
}

#[test]
fn a_refused_key_stops_the_run_and_leaves_the_rest_unfinished() {
    let scripts = HashMap::from([(0, vec![Reply::Refused])]);
    let work = Scripted::new(scripts);
    let (summary, outcomes) = run(unpaced(1, fast_retries(3)), &work, 50, Stop::new());
    assert_eq!(
        summary.ending,
        Ending::Aborted {
            reason: AbortReason::Job
        }
    );
    // The refused job was not processed either: no outcome, so a resumed
    // run sends it with the rest.
    assert_eq!(outcomes.len(), 0);
    assert_eq!(summary.unfinished, 50);
}

/// Gives `stop` when the `at`th try starts; each try takes 50 ms.
struct StopAt {
    stop: Stop,
    at: usize,
    started: AtomicUsize,
}

impl Work for StopAt {
    type Job = usize;
    type Output = ();

    fn attempt(&self, _job: &usize) -> Attempt<()> {
        if self.started.fetch_add(1, Ordering::SeqCst) + 1 == self.at {
            self.stop.stop();
        }
        std::thread::sleep(Duration::from_millis(50));
        Attempt::Success(())
    }

    fn panicked(&self, _job: &usize, _message: &str) {}
}

#[test]
fn a_stop_lets_requests_in_flight_finish_and_runs_nothing_new() {
    // The stop comes from inside the 6th try, so no clock decides what is
    // in flight then: with 4 threads, at most 3 others, and at most one
    // more per thread that had already taken its job past the stop check.
    let stop = Stop::new();
    let work = StopAt {
        stop: stop.clone(),
        at: 6,
        started: AtomicUsize::new(0),
    };
    let pool = Pool::new(unpaced(4, fast_retries(3)), stop);
    let mut outcomes = Vec::new();
    let summary = pool.run(&work, 0..40, |finished| {
        outcomes.push(finished);
        Ok(())
    });
    let started = work.started.load(Ordering::SeqCst);
    assert_eq!(summary.ending, Ending::Stopped);
    assert!(
        outcomes.iter().all(|o| o.success),
        "interrupted requests still finish"
    );
    assert_eq!(outcomes.len(), started, "every try started has its outcome");
    assert!((6..=9).contains(&started), "{started} tries started");
    assert_eq!(summary.unfinished, 40 - started as u64);
    let mut jobs: Vec<usize> = outcomes.iter().map(|o| o.job).collect();
    jobs.sort_unstable();
    jobs.dedup();
    assert_eq!(jobs.len(), started, "no job twice");
}

/// Records the instant each try starts, and succeeds at once.
#[derive(Default)]
struct Starts(Mutex<Vec<Instant>>);

impl Work for Starts {
    type Job = usize;
    type Output = ();

    fn attempt(&self, _job: &usize) -> Attempt<()> {
        self.0.lock().push(Instant::now());
        Attempt::Success(())
    }

    fn panicked(&self, _job: &usize, _message: &str) {}
}

#[test]
fn pacing_spaces_request_starts_whatever_the_thread_count() {
    // 20/s: one start every 50 ms, from one thread or from 32 racing ones.
    // Each gap is measured where the work starts, a few microseconds after
    // the limiter let it go; a descheduled thread can shorten one gap by its
    // delay, hence the tolerance of half an interval. A limiter that lets
    // starts bunch gives gaps of microseconds; one that paces nothing gives
    // 21 starts at once.
    let interval = Duration::from_millis(50);
    for threads in [1, 4, 32] {
        let work = Starts::default();
        let mut config = PoolConfig::default();
        config.threads = Threads::Fixed(NonZeroUsize::new(threads).unwrap());
        config.rate = Rate::per_second(20.0);
        let pool = Pool::new(config, Stop::new());
        let summary = pool.run(&work, 0..21, |_| Ok(()));
        assert_eq!(summary.finished, 21, "{threads} threads");
        let mut starts = work.0.into_inner();
        starts.sort();
        let gaps: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
        let shortest = *gaps.iter().min().unwrap();
        assert!(
            shortest >= interval / 2,
            "{threads} threads: a gap of {shortest:?}; gaps {gaps:?}"
        );
        let mut sorted = gaps.clone();
        sorted.sort();
        let median = sorted[sorted.len() / 2];
        assert!(
            median >= interval.mul_f64(0.98),
            "{threads} threads: median gap {median:?}"
        );
        // No gap is owed to anything but the schedule: 20 gaps of one
        // interval each (the first start waits for nothing).
        assert!(
            starts[20] - starts[0] >= interval * 20 - interval / 2,
            "{threads} threads: {:?}",
            starts[20] - starts[0]
        );
    }
}

#[test]
fn auto_threads_grow_until_the_rate_is_the_bottleneck() {
    // 40/s with 500 ms latency needs about 20 in flight; a fixed first guess
    // of 41 workers for one second would hide the growth, so start from a
    // rate whose first guess is small: 10/s, 1.5 s latency -> 15 needed
    // (20 with the sizing's headroom), capped at 16.
    let scripts: HashMap<usize, Vec<Reply>> = (0..30)
        .map(|job| (job, vec![Reply::Slow(Duration::from_millis(1500))]))
        .collect();
    let work = Scripted::new(scripts);
    let mut config = PoolConfig::default();
    config.threads = Threads::Auto {
        max: NonZeroUsize::new(16).unwrap(),
    };
    config.rate = Rate::per_second(10.0);
    let (summary, outcomes) = run(config, &work, 30, Stop::new());
    assert_eq!(outcomes.len(), 30);
    assert!(
        (12..=16).contains(&summary.peak_threads),
        "peak {} threads: grown past the first guess of 11, within the cap",
        summary.peak_threads
    );
    let in_flight = work.max_in_flight.load(Ordering::SeqCst);
    assert!((14..=16).contains(&in_flight), "{in_flight} in flight");
}

#[test]
fn an_empty_batch_finishes_at_once() {
    let work = Scripted::new(HashMap::new());
    let (summary, outcomes) = run(unpaced(4, fast_retries(3)), &work, 0, Stop::new());
    assert!(outcomes.is_empty());
    assert_eq!(summary.unfinished, 0);
    assert_eq!(summary.ending, Ending::Completed);
}

#[test]
fn a_sink_error_stops_the_run() {
    let work = Scripted::new(HashMap::new());
    let pool = Pool::new(unpaced(2, fast_retries(3)), Stop::new());
    let mut calls = 0;
    let summary = pool.run(&work, 0..100, |_finished| {
        calls += 1;
        if calls == 3 {
            Err(std::io::Error::other("disk full"))
        } else {
            Ok(())
        }
    });
    assert_eq!(
        summary.ending,
        Ending::SinkFailed {
            kind: std::io::ErrorKind::Other,
            message: "disk full".into()
        }
    );
    assert!(summary.unfinished > 0);
}

/// What the pool must make of a job's script under `policy`: (success, attempts, 429s).
fn expected(script: &[Reply], policy: &RetryPolicy) -> (bool, u32, u32) {
    let (mut attempts, mut transient, mut limited) = (0u32, 0u32, 0u32);
    loop {
        let reply = script[(attempts as usize).min(script.len() - 1)];
        attempts += 1;
        match reply {
            Reply::Ok | Reply::Slow(_) => return (true, attempts, limited),
            Reply::Fail | Reply::Panic | Reply::Refused => return (false, attempts, limited),
            Reply::Busy => {
                transient += 1;
                if transient >= policy.max_attempts.get() {
                    return (false, attempts, limited);
                }
            }
            Reply::Limited => {
                limited += 1;
                if limited > policy.max_rate_limited {
                    return (false, attempts, limited);
                }
            }
        }
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn reply() -> impl Strategy<Value = Reply> {
        prop_oneof![
            4 => Just(Reply::Ok),
            1 => Just(Reply::Fail),
            2 => Just(Reply::Busy),
            2 => Just(Reply::Limited),
            1 => Just(Reply::Panic),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

        /// For any mix of replies and any thread count, every job ends with
        /// exactly one outcome, and it is the one its script calls for.
        #[test]
        fn every_job_has_exactly_one_outcome(
            scripts in prop::collection::vec(prop::collection::vec(reply(), 1..6), 1..60),
            threads in 1usize..12,
            max_attempts in 1u32..4,
        ) {
            let mut policy = RetryPolicy::default();
            policy.max_attempts = NonZeroU32::new(max_attempts).unwrap();
            policy.max_rate_limited = 3;
            policy.base_delay = Duration::from_millis(1);
            policy.max_delay = Duration::from_millis(4);
            let jobs = scripts.len();
            let work = Scripted::new(scripts.iter().cloned().enumerate().collect());
            let (summary, outcomes) = run(unpaced(threads, policy.clone()), &work, jobs, Stop::new());
            let outcomes = by_job(&outcomes);
            prop_assert_eq!(outcomes.len(), jobs);
            prop_assert_eq!(summary.unfinished, 0);
            for (job, script) in scripts.iter().enumerate() {
                let outcome = outcomes[&job];
                let (success, attempts, limited) = expected(script, &policy);
                prop_assert_eq!(outcome.success, success, "job {} {:?}", job, script);
                prop_assert_eq!(outcome.attempts, attempts, "job {} {:?}", job, script);
                prop_assert_eq!(outcome.rate_limited, limited, "job {} {:?}", job, script);
            }
        }
    }
}

/// Regression: an abort stopped the `Stop` the caller passed in, the one the
/// signal handler and an embedder hold, so the next run with it stopped at
/// once (`restb bench` stopped every sweep after an aborted one).
#[test]
fn abort_does_not_stop_the_callers_stop() {
    let stop = Stop::new();
    let refusing = Scripted::new(HashMap::from([(0, vec![Reply::Refused])]));
    let (summary, _) = run(unpaced(1, fast_retries(3)), &refusing, 5, stop.clone());
    assert!(matches!(summary.ending, Ending::Aborted { .. }));
    assert!(!stop.is_stopped(), "the caller's stop was given");
    let work = Scripted::new(HashMap::new());
    let (summary, outcomes) = run(unpaced(2, fast_retries(3)), &work, 5, stop.clone());
    assert_eq!(summary.ending, Ending::Completed);
    assert_eq!(outcomes.len(), 5);
}

/// A failed sink stops its own run only, not the caller's stop either.
#[test]
fn sink_failure_does_not_stop_the_callers_stop() {
    let stop = Stop::new();
    let work = Scripted::new(HashMap::new());
    let summary = Pool::new(unpaced(1, fast_retries(3)), stop.clone())
        .run(&work, 0..5, |_| Err(std::io::Error::other("disk full")));
    assert!(matches!(summary.ending, Ending::SinkFailed { .. }));
    assert!(!stop.is_stopped(), "the caller's stop was given");
}

/// Runs `body` on its own thread: what it returned or its panic (`Err`)
/// within `limit`, or `None` if it hung.
fn ends_within<T: Send + 'static>(
    limit: Duration,
    body: impl FnOnce() -> T + Send + 'static,
) -> Option<std::thread::Result<T>> {
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = done_tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)));
    });
    done_rx.recv_timeout(limit).ok()
}

/// Regression: a job iterator that panicked after the first backlog left
/// the workers without their shutdown pills, and the run hung for ever.
/// The panic now ends the run and goes on to the caller.
#[test]
fn a_job_iterator_that_panics_ends_the_run_with_its_panic() {
    let ended = ends_within(Duration::from_secs(20), || {
        let work = Scripted::new(HashMap::new());
        let jobs = (0..5000usize).inspect(|n| assert!(*n != 1500, "the iterator broke"));
        let pool = Pool::new(unpaced(4, fast_retries(1)), Stop::new());
        pool.run(&work, jobs, |_| Ok(()));
    });
    assert!(
        matches!(ended, Some(Err(_))),
        "hung, or the panic was swallowed"
    );
}

/// A budget counter that panics at its `n`th start.
#[derive(Debug)]
struct PanickingBudget(AtomicUsize);

impl restb::pool::BudgetCounter for PanickingBudget {
    fn take(&self) -> Result<bool, String> {
        assert!(
            self.0.fetch_add(1, Ordering::SeqCst) != 3,
            "the counter broke"
        );
        Ok(true)
    }
}

/// Regression: a panic in the worker loop outside a job's own code (here
/// the caller's budget counter) killed the worker with its job open, and
/// the supervisor waited for it for ever. The run now stops, aborted.
#[test]
fn a_panic_outside_the_jobs_code_aborts_the_run_instead_of_hanging() {
    let ended = ends_within(Duration::from_secs(20), || {
        let work = Scripted::new(HashMap::new());
        let mut config = unpaced(2, fast_retries(1));
        config.shared_budget = Some(restb::pool::SharedBudget::new(std::sync::Arc::new(
            PanickingBudget(AtomicUsize::new(0)),
        )));
        run(config, &work, 50, Stop::new()).0
    });
    let summary = ended.expect("hung").expect("the panic reached the caller");
    assert!(
        matches!(summary.ending, Ending::Aborted { reason: AbortReason::Internal(ref m) } if m.contains("the counter broke")),
        "{:?}",
        summary.ending
    );
    assert_eq!(summary.finished + summary.unfinished, 50);
}

/// A work holding a secret that its jobs' panics quote, and a budget
/// counter that quotes it when it breaks at its fourth start.
struct Leaky;

const SECRET: &str = "s3cret-client-key";

impl Work for Leaky {
    type Job = usize;
    type Output = String;

    fn attempt(&self, job: &usize) -> Attempt<String> {
        panic!("job {job} broke at https://api/?client_key={SECRET}")
    }

    fn panicked(&self, _job: &usize, message: &str) -> String {
        message.to_string()
    }

    fn redact<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        text.replace(SECRET, "***").into()
    }
}

#[derive(Debug)]
struct LeakyBudget(AtomicUsize);

impl restb::pool::BudgetCounter for LeakyBudget {
    fn take(&self) -> Result<bool, String> {
        assert!(
            self.0.fetch_add(1, Ordering::SeqCst) != 3,
            "the counter broke holding {SECRET}"
        );
        Ok(true)
    }
}

/// A panic's message reaches the outcome, the log and the run's ending
/// through the work's `redact`: the work knows its secrets, the pool not.
#[test]
fn a_panics_message_leaves_the_pool_redacted_by_the_work() {
    let ended = ends_within(Duration::from_secs(20), || {
        let mut config = unpaced(1, fast_retries(1));
        config.shared_budget = Some(restb::pool::SharedBudget::new(std::sync::Arc::new(
            LeakyBudget(AtomicUsize::new(0)),
        )));
        let mut outputs = Vec::new();
        let summary = Pool::new(config, Stop::new()).run(&Leaky, 0..10, |finished| {
            outputs.push(finished.output);
            Ok(())
        });
        (summary, outputs)
    });
    let (summary, outputs) = ended.expect("hung").expect("the run panicked");
    assert_eq!(outputs.len(), 3, "{outputs:?}");
    for output in &outputs {
        assert!(
            output.contains("client_key=***") && !output.contains(SECRET),
            "{output}"
        );
    }
    match summary.ending {
        Ending::Aborted {
            reason: AbortReason::Internal(message),
        } => assert!(
            message.contains("the counter broke holding ***") && !message.contains(SECRET),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
}

/// Regression: a panic of the caller's sink, or of a job iterator read on a
/// thread of its own (`run_stream`), reached the run's ending and the log
/// unredacted; a job they quote may hold the work's secret.
#[test]
fn a_sink_or_stream_panics_message_is_redacted_by_the_work() {
    let ended = ends_within(Duration::from_secs(20), || {
        let pool = Pool::new(unpaced(1, fast_retries(1)), Stop::new());
        let sink_broke = pool.run(&Leaky, 0..3, |_| panic!("the sink broke on {SECRET}"));
        let jobs = (0..3usize).inspect(|_| panic!("the source broke on {SECRET}"));
        let stream_broke = pool.run_stream(&Leaky, jobs, |_| Ok(()));
        (sink_broke.ending, stream_broke.ending)
    });
    let (sink_ending, stream_ending) = ended.expect("hung").expect("the run panicked");
    let Ending::SinkFailed { message, .. } = sink_ending else {
        panic!("{sink_ending:?}");
    };
    assert!(
        message.contains("the sink broke on ***") && !message.contains(SECRET),
        "{message}"
    );
    let Ending::Aborted {
        reason: AbortReason::Internal(why),
    } = stream_ending
    else {
        panic!("{stream_ending:?}");
    };
    assert!(
        why.contains("the source broke on ***") && !why.contains(SECRET),
        "{why}"
    );
}

/// Regression: a stop with an endless job iterator counted the jobs never
/// fed by draining the iterator, which never ended (a channel's iterator,
/// whose producer waits, never would either).
#[test]
fn a_stop_with_an_endless_job_iterator_ends_the_run() {
    let ended = ends_within(Duration::from_secs(20), || {
        let work = Scripted::new(HashMap::new());
        let mut config = unpaced(2, fast_retries(1));
        config.rate = Rate::per_second(100.0);
        let stop = Stop::new();
        let stopper = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            stopper.stop();
        });
        Pool::new(config, stop).run(&work, 0usize.., |_| Ok(()))
    });
    let summary = ended.expect("hung").expect("the run panicked");
    assert_eq!(summary.ending, Ending::Stopped);
    assert!(summary.finished > 0);
}

/// Regression: a pool run twice reported the first run's requests in the
/// second's figures (20 requests for a run of 10).
#[test]
fn a_pool_run_twice_reports_each_run_alone() {
    let work = Scripted::new(HashMap::new());
    let pool = Pool::new(unpaced(2, fast_retries(1)), Stop::new());
    for _ in 0..2 {
        let summary = pool.run(&work, 0..10usize, |_| Ok(()));
        assert_eq!(summary.report.succeeded, 10);
        assert_eq!(summary.finished, 10);
    }
}

/// Regression: `first_try_alone` of `Duration::MAX` overflowed into no hold
/// at all; the others now wait for the first try. (A zero `idle_exit`, which
/// spun the idle workers of a fixed pool, is now at least 10 ms; the run
/// below only shows it still completes: CPU time is not asserted here.)
#[test]
fn an_endless_first_try_hold_holds_the_others() {
    let slow = vec![Reply::Slow(Duration::from_millis(200))];
    let work = Scripted::new((0..4).map(|job| (job, slow.clone())).collect());
    let mut config = unpaced(4, fast_retries(1));
    config.first_try_alone = Some(Duration::MAX);
    config.idle_exit = Duration::ZERO;
    let started = Instant::now();
    let (summary, _) = run(config, &work, 4, Stop::new());
    assert_eq!(summary.finished, 4);
    // The first try alone, then the other three together.
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "the others did not wait for the first try: {:?}",
        started.elapsed()
    );
    assert_eq!(work.max_in_flight.load(Ordering::SeqCst), 3);
}

/// Regression: a sink that accepted jobs and then failed had the jobs it
/// accepted in that batch counted unfinished (a resume would redo them);
/// and a sink that panicked killed its thread while the workers went on
/// finishing every job into nowhere, then `run` panicked.
#[test]
fn what_a_failing_sink_accepted_counts_and_its_panic_is_an_error() {
    for panics in [false, true] {
        let work = Scripted::new(HashMap::new());
        let pool = Pool::new(unpaced(2, fast_retries(1)), Stop::new());
        let mut accepted = 0u64;
        let summary = pool.run(&work, 0..2000usize, |_| {
            if accepted == 499 {
                assert!(!panics, "the sink broke");
                return Err(std::io::Error::other("disk full"));
            }
            accepted += 1;
            Ok(())
        });
        assert_eq!(summary.finished, 499, "panics {panics}");
        assert_eq!(summary.finished + summary.unfinished, 2000);
        match summary.ending {
            Ending::SinkFailed { message, .. } => assert!(
                message.contains(if panics {
                    "the sink panicked: the sink broke"
                } else {
                    "disk full"
                }),
                "{message}"
            ),
            other => panic!("{other:?}"),
        }
    }
}

/// Regression: a fixed pool larger than the queue's backlog (1024) never
/// got more workers than the jobs queued when it started.
#[test]
fn a_fixed_pool_larger_than_the_backlog_gets_all_its_workers() {
    let slow = vec![Reply::Slow(Duration::from_millis(300))];
    let work = Scripted::new((0..1500).map(|job| (job, slow.clone())).collect());
    let config = unpaced(1100, fast_retries(1));
    let (summary, _) = run(config, &work, 1500, Stop::new());
    assert_eq!(summary.finished, 1500);
    assert_eq!(summary.peak_threads, 1100);
}

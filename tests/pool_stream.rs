//! `Pool::run_stream`: jobs from an iterator that blocks until its producer
//! speaks are read on a thread of their own, so the run goes on (retries,
//! stops) while it waits, and a stopped run neither waits for the producer
//! nor loses count of what it read.

use crossbeam_channel::Sender;
use restb::pool::{AbortReason, Attempt, Ending, Pool, PoolConfig, Threads, Work};
use restb::stop::Stop;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Bound on every wait of these tests.
const PATIENCE: Duration = Duration::from_secs(10);

/// Job 0 fails transiently on its first try; every try succeeds after that.
struct FlakyFirst {
    tries_of_first: AtomicUsize,
    first_done: AtomicBool,
}

impl Work for FlakyFirst {
    type Job = usize;
    type Output = usize;

    fn attempt(&self, job: &usize) -> Attempt<usize> {
        if *job == 0 {
            if self.tries_of_first.fetch_add(1, Ordering::SeqCst) == 0 {
                return Attempt::Transient(0);
            }
            self.first_done.store(true, Ordering::SeqCst);
        }
        Attempt::Success(*job)
    }

    fn panicked(&self, job: &usize, _: &str) -> usize {
        *job
    }
}

fn config(threads: usize) -> PoolConfig {
    let mut config = PoolConfig::default();
    config.threads = Threads::Fixed(NonZeroUsize::new(threads).unwrap());
    config.rate = None;
    config.retry.base_delay = Duration::from_millis(20);
    config
}

/// Waits (at most `PATIENCE`) for `done`; says whether it came.
fn wait_for(done: impl Fn() -> bool) -> bool {
    let give_up = Instant::now() + PATIENCE;
    while !done() {
        if Instant::now() > give_up {
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
    true
}

#[test]
fn a_retry_is_tried_while_the_stream_waits_for_its_producer() {
    let work = FlakyFirst {
        tries_of_first: AtomicUsize::new(0),
        first_done: AtomicBool::new(false),
    };
    let (jobs, stream) = crossbeam_channel::unbounded();
    let mut seen = Vec::new();
    let waited = thread::scope(|scope| {
        // The producer has job 1 only once job 0 is done: a run that pulled
        // on its supervisor's thread would hold job 0's retry behind it.
        let producer = scope.spawn(|| {
            jobs.send(0).unwrap();
            let came = wait_for(|| work.first_done.load(Ordering::SeqCst));
            jobs.send(1).unwrap();
            drop(jobs);
            came
        });
        let summary = Pool::new(config(2), Stop::new()).run_stream(&work, stream, |done| {
            seen.push(done.output);
            Ok(())
        });
        assert_eq!(summary.ending, Ending::Completed);
        assert_eq!((summary.finished, summary.unfinished), (2, 0));
        producer.join().unwrap()
    });
    assert!(waited, "job 0's retry waited for the producer");
    seen.sort_unstable();
    assert_eq!(seen, [0, 1]);
    assert_eq!(work.tries_of_first.load(Ordering::SeqCst), 2);
}

/// Succeeds at once.
struct Quick;

impl Work for Quick {
    type Job = usize;
    type Output = usize;

    fn attempt(&self, job: &usize) -> Attempt<usize> {
        Attempt::Success(*job)
    }

    fn panicked(&self, job: &usize, _: &str) -> usize {
        *job
    }
}

/// Sends `count` jobs, then keeps the channel open until told.
fn silent_producer(jobs: Sender<usize>, count: usize, hang_up: &AtomicBool) {
    for job in 0..count {
        jobs.send(job).unwrap();
    }
    wait_for(|| hang_up.load(Ordering::SeqCst));
}

#[test]
fn a_stop_ends_the_run_while_the_producer_is_silent() {
    let stop = Stop::new();
    let hang_up = AtomicBool::new(false);
    let (jobs, stream) = crossbeam_channel::unbounded();
    thread::scope(|scope| {
        scope.spawn(|| silent_producer(jobs, 3, &hang_up));
        let stopper = {
            let stop = stop.clone();
            scope.spawn(move || {
                thread::sleep(Duration::from_millis(300));
                stop.stop();
            })
        };
        let began = Instant::now();
        let summary = Pool::new(config(2), stop.clone()).run_stream(&Quick, stream, |_| Ok(()));
        let took = began.elapsed();
        hang_up.store(true, Ordering::SeqCst);
        stopper.join().unwrap();
        assert_eq!(summary.finished, 3);
        assert_eq!(summary.ending, Ending::Stopped, "the stream had not ended");
        assert!(took < PATIENCE, "the run waited for the producer: {took:?}");
    });
}

#[test]
fn an_exact_stream_stopped_early_counts_what_it_never_ran() {
    let stop = Stop::new();
    let started = AtomicUsize::new(0);
    struct StopAfter<'a> {
        started: &'a AtomicUsize,
        stop: Stop,
    }
    impl Work for StopAfter<'_> {
        type Job = usize;
        type Output = usize;
        fn attempt(&self, job: &usize) -> Attempt<usize> {
            if self.started.fetch_add(1, Ordering::SeqCst) + 1 == 500 {
                self.stop.stop();
            }
            Attempt::Success(*job)
        }
        fn panicked(&self, job: &usize, _: &str) -> usize {
            *job
        }
    }
    let work = StopAfter {
        started: &started,
        stop: stop.clone(),
    };
    let summary = Pool::new(config(2), stop).run_stream(&work, 0..50_000usize, |_| Ok(()));
    assert_eq!(summary.ending, Ending::Stopped);
    assert!(summary.finished >= 500);
    assert_eq!(summary.finished + summary.unfinished, 50_000);
}

#[test]
fn a_panic_in_the_stream_aborts_the_run_after_the_jobs_it_gave() {
    let jobs = (0..10usize).inspect(|&job| assert!(job < 5, "the source broke"));
    let mut seen = 0;
    let summary = Pool::new(config(2), Stop::new()).run_stream(&Quick, jobs, |_| {
        seen += 1;
        Ok(())
    });
    let Ending::Aborted {
        reason: AbortReason::Internal(why),
    } = &summary.ending
    else {
        panic!("not aborted: {:?}", summary.ending);
    };
    assert!(why.contains("the source broke"), "{why}");
    assert_eq!((seen, summary.finished), (5, 5));
    assert_eq!(summary.unfinished, 5, "its exact length counts the rest");
}

//! The pool pulls its jobs lazily: a batch of any size runs with a bounded
//! backlog, every job exactly once, and a stopped run counts the jobs it
//! never pulled as unfinished.

use restb::pool::{Attempt, Ending, Pool, PoolConfig, Threads, Work};
use restb::stop::Stop;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Succeeds at once; stops the run after `stop_after` jobs when set.
struct Quick {
    done: AtomicUsize,
    stop_after: Option<(usize, Stop)>,
}

impl Work for Quick {
    type Job = usize;
    type Output = usize;

    fn attempt(&self, job: &usize) -> Attempt<usize> {
        let done = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some((after, stop)) = &self.stop_after {
            if done == *after {
                stop.stop();
            }
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
    config
}

#[test]
fn a_large_batch_is_pulled_as_the_queue_drains_and_each_job_runs_once() {
    const JOBS: usize = 50_000;
    let work = Quick {
        done: AtomicUsize::new(0),
        stop_after: None,
    };
    let mut seen = vec![0u8; JOBS];
    let mut widest = 0;
    let mut pulled = 0;
    // Pulled but not yet tried: the queue's backlog and the jobs in the
    // workers' hands. (Not "not yet recorded": the sink's channel is
    // unbounded, and on a loaded machine the sink thread may lag by
    // thousands of finished jobs without the pool holding any more work.)
    let jobs = std::iter::from_fn(|| {
        widest = widest.max(pulled - work.done.load(Ordering::SeqCst));
        (pulled < JOBS).then(|| {
            pulled += 1;
            pulled - 1
        })
    });
    let summary = Pool::new(config(4), Stop::new()).run(&work, jobs, |done| {
        seen[done.output] += 1;
        Ok(())
    });
    assert_eq!(summary.ending, Ending::Completed);
    assert_eq!((summary.finished, summary.unfinished), (JOBS as u64, 0));
    assert!(seen.iter().all(|&n| n == 1), "every job exactly once");
    // Far below the batch (pulled up front, it would be all 50,000).
    assert!(widest <= 4_000, "held {widest} jobs at once");
}

#[test]
fn a_stopped_run_counts_the_jobs_it_never_pulled() {
    let stop = Stop::new();
    let work = Quick {
        done: AtomicUsize::new(0),
        stop_after: Some((3_000, stop.clone())),
    };
    let jobs: Vec<usize> = (0..100_000).collect();
    let summary = Pool::new(config(2), stop).run(&work, jobs, |_| Ok(()));
    assert_eq!(summary.ending, Ending::Stopped);
    assert!(summary.finished >= 3_000);
    assert_eq!(summary.finished + summary.unfinished, 100_000);
    // An iterator without an exact size is counted to its end.
    let stop = Stop::new();
    let work = Quick {
        done: AtomicUsize::new(0),
        stop_after: Some((3_000, stop.clone())),
    };
    let jobs = (0..100_000).filter(|n| n % 2 == 0);
    let summary = Pool::new(config(2), stop).run(&work, jobs, |_| Ok(()));
    assert_eq!(summary.finished + summary.unfinished, 50_000);
}

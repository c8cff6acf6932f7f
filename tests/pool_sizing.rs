//! An auto-sized pool shrinks while idle and grows again for a new backlog,
//! watched through the live worker threads themselves (`/proc/self/task`,
//! threads named `worker-N`). Alone in its test binary so that no other
//! pool's workers are counted.

use parking_lot::{Condvar, Mutex};
use restb::limiter::Rate;
use restb::pool::{Attempt, Ending, Pool, PoolConfig, Threads, Work};
use restb::retry::RetryPolicy;
use restb::stop::Stop;
use std::collections::HashMap;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Live worker threads of this process.
fn live_workers() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("Linux /proc")
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
        .filter(|name| name.starts_with("worker-"))
        .count()
}

fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not after {limit:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Each job's first try is a transient failure (so it waits out a backoff
/// in the delay heap); its second blocks until the gate opens, then succeeds.
#[derive(Default)]
struct Gated {
    tries: Mutex<HashMap<usize, u32>>,
    first_tries: AtomicUsize,
    blocked: AtomicUsize,
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gated {
    fn open(&self) {
        *self.open.lock() = true;
        self.opened.notify_all();
    }
}

/// Opens the gate when dropped, so that a failing check does not leave
/// workers blocked behind it.
struct OpenOnDrop<'g>(&'g Gated);

impl Drop for OpenOnDrop<'_> {
    fn drop(&mut self) {
        self.0.open();
    }
}

impl Work for Gated {
    type Job = usize;
    type Output = u32;

    fn attempt(&self, job: &usize) -> Attempt<u32> {
        let try_number = {
            let mut tries = self.tries.lock();
            let entry = tries.entry(*job).or_insert(0);
            *entry += 1;
            *entry
        };
        if try_number == 1 {
            self.first_tries.fetch_add(1, Ordering::SeqCst);
            return Attempt::Transient(try_number);
        }
        self.blocked.fetch_add(1, Ordering::SeqCst);
        let mut open = self.open.lock();
        while !*open {
            // Bounded: a test that fails must not leave this worker behind.
            if self
                .opened
                .wait_for(&mut open, Duration::from_secs(30))
                .timed_out()
            {
                break;
            }
        }
        Attempt::Success(try_number)
    }

    fn panicked(&self, _job: &usize, _message: &str) -> u32 {
        0
    }
}

#[test]
fn an_auto_pool_shrinks_while_idle_and_grows_again_for_a_new_backlog() {
    const JOBS: usize = 24;
    let work = Gated::default();
    let mut retry = RetryPolicy::default();
    retry.max_attempts = NonZeroU32::new(3).unwrap();
    // Backoffs of 2 to 4 s: the pool has time to shrink before they end.
    retry.base_delay = Duration::from_secs(4);
    retry.max_delay = Duration::from_secs(4);
    let mut config = PoolConfig::default();
    config.threads = Threads::Auto {
        max: NonZeroUsize::new(64).unwrap(),
    };
    // 100/s: the first guess is 101 workers, and the 24 first tries take 0.24 s.
    config.rate = Rate::per_second(100.0);
    config.retry = retry;
    config.idle_exit = Duration::from_millis(100);
    config.seed = 11;
    let pool = Pool::new(config, Stop::new());
    let mut finished = Vec::new();
    let summary = std::thread::scope(|scope| {
        let runner = scope.spawn(|| {
            pool.run(&work, 0..JOBS, |done| {
                finished.push(done);
                Ok(())
            })
        });
        let gate = OpenOnDrop(&work);
        // Every first try fails; the jobs wait in the delay heap and the
        // queue is empty: the idle workers leave, one stays.
        wait_until(Duration::from_secs(10), "every first try", || {
            work.first_tries.load(Ordering::SeqCst) == JOBS
        });
        let grown = live_workers();
        wait_until(Duration::from_secs(10), "the pool shrinks to one", || {
            live_workers() == 1
        });
        assert_eq!(
            work.blocked.load(Ordering::SeqCst),
            0,
            "the pool shrank before any backoff ended (each is at least 2 s)"
        );
        // The backoffs end: a backlog of 24 retries, each of which holds
        // its worker until the gate opens. All 24 in flight at once need
        // 24 workers: the pool grew again.
        wait_until(Duration::from_secs(20), "24 retries in flight", || {
            work.blocked.load(Ordering::SeqCst) == JOBS
        });
        let regrown = live_workers();
        drop(gate);
        let summary = runner.join().unwrap();
        (summary, grown, regrown)
    });
    let (summary, grown, regrown) = summary;
    assert!(grown > 1, "{grown} workers during the first tries");
    assert!(regrown >= JOBS, "{regrown} workers for {JOBS} retries");
    assert_eq!(summary.ending, Ending::Completed);
    assert_eq!(summary.finished, JOBS as u64);
    assert!(summary.peak_threads >= regrown, "{summary:?}");
    let mut jobs: Vec<usize> = finished.iter().map(|f| f.job).collect();
    jobs.sort_unstable();
    assert_eq!(jobs, (0..JOBS).collect::<Vec<_>>(), "each job exactly once");
    assert!(finished.iter().all(|f| f.success && f.output == 2));
}

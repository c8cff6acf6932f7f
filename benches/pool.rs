//! The engine's own cost per job: `Pool::run` over no-op jobs, no pacing.
//!
//! Each run spawns the workers, the supervisor and the sink thread, queues
//! every job, runs them and joins; with 10 000 jobs per run that start-up is
//! spread thin, so time per element is the per-job overhead of the queue,
//! the books (statistics, the unfinished count) and the sink hand-off.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use restb::pool::{Attempt, Pool, PoolConfig, Threads, Work};
use restb::stop::Stop;
use std::num::NonZeroUsize;
use std::time::Duration;

const JOBS: u32 = 10_000;
const THREADS: [usize; 4] = [1, 2, 4, 8];

/// Work that succeeds at once.
struct Noop;

impl Work for Noop {
    type Job = u32;
    type Output = ();

    fn attempt(&self, _job: &u32) -> Attempt<()> {
        Attempt::Success(())
    }

    fn panicked(&self, _job: &u32, _message: &str) {}
}

fn no_op_jobs(c: &mut Criterion) {
    let mut group = c.benchmark_group("pool/no_op_jobs");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(u64::from(JOBS)));
    for threads in THREADS {
        let fixed = Threads::Fixed(NonZeroUsize::new(threads).expect("thread counts are not zero"));
        group.bench_with_input(BenchmarkId::from_parameter(threads), &fixed, |b, &fixed| {
            b.iter(|| {
                let mut config = PoolConfig::default();
                config.threads = fixed;
                config.rate = None;
                let summary = Pool::new(config, Stop::new()).run(&Noop, 0..JOBS, |_| Ok(()));
                assert_eq!(summary.finished, u64::from(JOBS));
            });
        });
    }
    group.finish();
}

criterion_group!(benches, no_op_jobs);
criterion_main!(benches);

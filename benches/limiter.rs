//! What one pass through the shared limiter costs while N threads contend for it.
//!
//! Nobody sleeps here: `reserve_at` only books a slot (it never waits) on a
//! limiter at 10^6 starts per second, and `acquire` runs on a limiter without
//! a rate (only a pause would hold it). So these figures are the bookkeeping
//! cost (the lock, the clock reads, the arithmetic) under contention, not pacing.
//! Criterion's time is the wall time of one round in which every thread makes
//! one call; its throughput (elements = calls) gives calls per second, so
//! nanoseconds per call = 10^9 / throughput.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use restb::limiter::{Limiter, Now, Rate};
use restb::stop::Stop;
use std::hint::black_box;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

const THREADS: [usize; 5] = [1, 2, 4, 8, 16];

/// Wall time for `threads` threads to each call `op` `iters` times, released together.
fn contended(threads: usize, iters: u64, op: impl Fn() + Sync) -> Duration {
    let barrier = Barrier::new(threads + 1);
    thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    for _ in 0..iters {
                        op();
                    }
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        for worker in workers {
            worker.join().expect("a bench thread does not panic");
        }
        start.elapsed()
    })
}

fn reserve_at(c: &mut Criterion) {
    let mut group = c.benchmark_group("limiter/reserve_at");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for threads in THREADS {
        group.throughput(Throughput::Elements(threads as u64));
        group.bench_with_input(BenchmarkId::from_parameter(threads), &threads, |b, &n| {
            b.iter_custom(|iters| {
                let limiter = Limiter::new(Rate::per_second(1e6));
                contended(n, iters, || {
                    black_box(limiter.reserve_at(Now::system()));
                })
            });
        });
    }
    group.finish();
}

fn acquire(c: &mut Criterion) {
    let mut group = c.benchmark_group("limiter/acquire");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for threads in THREADS {
        group.throughput(Throughput::Elements(threads as u64));
        group.bench_with_input(BenchmarkId::from_parameter(threads), &threads, |b, &n| {
            b.iter_custom(|iters| {
                let limiter = Limiter::new(None);
                let stop = Stop::new();
                contended(n, iters, || {
                    black_box(limiter.acquire(&stop)).expect("nobody gives the stop signal");
                })
            });
        });
    }
    group.finish();
}

criterion_group!(benches, reserve_at, acquire);
criterion_main!(benches);

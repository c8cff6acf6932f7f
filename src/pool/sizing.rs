//! Sizing the pool: the live counters of workers ([`Sizing`]), and the pure
//! rules that turn them into a thread count ([`SizePlan`], [`wanted`],
//! [`to_start`]).
//!
//! With [`Threads::Auto`] the pool needs threads >= rate x latency (Little's
//! law) for the rate, not the thread count, to bound throughput.

use super::config::Threads;
use crate::limiter::Rate;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The worker counters the workers and the supervisor share.
pub(super) struct Sizing {
    /// Whether the pool sizes itself (idle workers may then leave).
    auto: bool,
    /// Workers running.
    live: AtomicUsize,
    /// Workers the supervisor wants now; it starts more only up to this.
    wanted: AtomicUsize,
    /// Workers blocked on the queue or the limiter: zero while jobs wait
    /// means the thread count is the bottleneck.
    waiting: AtomicUsize,
}

impl Sizing {
    /// No worker yet, for a pool of `threads`.
    pub(super) fn new(threads: Threads) -> Sizing {
        Sizing {
            auto: matches!(threads, Threads::Auto { .. }),
            live: AtomicUsize::new(0),
            wanted: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
        }
    }

    /// A worker starts waiting for a job or for the limiter.
    pub(super) fn begin_wait(&self) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
    }

    /// That worker stops waiting.
    pub(super) fn end_wait(&self) {
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }

    /// A worker is about to start.
    pub(super) fn joined(&self) {
        self.live.fetch_add(1, Ordering::SeqCst);
    }

    /// The worker counted by [`Sizing::joined`] could not start.
    pub(super) fn not_started(&self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }

    /// An idle worker of an auto-sized pool leaves (one always stays):
    /// returns whether this one may go, having taken itself off the count.
    pub(super) fn leave_if_surplus(&self) -> bool {
        // The queue stayed empty for a while: in an auto-sized pool this
        // worker is not needed now; the supervisor starts more when work
        // queues up again. A fixed pool keeps its size.
        if !self.auto {
            return false;
        }
        self.live
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |live| {
                (live > 1).then(|| live - 1)
            })
            .is_ok()
    }

    /// Workers running.
    pub(super) fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Workers wanted now.
    pub(super) fn wanted(&self) -> usize {
        self.wanted.load(Ordering::SeqCst)
    }

    /// Sets the workers wanted now.
    pub(super) fn set_wanted(&self, wanted: usize) {
        self.wanted.store(wanted, Ordering::SeqCst);
    }

    /// Workers waiting for a job or for the limiter.
    pub(super) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }
}

/// Where a run's thread count starts and how far it may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SizePlan {
    /// Workers wanted at the start.
    pub(super) initial: usize,
    /// The most workers ever started.
    pub(super) max: usize,
    /// Whether the supervisor resizes the pool as it runs.
    pub(super) auto: bool,
}

impl SizePlan {
    /// The plan for `threads` at `rate`.
    pub(super) fn new(threads: Threads, rate: Option<Rate>) -> SizePlan {
        match threads {
            Threads::Fixed(n) => SizePlan {
                initial: n.get(),
                max: n.get(),
                auto: false,
            },
            Threads::Auto { max } => {
                // Enough for one second of starts; latency decides the rest.
                let first_guess =
                    rate.map_or(max.get(), |rate| rate.per_second_f64().ceil() as usize + 1);
                SizePlan {
                    initial: first_guess.min(max.get()),
                    max: max.get(),
                    auto: true,
                }
            }
        }
    }
}

/// What the supervisor sees of the pool when it sizes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Load {
    /// Workers running.
    pub(super) live: usize,
    /// Workers waiting for a job or for the limiter.
    pub(super) waiting: usize,
    /// Messages in the queue.
    pub(super) queued: usize,
}

/// What is known of the demand on the pool once a latency is measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Demand {
    /// Request starts per second allowed.
    pub(super) per_second: f64,
    /// How long a request takes.
    pub(super) latency: Duration,
    /// Starts a window's burst makes at once.
    pub(super) burst: usize,
}

/// The workers wanted after `wanted`, at most `max`. Little's law with room
/// for a burst once the demand is known: enough workers that the rate, not
/// the thread count, bounds throughput (threads >= rate x latency), plus
/// those a window's burst starts at once. Until then, the pool doubles
/// whenever every worker is busy while jobs wait.
pub(super) fn wanted(load: Load, wanted: usize, demand: Option<Demand>, max: usize) -> usize {
    match demand {
        Some(demand) => {
            let in_flight = demand.per_second * demand.latency.as_secs_f64() * 1.2;
            (in_flight.ceil() as usize + demand.burst + 1).clamp(1, max)
        }
        None => {
            let starved = load.waiting == 0 && load.queued > 0;
            if starved && load.live >= wanted {
                (load.live * 2).clamp(1, max)
            } else {
                wanted
            }
        }
    }
}

/// Workers to start now to reach `wanted`: only for jobs no waiting worker
/// will take, so a lone retry back in the queue does not regrow an idle pool.
pub(super) fn to_start(load: Load, wanted: usize) -> usize {
    let backlog = load.queued.saturating_sub(load.waiting);
    if load.live < wanted && backlog > 0 {
        (wanted - load.live).min(backlog)
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroUsize;

    fn load(live: usize, waiting: usize, queued: usize) -> Load {
        Load {
            live,
            waiting,
            queued,
        }
    }

    #[test]
    fn an_auto_pool_starts_with_one_second_of_starts() {
        let max = NonZeroUsize::new(64).unwrap();
        let plan = SizePlan::new(Threads::Auto { max }, Rate::per_second(10.0));
        assert_eq!((plan.initial, plan.max, plan.auto), (11, 64, true));
        let unpaced = SizePlan::new(Threads::Auto { max }, None);
        assert_eq!(unpaced.initial, 64);
        let fixed = SizePlan::new(Threads::Fixed(NonZeroUsize::new(3).unwrap()), None);
        assert_eq!((fixed.initial, fixed.max, fixed.auto), (3, 3, false));
    }

    #[test]
    fn a_known_demand_sets_littles_law_with_room_for_a_burst() {
        let demand = Demand {
            per_second: 10.0,
            latency: Duration::from_millis(1500),
            burst: 5,
        };
        // 10/s x 1.5 s x 1.2 = 18 in flight, + 5 for the burst, + 1.
        assert_eq!(wanted(load(4, 0, 9), 4, Some(demand), 64), 24);
        assert_eq!(wanted(load(4, 0, 9), 4, Some(demand), 20), 20);
    }

    #[test]
    fn without_a_demand_the_pool_doubles_only_while_starved() {
        assert_eq!(wanted(load(4, 0, 3), 4, None, 64), 8, "all busy, jobs wait");
        assert_eq!(wanted(load(4, 1, 3), 4, None, 64), 4, "a worker waits");
        assert_eq!(wanted(load(4, 0, 0), 4, None, 64), 4, "nothing queued");
        assert_eq!(wanted(load(40, 0, 3), 40, None, 64), 64, "capped");
    }

    #[test]
    fn workers_start_only_for_jobs_no_waiting_worker_takes() {
        assert_eq!(to_start(load(2, 0, 10), 8), 6);
        assert_eq!(to_start(load(2, 0, 3), 8), 3);
        assert_eq!(to_start(load(2, 1, 1), 8), 0, "a lone retry");
        assert_eq!(to_start(load(8, 0, 10), 8), 0);
    }
}

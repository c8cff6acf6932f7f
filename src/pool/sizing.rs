//! Sizing the pool: the live counters of workers ([`Sizing`]), and the pure
//! rules that turn them into a thread count ([`SizePlan`], [`wanted`],
//! [`to_start`]).
//!
//! With [`Threads::Auto`] the pool needs threads >= requests in flight, which
//! Little's law puts at rate x latency for evenly paced starts; starts sent
//! early in fixed windows put more in flight at the peak ([`peak_in_flight`]).
//! The pool starts small and sizes itself from the measured latency, so a
//! fast gateway gets a handful of threads, not one per start of a second.

use super::config::Threads;
use crate::limiter::Rate;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Most workers an auto pool starts with, before any latency is known;
/// it doubles from there while every worker is busy and jobs wait.
const FIRST_WORKERS: usize = 16;

/// Room for latency above its recent average.
const LATENCY_HEADROOM: f64 = 1.2;

/// Workers beyond the peak in flight: one taking its next job, one spare.
const SPARE_WORKERS: usize = 2;

/// The longest gap between starts in a window: mirrors the limiter's
/// (`limiter/window.rs`), which spreads a window's budget over at most half
/// of it and at most this far apart.
const WINDOW_MAX_SPACING: Duration = Duration::from_millis(5);

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
                // A few; the measured latency decides the rest. Unpaced, the
                // thread count is the only bound, so all of them.
                let first_guess = rate.map_or(max.get(), |rate| {
                    (rate.per_second_f64().ceil() as usize + 1).min(FIRST_WORKERS)
                });
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
    /// How long a request takes (a recent average).
    pub(super) latency: Duration,
    /// With fixed windows: each window's budget of starts, sent early in it.
    pub(super) window_budget: Option<u32>,
}

/// How long a window's `budget` of starts takes to leave: the limiter
/// spaces them half the even interval apart, at most 5 ms.
pub(super) fn window_spread(budget: u32) -> Duration {
    let budget = budget.max(1);
    (Duration::from_secs(1) / budget / 2).min(WINDOW_MAX_SPACING) * budget
}

/// The most requests in flight at once. Evenly paced: rate x latency
/// (Little's law). In one-second windows whose `budget` leaves within
/// `spread`: every whole second of latency holds a window's budget, and the
/// fraction left over holds the share of a window sent within it.
pub(super) fn peak_in_flight(demand: &Demand) -> f64 {
    let latency = demand.latency.as_secs_f64();
    match demand.window_budget {
        None => demand.per_second * latency,
        Some(budget) => {
            let spread = window_spread(budget).as_secs_f64().max(f64::MIN_POSITIVE);
            let (whole, fraction) = (latency.trunc(), latency.fract());
            f64::from(budget) * (whole + (fraction / spread).min(1.0))
        }
    }
}

/// The workers wanted after `wanted`, at most `max`. Once the demand is
/// known: the peak in flight at the latency plus headroom, and a spare
/// (waiting on the limiter does not grow the pool). Either way, the pool
/// doubles while every worker is busy and jobs wait: a latency that just
/// rose is not yet in the average.
pub(super) fn wanted(load: Load, wanted: usize, demand: Option<Demand>, max: usize) -> usize {
    let starved = load.waiting == 0 && load.queued > 0 && load.live >= wanted;
    let grown = if starved { load.live * 2 } else { 0 };
    match demand {
        Some(demand) => {
            let padded = Demand {
                latency: demand.latency.mul_f64(LATENCY_HEADROOM),
                ..demand
            };
            let needed = peak_in_flight(&padded).ceil() as usize + SPARE_WORKERS;
            needed.max(grown).clamp(1, max)
        }
        None if starved => grown.clamp(1, max),
        None => wanted,
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
    fn an_auto_pool_starts_small() {
        let max = NonZeroUsize::new(64).unwrap();
        let plan = SizePlan::new(Threads::Auto { max }, Rate::per_second(10.0));
        assert_eq!((plan.initial, plan.max, plan.auto), (11, 64, true));
        let fast = SizePlan::new(Threads::Auto { max }, Rate::per_second(1000.0));
        assert_eq!(fast.initial, FIRST_WORKERS, "not one per start of a second");
        let unpaced = SizePlan::new(Threads::Auto { max }, None);
        assert_eq!(unpaced.initial, 64);
        let fixed = SizePlan::new(Threads::Fixed(NonZeroUsize::new(3).unwrap()), None);
        assert_eq!((fixed.initial, fixed.max, fixed.auto), (3, 3, false));
    }

    fn demand(per_second: f64, latency_ms: u64, window_budget: Option<u32>) -> Demand {
        Demand {
            per_second,
            latency: Duration::from_millis(latency_ms),
            window_budget,
        }
    }

    #[test]
    fn windows_spread_their_starts_as_the_limiter_does() {
        assert_eq!(window_spread(1000), Duration::from_millis(500));
        assert_eq!(window_spread(10), Duration::from_millis(50));
        assert_eq!(window_spread(0), Duration::from_millis(5));
    }

    #[test]
    fn peak_in_flight_is_littles_law_or_the_windows_share() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        assert!(close(peak_in_flight(&demand(10.0, 1500, None)), 15.0));
        // 1000 starts in the first 500 ms of each second.
        assert!(close(peak_in_flight(&demand(1000.0, 1, Some(1000))), 2.0));
        assert!(close(
            peak_in_flight(&demand(1000.0, 250, Some(1000))),
            500.0
        ));
        assert!(close(
            peak_in_flight(&demand(1000.0, 1000, Some(1000))),
            1000.0
        ));
        assert!(close(
            peak_in_flight(&demand(1000.0, 1100, Some(1000))),
            1200.0
        ));
        assert!(close(
            peak_in_flight(&demand(1000.0, 1700, Some(1000))),
            2000.0
        ));
    }

    #[test]
    fn a_known_demand_sets_the_peak_in_flight_with_headroom() {
        // 10/s x 1.5 s x 1.2 = 18 in flight, + 2 spare.
        assert_eq!(
            wanted(load(4, 1, 9), 4, Some(demand(10.0, 1500, None)), 64),
            20
        );
        assert_eq!(
            wanted(load(4, 1, 9), 4, Some(demand(10.0, 1500, None)), 20),
            20
        );
        // 1000/s with a 1 ms reply: a handful, not a thousand.
        let fast = wanted(
            load(16, 12, 900),
            16,
            Some(demand(1000.0, 1, Some(1000))),
            4096,
        );
        assert_eq!(
            fast, 5,
            "1.2 ms of a window's first half: 2.4 in flight, + 2"
        );
        // 1000/s with 1 s latency: 1.2 s holds a budget and 40% of the next.
        let slow = wanted(
            load(16, 0, 900),
            16,
            Some(demand(1000.0, 1000, Some(1000))),
            4096,
        );
        assert_eq!(slow, 1402);
    }

    #[test]
    fn without_a_demand_the_pool_doubles_only_while_starved() {
        assert_eq!(wanted(load(4, 0, 3), 4, None, 64), 8, "all busy, jobs wait");
        assert_eq!(wanted(load(4, 1, 3), 4, None, 64), 4, "a worker waits");
        assert_eq!(wanted(load(4, 0, 0), 4, None, 64), 4, "nothing queued");
        assert_eq!(wanted(load(40, 0, 3), 40, None, 64), 64, "capped");
    }

    #[test]
    fn a_starved_pool_grows_past_a_stale_latency() {
        let stale = Some(demand(10.0, 100, None));
        assert_eq!(wanted(load(8, 0, 50), 3, stale, 64), 16);
        assert_eq!(wanted(load(8, 2, 50), 3, stale, 64), 4, "a worker waits");
    }

    #[test]
    fn workers_start_only_for_jobs_no_waiting_worker_takes() {
        assert_eq!(to_start(load(2, 0, 10), 8), 6);
        assert_eq!(to_start(load(2, 0, 3), 8), 3);
        assert_eq!(to_start(load(2, 1, 1), 8), 0, "a lone retry");
        assert_eq!(to_start(load(8, 0, 10), 8), 0);
    }
}

//! The settings of a pool run: [`PoolConfig`] and its thread count, [`Threads`].

use super::budget::SharedBudget;
use crate::limiter::{Rate, SharedPacing};
use crate::retry::RetryPolicy;
use std::num::NonZeroUsize;
use std::time::Duration;

/// How many worker threads to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// Exactly this many.
    Fixed(NonZeroUsize),
    /// Start small and add workers while every worker is busy and jobs wait,
    /// up to `max`.
    Auto {
        /// The most workers ever started.
        max: NonZeroUsize,
    },
}

impl Default for Threads {
    fn default() -> Threads {
        Threads::Auto {
            max: NonZeroUsize::new(4096).expect("4096 is not zero"),
        }
    }
}

/// Settings of a pool run.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PoolConfig {
    /// Worker threads. Defaults to [`Threads::Auto`] with at most 4096.
    pub threads: Threads,
    /// Pacing of request starts; `None` paces nothing (concurrency mode:
    /// the thread count alone bounds the load). Defaults to 1 per second.
    pub rate: Option<Rate>,
    /// Retries. Defaults to [`RetryPolicy::default`].
    pub retry: RetryPolicy,
    /// Start the first request on a wall-clock second, where fixed-window
    /// gateways start counting, so the first window holds a full budget.
    /// Defaults to false (a library caller may not want the wait of up to 1 s).
    pub align_to_windows: bool,
    /// Seed for backoff jitter. Defaults to 0.
    pub seed: u64,
    /// With [`Threads::Auto`], a worker that found no job for this long
    /// leaves (one always stays). Defaults to 5 s; at least 10 ms.
    pub idle_exit: Duration,
    /// Most tries started in the run, retries and rate-limited tries
    /// included. When the next start would exceed it, no more start, the
    /// tries in flight finish, and the run ends with
    /// [`Ending::BudgetSpent`](super::Ending::BudgetSpent); the job that
    /// could not start, like every job left, has no outcome. Defaults to
    /// `None`: no budget.
    pub budget: Option<u64>,
    /// A budget shared with other processes (e.g.
    /// `restb::shared_limit::RedisBudget`, feature `redis`), asked at each
    /// start within [`budget`](Self::budget); when it is spent, or cannot
    /// be asked, the run ends as with `budget`. Defaults to none.
    pub shared_budget: Option<SharedBudget>,
    /// The first try runs alone: no other starts until it has ended, or
    /// for this long at most (a slow first reply does not hold the run), so
    /// what its reply teaches (the gateway's windows, a quota the work
    /// checks) is known before the rest go out. Costs up to one latency at
    /// the start. Defaults to `None`: the first try does not wait.
    pub first_try_alone: Option<Duration>,
    /// A schedule shared with every process on the client key (e.g.
    /// `restb::shared_limit::SharedSchedule`, feature `redis`): even starts
    /// are booked there instead of in this pool's own limiter, at
    /// [`rate`](Self::rate), or without one at the rate the schedule was
    /// joined at. Defaults to none.
    pub shared: Option<SharedPacing>,
    /// The longest every start may be held by one pause (a spent quota, a
    /// long `Retry-After`, set by this pool or another on the shared
    /// schedule). A longer pause ends the run at once with
    /// [`Ending::LongPause`](super::Ending::LongPause): the tries in flight
    /// finish, the jobs left are unfinished, to be sent after it. Defaults
    /// to `None`: every pause is waited out (a spent quota's for an hour at
    /// most before the next try).
    pub longest_pause: Option<Duration>,
}

impl Default for PoolConfig {
    fn default() -> PoolConfig {
        PoolConfig {
            threads: Threads::default(),
            rate: Rate::per_second(1.0),
            retry: RetryPolicy::default(),
            align_to_windows: false,
            seed: 0,
            idle_exit: Duration::from_secs(5),
            budget: None,
            shared_budget: None,
            first_try_alone: None,
            shared: None,
            longest_pause: None,
        }
    }
}

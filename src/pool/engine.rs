//! One run's engine: what the workers and the supervisor share, one field
//! per concern (the queue, the delay heap, the books of unfinished jobs, the
//! sizing counters, the stop and abort state), built once per
//! [`Pool::run_into`](super::Pool::run_into).

use super::books::Books;
use super::budget::Budget;
use super::config::PoolConfig;
use super::delay::DelayHeap;
use super::first_try::FirstTry;
use super::halt::Halt;
use super::queue::{Queue, Tracked};
use super::sizing::Sizing;
use super::work::{Finished, Work};
use crate::limiter::Limiter;
use crate::stats::Stats;
use crate::stop::Stop;
use crossbeam_channel::Sender;
use std::time::Instant;

/// Where a worker sends a finished job: the sink thread.
pub(super) type SinkSender<W> = Sender<Finished<<W as Work>::Job, <W as Work>::Output>>;

/// The state of one run shared by its workers and its supervisor.
pub(super) struct Engine<'a, W: Work> {
    /// What each job runs.
    pub(super) work: &'a W,
    /// The run's settings.
    pub(super) config: &'a PoolConfig,
    /// Paces request starts across all workers.
    pub(super) limiter: Limiter,
    /// Live statistics.
    pub(super) stats: &'a Stats,
    /// Whether the run is stopping, and why it aborted.
    pub(super) halt: Halt<'a>,
    /// Jobs to try, and shutdown pills.
    pub(super) queue: Queue<W::Job>,
    /// Jobs waiting out a backoff.
    pub(super) delays: DelayHeap<Tracked<W::Job>>,
    /// Jobs without a terminal outcome yet.
    pub(super) books: Books,
    /// Workers running, wanted and waiting.
    pub(super) sizing: Sizing,
    /// Starts left.
    pub(super) budget: Budget,
    /// Holds the other starts while the first try runs, if asked to.
    pub(super) first_try: FirstTry,
}

impl<'a, W: Work> Engine<'a, W> {
    /// The engine of a run of `work`; the feed fills `queue` and opens the
    /// books one job at a time.
    pub(super) fn new(
        work: &'a W,
        config: &'a PoolConfig,
        stats: &'a Stats,
        stop: &'a Stop,
        queue: Queue<W::Job>,
    ) -> Engine<'a, W> {
        let limiter = match (&config.shared, config.align_to_windows) {
            (Some(shared), _) => {
                // Without a rate of its own, a pool would pace nothing and
                // use the schedule not at all (an embedder's review).
                let rate = config.rate.or_else(|| shared.rate());
                if rate.is_none() {
                    log::warn!(
                        "a shared schedule without a rate, here or its own: nothing is paced"
                    );
                }
                Limiter::new(rate).shared(shared.clone())
            }
            (None, true) => Limiter::new(config.rate).aligned_to_windows(),
            (None, false) => Limiter::new(config.rate),
        };
        Engine {
            work,
            config,
            limiter,
            stats,
            halt: Halt::new(stop),
            queue,
            delays: DelayHeap::new(),
            books: Books::open(0),
            sizing: Sizing::new(config.threads),
            budget: Budget::new(config.budget, config.shared_budget.clone()),
            first_try: FirstTry::new(config.first_try_alone),
        }
    }

    /// Moves the retries whose backoff is over back into the queue; returns
    /// when the next one falls due.
    pub(super) fn release_due(&self, now: Instant) -> Option<Instant> {
        self.delays
            .release_due(now, |tracked| self.queue.push(tracked))
    }
}

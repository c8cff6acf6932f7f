//! The engine: blocking worker threads pulling jobs from one MPMC queue.
//!
//! The tutorial's shape, with its faults fixed:
//! - one [`Limiter`](crate::limiter::Limiter) shared by all workers paces
//!   request *starts*, so the thread count only bounds how many are in flight;
//! - a job leaves the books only with a terminal outcome; shutdown pills go
//!   out when the count of unfinished jobs is zero, never when the queue
//!   merely looks empty (a re-enqueued job is never lost);
//! - a rate-limit reply pauses the whole pool, not one thread;
//! - transient failures wait out a backoff in a delay heap, not in a thread;
//! - with [`Threads::Auto`], a supervisor adds workers whenever every worker
//!   is busy while jobs wait, so threads >= rate x latency (Little's law);
//! - a panic inside a job is that job's failure, not a dead worker;
//! - jobs are pulled from the caller's iterator as the queue drains (a
//!   bounded backlog), so a batch of any size runs in flat memory.
//!
//! The engine is generic over the [`Work`] it runs, so a tool can run its own
//! blocking jobs through it; the Restb.ai client is one such work. A run ends
//! with a [`PoolSummary`] whose [`Ending`] says why it ended.
//!
//! Inside, one room per concept: the public types ([`Work`], [`PoolConfig`],
//! [`PoolSummary`], [`Sink`]); the feed, the queue and the delay heap; the books of
//! unfinished jobs; the stop and abort state; the sizing counters and rules;
//! the worker loop; the supervisor; the sink thread.

mod books;
mod budget;
mod config;
mod delay;
mod engine;
mod feed;
mod first_try;
mod halt;
mod queue;
mod sink;
mod sizing;
mod summary;
mod supervisor;
mod work;
mod worker;

pub use budget::{BudgetCounter, SharedBudget};
pub use config::{PoolConfig, Threads};
pub use sink::Sink;
pub use summary::{AbortReason, Ending, PoolSummary};
pub use work::{Attempt, Finished, Work};

use crate::stats::Stats;
use crate::stop::Stop;
use engine::Engine;
use feed::Feed;
use queue::Queue;
use std::thread;
use supervisor::Supervisor;

/// A pool of blocking workers; see the module docs.
#[derive(Debug)]
pub struct Pool {
    config: PoolConfig,
    stats: Stats,
    stop: Stop,
}

impl Pool {
    /// A pool with `config`, stopped by `stop` (give it from a signal handler
    /// to interrupt a run: requests in flight finish, the rest are left).
    pub fn new(config: PoolConfig, stop: Stop) -> Pool {
        Pool {
            config,
            stats: Stats::new(),
            stop,
        }
    }

    /// Live statistics, readable while [`Pool::run`] runs on another thread.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Runs every job to a terminal outcome (or until stopped), handing each
    /// finished job to `sink` on one dedicated thread, in completion order.
    ///
    /// `jobs` is pulled lazily, on the calling thread, as the queue drains:
    /// the run holds a bounded backlog (about a thousand jobs), so a batch of
    /// any size runs in flat memory. The first pull fills that backlog
    /// before the workers start, and the calling thread also stops, resizes
    /// and retries the run between pulls: an iterator that blocks (a
    /// channel's, fed slowly) holds all of that while it waits. Give jobs
    /// that are at hand (collect a slow source first, or pull it on a thread
    /// of yours into a `Vec` per batch).
    ///
    /// When a run stops early, the jobs never pulled count as unfinished:
    /// from the iterator's size hint if it is exact (as a `Vec`'s is), by
    /// counting the rest if it has an upper bound (a filter over a list),
    /// else its lower bound (an endless or blocking iterator is never
    /// drained).
    ///
    /// # Examples
    ///
    /// ```
    /// use restb::pool::{Attempt, Ending, Pool, PoolConfig, Work};
    /// use restb::stop::Stop;
    ///
    /// struct Check;
    /// impl Work for Check {
    ///     type Job = &'static str;
    ///     type Output = bool;
    ///     fn attempt(&self, name: &&'static str) -> Attempt<bool> {
    ///         Attempt::Success(name.ends_with(".jpg"))
    ///     }
    ///     fn panicked(&self, _: &&'static str, _: &str) -> bool {
    ///         false
    ///     }
    /// }
    ///
    /// let mut config = PoolConfig::default();
    /// config.rate = None;
    /// let mut jpegs = 0;
    /// let summary = Pool::new(config, Stop::new()).run(&Check, ["a.jpg", "b.png"], |done| {
    ///     jpegs += usize::from(done.output);
    ///     Ok(())
    /// });
    /// assert_eq!((jpegs, summary.finished, summary.unfinished), (1, 2, 0));
    /// assert_eq!(summary.ending, Ending::Completed);
    /// ```
    /// Blocks until all workers have exited.
    pub fn run<W, I, F>(&self, work: &W, jobs: I, sink: F) -> PoolSummary
    where
        W: Work,
        I: IntoIterator<Item = W::Job>,
        F: FnMut(Finished<W::Job, W::Output>) -> std::io::Result<()> + Send,
    {
        self.run_into(work, jobs, sink)
    }

    /// [`Pool::run`] with a [`Sink`] that buffers and is flushed whenever
    /// no finished job waits (the outcome file's writer is one).
    pub fn run_into<W, I, S>(&self, work: &W, jobs: I, sink: S) -> PoolSummary
    where
        W: Work,
        I: IntoIterator<Item = W::Job>,
        S: Sink<W::Job, W::Output> + Send,
    {
        // A pool run again reports the new run alone.
        self.stats.reset();
        let mut feed = Feed::new(jobs.into_iter());
        // The run's own stop: an abort or a failed sink ends this run
        // without giving the caller's stop, which the next run may reuse.
        let stop = self.stop.child();
        let engine = Engine::new(work, &self.config, &self.stats, &stop, Queue::new());
        let (sink_tx, sink_rx) = crossbeam_channel::unbounded();
        let (headcount, drained) = thread::scope(|scope| {
            let sink_thread = thread::Builder::new()
                .name("restb-sink".into())
                .spawn_scoped(scope, || sink::drain(sink_rx, sink, &stop))
                .expect("spawning the sink thread");
            let headcount = Supervisor::new(&engine, sink_tx).supervise(scope, &mut feed);
            let drained = sink_thread.join().expect("the sink thread does not panic");
            (headcount, drained)
        });
        let budget_spent = engine.halt.budget_spent();
        // A job the sink could not record counts as unfinished too.
        let total = (feed.fed() as u64).saturating_add(feed.left() as u64);
        let unfinished = total.saturating_sub(drained.written);
        // An iterator not seen to its end may hold more than its hint says.
        let maybe_more = !feed.done();
        PoolSummary {
            report: self.stats.report(),
            finished: drained.written,
            unfinished,
            ending: Ending::of(
                engine.halt.into_abort(),
                drained.error.as_ref(),
                budget_spent,
                unfinished,
                maybe_more,
            ),
            peak_threads: headcount.peak,
            threads_at_end: headcount.at_end,
        }
    }
}

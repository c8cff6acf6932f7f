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
mod stream;
mod summary;
mod supervisor;
mod work;
mod worker;

pub use budget::{BudgetCounter, SharedBudget};
pub use config::{PoolConfig, Threads};
pub use sink::Sink;
pub use summary::{AbortReason, Ending, LongPause, PoolSummary};
pub use work::{Attempt, Finished, Work};

use crate::stats::Stats;
use crate::stop::Stop;
use engine::Engine;
use feed::{Feed, OnCaller, Source};
use queue::Queue;
use std::thread;
use stream::Streamed;
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
    /// channel's, fed slowly) holds all of that while it waits. Give such
    /// an iterator to [`Pool::run_stream`], which reads it on a thread of
    /// its own.
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
        self.run_feed(work, Feed::new(OnCaller(jobs.into_iter())), sink)
    }

    /// [`Pool::run`] for jobs that come as a stream: `jobs` is read on a
    /// thread of its own, so an iterator that blocks until its producer
    /// speaks (a channel's receiver, a socket) holds nothing but the start
    /// of the jobs it has not given yet; the run ends when the iterator
    /// ends and every job has an outcome. A job given reaches a worker
    /// within about 10 ms.
    ///
    /// A run stopped before the iterator ended leaves its reading thread
    /// blocked in it: the thread ends at the iterator's next job, which is
    /// dropped untried (as are the jobs read ahead, up to about a thousand,
    /// which count as unfinished), or when the iterator ends. A panic in
    /// the iterator aborts the run ([`AbortReason::Internal`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use restb::pool::{Attempt, Ending, Pool, PoolConfig, Work};
    /// use restb::stop::Stop;
    /// use std::thread;
    ///
    /// struct Double;
    /// impl Work for Double {
    ///     type Job = u32;
    ///     type Output = u32;
    ///     fn attempt(&self, job: &u32) -> Attempt<u32> {
    ///         Attempt::Success(job * 2)
    ///     }
    ///     fn panicked(&self, job: &u32, _: &str) -> u32 {
    ///         *job
    ///     }
    /// }
    ///
    /// // A producer of the embedding tool, handing jobs over as it finds them.
    /// let (jobs, from_producer) = crossbeam_channel::unbounded();
    /// let producer = thread::spawn(move || {
    ///     for job in 1..=3 {
    ///         jobs.send(job).unwrap();
    ///     }
    /// });
    /// let mut config = PoolConfig::default();
    /// config.rate = None;
    /// let mut sum = 0;
    /// let summary = Pool::new(config, Stop::new()).run_stream(&Double, from_producer, |done| {
    ///     sum += done.output;
    ///     Ok(())
    /// });
    /// producer.join().unwrap();
    /// assert_eq!((sum, summary.finished, summary.ending), (12, 3, Ending::Completed));
    /// ```
    pub fn run_stream<W, I, F>(&self, work: &W, jobs: I, sink: F) -> PoolSummary
    where
        W: Work,
        W::Job: 'static,
        I: IntoIterator<Item = W::Job>,
        I::IntoIter: Send + 'static,
        F: FnMut(Finished<W::Job, W::Output>) -> std::io::Result<()> + Send,
    {
        self.run_stream_into(work, jobs, sink)
    }

    /// [`Pool::run_stream`] with a [`Sink`] (see [`Pool::run_into`]).
    pub fn run_stream_into<W, I, S>(&self, work: &W, jobs: I, sink: S) -> PoolSummary
    where
        W: Work,
        W::Job: 'static,
        I: IntoIterator<Item = W::Job>,
        I::IntoIter: Send + 'static,
        S: Sink<W::Job, W::Output> + Send,
    {
        let jobs = jobs.into_iter();
        let hint = jobs.size_hint().0;
        match Streamed::spawn(jobs) {
            Ok(stream) => self.run_feed(work, Feed::new(stream), sink),
            Err(error) => self.not_started(
                format!("cannot start the thread that reads the jobs: {error}"),
                hint,
            ),
        }
    }

    /// A run that could not start: nothing tried, `unfinished` jobs left.
    fn not_started(&self, why: String, unfinished: usize) -> PoolSummary {
        log::error!("{why}");
        self.stats.reset();
        PoolSummary {
            report: self.stats.report(),
            finished: 0,
            unfinished: unfinished as u64,
            ending: Ending::Aborted {
                reason: AbortReason::Internal(why),
            },
            peak_threads: 0,
            threads_at_end: 0,
        }
    }

    /// Runs the jobs of `feed`; see [`Pool::run`].
    fn run_feed<W, J, S>(&self, work: &W, mut feed: Feed<J>, sink: S) -> PoolSummary
    where
        W: Work,
        J: Source<Job = W::Job>,
        S: Sink<W::Job, W::Output> + Send,
    {
        // A pool run again reports the new run alone.
        self.stats.reset();
        // The run's own stop: an abort or a failed sink ends this run
        // without giving the caller's stop, which the next run may reuse.
        let stop = self.stop.child();
        let engine = Engine::new(work, &self.config, &self.stats, &stop, Queue::new());
        let (sink_tx, sink_rx) = crossbeam_channel::unbounded();
        let (headcount, drained) = thread::scope(|scope| {
            let sink_thread = thread::Builder::new()
                .name("restb-sink".into())
                .spawn_scoped(scope, || sink::drain(sink_rx, sink, work, &stop))
                .expect("spawning the sink thread");
            let headcount = Supervisor::new(&engine, sink_tx).supervise(scope, &mut feed);
            let drained = sink_thread.join().expect("the sink thread does not panic");
            (headcount, drained)
        });
        let held = (engine.halt.budget_spent(), engine.halt.long_pause());
        // A job the sink could not record counts as unfinished too.
        let total = (feed.fed() as u64).saturating_add(feed.left() as u64);
        let unfinished = total.saturating_sub(drained.written);
        // An iterator not seen to its end may hold more than its hint says.
        let maybe_more = !feed.seen_to_end();
        PoolSummary {
            report: self.stats.report(),
            finished: drained.written,
            unfinished,
            ending: Ending::of(
                engine.halt.into_abort(),
                drained.error.as_ref(),
                held,
                unfinished,
                maybe_more,
            ),
            peak_threads: headcount.peak,
            threads_at_end: headcount.at_end,
        }
    }
}

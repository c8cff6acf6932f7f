//! The engine: blocking worker threads pulling jobs from one MPMC queue.
//!
//! The tutorial's shape, with its faults fixed:
//! - one [`Limiter`] shared by all workers paces request *starts*, so the
//!   thread count only bounds how many are in flight;
//! - a job leaves the books only with a terminal outcome; shutdown pills go
//!   out when the count of unfinished jobs is zero, never when the queue
//!   merely looks empty (a re-enqueued job is never lost);
//! - a rate-limit reply pauses the whole pool, not one thread;
//! - transient failures wait out a backoff in a delay heap, not in a thread;
//! - with [`Threads::Auto`], a supervisor adds workers whenever every worker
//!   is busy while jobs wait, so threads >= rate x latency (Little's law);
//! - a panic inside a job is that job's failure, not a dead worker.
//!
//! The engine is generic over the [`Work`] it runs, so a tool can run its own
//! blocking jobs through it; the Restb.ai client is one such work.

use crate::limiter::{
    GatewayHint, Limiter, Mode as LimiterMode, Now, Rate, Reservation, SharedPacing,
};
use crate::retry::RetryPolicy;
use crate::stats::{AttemptKind, Report, Stats};
use crate::stop::Stop;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use parking_lot::Mutex;
use std::any::Any;
use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::num::NonZeroUsize;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, Scope};
use std::time::{Duration, Instant};

/// How one try of a job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt<O> {
    /// Done, and it worked.
    Success(O),
    /// Done, and it failed for good: trying again would fail the same way.
    Failure(O),
    /// The service asked us to slow down: pause every worker, then try again.
    RateLimited {
        /// How long the service asked us to wait; `None`: until the next
        /// one-second window.
        retry_after: Option<Duration>,
        /// The outcome to record if the job runs out of rate-limit retries.
        output: O,
    },
    /// Failed in a way that may pass: try again after a backoff.
    Transient(O),
    /// Failed so that no other job can succeed (a rejected key): record it and
    /// stop the whole run.
    Abort(O),
}

/// A blocking piece of work the pool runs for each job.
pub trait Work: Sync {
    /// What one job is.
    type Job: Send;
    /// What one try of a job yields.
    type Output: Send;

    /// Runs one try of `job`. Called from a worker thread; may block.
    fn attempt(&self, job: &Self::Job) -> Attempt<Self::Output>;

    /// The output to record when [`Work::attempt`] panicked with `message`.
    fn panicked(&self, job: &Self::Job, message: &str) -> Self::Output;

    /// What the reply behind `output` said about the gateway's limits (its
    /// rate-limit headers), for the limiter to learn from. Defaults to none.
    fn hint(&self, _output: &Self::Output) -> Option<GatewayHint> {
        None
    }
}

/// A job with its terminal outcome, as handed to the sink.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished<J, O> {
    /// The job.
    pub job: J,
    /// The output of its last try.
    pub output: O,
    /// Whether the last try was a success.
    pub success: bool,
    /// Tries made, rate-limited ones included.
    pub attempts: u32,
    /// Tries answered with a rate-limit reply.
    pub rate_limited: u32,
    /// Duration of the last try.
    pub latency: Duration,
}

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
    /// leaves (one always stays). Defaults to 5 s.
    pub idle_exit: Duration,
    /// A schedule shared with every process on the client key (e.g.
    /// `restb::shared_limit::SharedSchedule`, feature `redis`): starts are
    /// booked there instead of in this pool's own limiter. Defaults to none.
    pub shared: Option<SharedPacing>,
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
            shared: None,
        }
    }
}

/// How a pool run ended.
#[derive(Debug)]
pub struct PoolSummary {
    /// The statistics at the end.
    pub report: Report,
    /// Jobs handed to the sink.
    pub finished: u64,
    /// Jobs without a recorded outcome (stopped or aborted runs, sink errors).
    pub unfinished: u64,
    /// Whether the run was aborted: a job said no other can succeed (a
    /// refused key), or an internal error (logged) stopped it.
    pub aborted: bool,
    /// Whether the run was stopped before every job finished.
    pub stopped: bool,
    /// The most workers that ran at once.
    pub peak_threads: usize,
    /// Workers still running when the last job finished.
    pub threads_at_end: usize,
    /// The first error the sink returned; the run stops at it.
    pub sink_error: Option<std::io::Error>,
}

/// A pool of blocking workers; see the module docs.
#[derive(Debug)]
pub struct Pool {
    config: PoolConfig,
    stats: Stats,
    stop: Stop,
}

/// How often the supervisor looks at the queue, the retry heap and the stop signal.
const SUPERVISOR_TICK: Duration = Duration::from_millis(10);
/// How long the sink collects outcomes between writes while they keep coming.
const SINK_BATCH: Duration = Duration::from_millis(2);

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
    /// # Examples
    ///
    /// ```
    /// use restb::pool::{Attempt, Pool, PoolConfig, Work};
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
    /// let config = PoolConfig { rate: None, ..PoolConfig::default() };
    /// let mut jpegs = 0;
    /// let summary = Pool::new(config, Stop::new()).run(&Check, ["a.jpg", "b.png"], |done| {
    ///     jpegs += usize::from(done.output);
    ///     Ok(())
    /// });
    /// assert_eq!((jpegs, summary.finished, summary.unfinished), (1, 2, 0));
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
        let (queue_tx, queue_rx) = crossbeam_channel::unbounded();
        let mut total = 0usize;
        for job in jobs {
            total += 1;
            let tracked = Tracked {
                job,
                attempts: 0,
                transient: 0,
                rate_limited: 0,
            };
            queue_tx
                .send(Message::Job(tracked))
                .expect("the receiver is alive: it is a local of this function");
        }
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        let shared = Shared {
            work,
            config: &self.config,
            limiter: match (&self.config.shared, self.config.align_to_windows) {
                (Some(shared), _) => Limiter::new(self.config.rate).shared(shared.clone()),
                (None, true) => Limiter::new(self.config.rate).aligned_to_windows(),
                (None, false) => Limiter::new(self.config.rate),
            },
            stats: &self.stats,
            stop: &self.stop,
            queue_tx,
            queue_rx,
            done_tx,
            unfinished: AtomicUsize::new(total),
            waiting: AtomicUsize::new(0),
            delayed: Mutex::new(BinaryHeap::new()),
            next_seq: AtomicUsize::new(0),
            aborted: AtomicBool::new(false),
            live: AtomicUsize::new(0),
            wanted: AtomicUsize::new(0),
        };
        let (sink_tx, sink_rx) = crossbeam_channel::unbounded();
        let (mut peak_threads, mut threads_at_end) = (0, 0);
        let (finished, sink_error) = thread::scope(|scope| {
            let sink_thread = thread::Builder::new()
                .name("restb-sink".into())
                .spawn_scoped(scope, || drain_sink(sink_rx, sink, &self.stop))
                .expect("spawning the sink thread");
            let supervisor = Supervisor {
                shared: &shared,
                sink_tx,
                spawned: 0,
                peak: 0,
            };
            (peak_threads, threads_at_end) = supervisor.supervise(scope, total, &done_rx);
            sink_thread.join().expect("the sink thread does not panic")
        });
        // A job the sink could not record counts as unfinished too.
        let unfinished = total as u64 - finished;
        PoolSummary {
            report: self.stats.report(),
            finished,
            unfinished,
            aborted: shared.aborted.load(Ordering::SeqCst),
            stopped: unfinished > 0,
            peak_threads,
            threads_at_end,
            sink_error,
        }
    }
}

/// Where finished jobs go: one thread calls it, in completion order.
///
/// Any `FnMut(Finished) -> io::Result<()>` is a sink that needs no flush;
/// [`Pool::run`] takes such a closure, [`Pool::run_into`] any sink.
pub trait Sink<J, O> {
    /// Records one finished job (it may buffer).
    ///
    /// # Errors
    /// An I/O error stops the run.
    fn record(&mut self, finished: Finished<J, O>) -> std::io::Result<()>;

    /// Called whenever no finished job is waiting: write out what is buffered.
    ///
    /// # Errors
    /// An I/O error stops the run.
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<J, O, F> Sink<J, O> for F
where
    F: FnMut(Finished<J, O>) -> std::io::Result<()>,
{
    fn record(&mut self, finished: Finished<J, O>) -> std::io::Result<()> {
        self(finished)
    }
}

fn drain_sink<J, O, S>(
    rx: Receiver<Finished<J, O>>,
    mut sink: S,
    stop: &Stop,
) -> (u64, Option<std::io::Error>)
where
    S: Sink<J, O>,
{
    let mut written = 0;
    let mut buffered = 0;
    let mut first_error = None;
    let mut reported = false;
    let mut busy = false;
    loop {
        // While outcomes keep coming, collect them for a moment instead of
        // waking for each one; when the run is quiet, block until the next.
        let first = if busy {
            thread::sleep(SINK_BATCH);
            match rx.try_recv() {
                Ok(finished) => Some(finished),
                Err(TryRecvError::Empty) => rx.recv().ok(),
                Err(TryRecvError::Disconnected) => None,
            }
        } else {
            rx.recv().ok()
        };
        let Some(first) = first else { break };
        let mut batch = 0;
        for finished in std::iter::once(first).chain(rx.try_iter()) {
            batch += 1;
            if first_error.is_some() {
                continue;
            }
            if let Err(error) = sink.record(finished) {
                first_error = Some(error);
            } else {
                buffered += 1;
            }
        }
        busy = batch > 1;
        if first_error.is_none() {
            match sink.flush() {
                Ok(()) => written += std::mem::take(&mut buffered),
                Err(error) => first_error = Some(error),
            }
        }
        if let Some(error) = first_error.as_ref().filter(|_| !reported) {
            log::error!("cannot record outcomes, stopping: {error}");
            reported = true;
            stop.stop();
        }
    }
    if first_error.is_none() {
        match sink.flush() {
            Ok(()) => written += buffered,
            Err(error) => first_error = Some(error),
        }
    }
    (written, first_error)
}

enum Message<J> {
    Job(Tracked<J>),
    Shutdown,
}

struct Tracked<J> {
    job: J,
    attempts: u32,
    transient: u32,
    rate_limited: u32,
}

/// A job waiting out its backoff; the heap yields the earliest due first.
struct Delayed<J> {
    due: Instant,
    seq: usize,
    tracked: Tracked<J>,
}

impl<J> PartialEq for Delayed<J> {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl<J> Eq for Delayed<J> {}
impl<J> PartialOrd for Delayed<J> {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl<J> Ord for Delayed<J> {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

struct Shared<'a, W: Work> {
    work: &'a W,
    config: &'a PoolConfig,
    limiter: Limiter,
    stats: &'a Stats,
    stop: &'a Stop,
    queue_tx: Sender<Message<W::Job>>,
    queue_rx: Receiver<Message<W::Job>>,
    /// Wakes the supervisor when the last job finishes.
    done_tx: Sender<()>,
    unfinished: AtomicUsize,
    /// Workers blocked on the queue or the limiter: zero while jobs wait
    /// means the thread count is the bottleneck.
    waiting: AtomicUsize,
    delayed: Mutex<BinaryHeap<Delayed<W::Job>>>,
    next_seq: AtomicUsize,
    aborted: AtomicBool,
    /// Workers running.
    live: AtomicUsize,
    /// Workers the supervisor wants now; idle ones above it leave.
    wanted: AtomicUsize,
}

type SinkSender<W> = Sender<Finished<<W as Work>::Job, <W as Work>::Output>>;

impl<W: Work> Shared<'_, W> {
    fn worker_loop(&self, sink: SinkSender<W>, mut rng: fastrand::Rng) {
        loop {
            self.waiting.fetch_add(1, Ordering::SeqCst);
            let tracked = match self.queue_rx.recv_timeout(self.config.idle_exit) {
                Ok(Message::Job(tracked)) => tracked,
                Ok(Message::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    if self.leave_if_surplus() {
                        return;
                    }
                    continue;
                }
            };
            let cleared = if self.stop.is_stopped() {
                None
            } else {
                self.limiter.acquire(self.stop).ok()
            };
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            if let Some(reservation) = cleared {
                let handled = catch_unwind(AssertUnwindSafe(|| {
                    self.run_once(tracked, &reservation, &sink, &mut rng);
                }));
                if let Err(payload) = handled {
                    // A bug outside the job's own code: its job may be lost
                    // to this run, so stop cleanly (resumable) rather than
                    // wait for it forever.
                    log::error!(
                        "internal error, stopping the run: {}",
                        panic_message(payload.as_ref())
                    );
                    self.aborted.store(true, Ordering::SeqCst);
                    self.stop.stop();
                }
            }
            // Otherwise the run is stopping: the job stays unfinished, and a
            // resumed run does it.
        }
    }

    /// An idle worker of an auto-sized pool leaves (one always stays).
    fn leave_if_surplus(&self) -> bool {
        // The queue stayed empty for a while: in an auto-sized pool this
        // worker is not needed now; the supervisor starts more when work
        // queues up again. A fixed pool keeps its size.
        if !matches!(self.config.threads, Threads::Auto { .. }) {
            return false;
        }
        self.live
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |live| {
                (live > 1).then(|| live - 1)
            })
            .is_ok()
    }

    fn run_once(
        &self,
        mut tracked: Tracked<W::Job>,
        reservation: &Reservation,
        sink: &SinkSender<W>,
        rng: &mut fastrand::Rng,
    ) {
        let start = Instant::now();
        let attempt = catch_unwind(AssertUnwindSafe(|| self.work.attempt(&tracked.job)))
            .unwrap_or_else(|payload| {
                let message = panic_message(payload.as_ref());
                log::error!("a job panicked: {message}");
                Attempt::Failure(self.work.panicked(&tracked.job, &message))
            });
        let end = Instant::now();
        let latency = end - start;
        tracked.attempts += 1;
        self.teach_limiter(&attempt, reservation);
        match attempt {
            Attempt::Success(output) => {
                self.stats.record(AttemptKind::Success, start, end);
                self.finish(tracked, output, true, latency, sink);
            }
            Attempt::Failure(output) => {
                self.stats.record(AttemptKind::Failure, start, end);
                self.finish(tracked, output, false, latency, sink);
            }
            Attempt::Abort(output) => {
                self.stats.record(AttemptKind::Failure, start, end);
                self.finish(tracked, output, false, latency, sink);
                self.aborted.store(true, Ordering::SeqCst);
                self.stop.stop();
            }
            Attempt::RateLimited { output, .. } => {
                self.stats.record(AttemptKind::RateLimited, start, end);
                tracked.rate_limited += 1;
                if tracked.rate_limited > self.config.retry.max_rate_limited {
                    self.finish(tracked, output, false, latency, sink);
                    return;
                }
                self.enqueue(tracked);
            }
            Attempt::Transient(output) => {
                self.stats.record(AttemptKind::Transient, start, end);
                tracked.transient += 1;
                if !self.config.retry.may_retry(tracked.transient) {
                    self.finish(tracked, output, false, latency, sink);
                    return;
                }
                self.stats.record_retry();
                let backoff = self.config.retry.backoff(tracked.transient, rng);
                let now = Instant::now();
                let due = now.checked_add(backoff).unwrap_or(now);
                let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
                self.delayed.lock().push(Delayed { due, seq, tracked });
            }
        }
    }

    /// Hands what the reply said to the limiter: a rate-limit reply pauses
    /// every worker; any other reply with a status teaches it the gateway's
    /// window. Transient failures (no reply, 5xx) say nothing about pacing.
    fn teach_limiter(&self, attempt: &Attempt<W::Output>, reservation: &Reservation) {
        let now = Now::system();
        match attempt {
            Attempt::RateLimited {
                retry_after,
                output,
            } => {
                let hint = self.work.hint(output);
                log::debug!(
                    "rate limited (retry after {retry_after:?}, {hint:?}): pausing every worker"
                );
                self.limiter.rejected(*retry_after, hint.as_ref(), now);
            }
            Attempt::Success(output) | Attempt::Failure(output) => {
                self.limiter
                    .accepted(reservation, self.work.hint(output).as_ref(), now);
            }
            Attempt::Transient(_) | Attempt::Abort(_) => {}
        }
    }

    fn enqueue(&self, tracked: Tracked<W::Job>) {
        self.queue_tx
            .send(Message::Job(tracked))
            .expect("the receiver lives in Shared as long as any sender");
    }

    fn finish(
        &self,
        tracked: Tracked<W::Job>,
        output: W::Output,
        success: bool,
        latency: Duration,
        sink: &SinkSender<W>,
    ) {
        if !success {
            self.stats.record_failed_job();
        }
        let finished = Finished {
            job: tracked.job,
            output,
            success,
            attempts: tracked.attempts,
            rate_limited: tracked.rate_limited,
            latency,
        };
        // The sink thread outlives every worker (it ends when their senders drop).
        let _ = sink.send(finished);
        if self.unfinished.fetch_sub(1, Ordering::SeqCst) == 1 {
            let _ = self.done_tx.try_send(());
        }
    }

    /// Moves the retries whose backoff is over back into the queue; returns
    /// when the next one falls due.
    fn release_due(&self, now: Instant) -> Option<Instant> {
        let mut delayed = self.delayed.lock();
        while delayed.peek().is_some_and(|d| d.due <= now) {
            let due = delayed.pop().expect("peeked just above");
            self.enqueue(due.tracked);
        }
        delayed.peek().map(|d| d.due)
    }
}

struct Supervisor<'a, 'w, W: Work> {
    shared: &'a Shared<'w, W>,
    sink_tx: SinkSender<W>,
    spawned: usize,
    peak: usize,
}

impl<'a, 'w, W: Work> Supervisor<'a, 'w, W> {
    /// Starts workers, feeds due retries, sizes the pool, and sends the
    /// shutdown pills once no job is unfinished (or the run stops).
    /// Returns the most workers that ran at once, and those running at the end.
    fn supervise<'scope>(
        mut self,
        scope: &'scope Scope<'scope, '_>,
        total: usize,
        done_rx: &Receiver<()>,
    ) -> (usize, usize)
    where
        'a: 'scope,
    {
        let config = self.shared.config;
        let (initial, max, auto) = match config.threads {
            Threads::Fixed(n) => (n.get(), n.get(), false),
            Threads::Auto { max } => {
                // Enough for one second of starts; latency decides the rest.
                let first_guess = config
                    .rate
                    .map_or(max.get(), |rate| rate.per_second_f64().ceil() as usize + 1);
                (first_guess.min(max.get()), max.get(), true)
            }
        };
        self.shared.wanted.store(initial, Ordering::SeqCst);
        self.spawn(scope, initial.min(total.max(1)));
        if self.shared.live.load(Ordering::SeqCst) == 0 {
            log::error!("cannot start any worker thread; stopping");
            self.shared.aborted.store(true, Ordering::SeqCst);
            self.shared.stop.stop();
        }
        loop {
            if self.shared.unfinished.load(Ordering::SeqCst) == 0 || self.shared.stop.is_stopped() {
                break;
            }
            let now = Instant::now();
            let next_due = self.shared.release_due(now);
            if auto {
                self.resize(scope, max);
            }
            let wait = next_due.map_or(SUPERVISOR_TICK, |due| {
                due.saturating_duration_since(now).min(SUPERVISOR_TICK)
            });
            let _ = done_rx.recv_timeout(wait);
        }
        self.shared.limiter.interrupt();
        // Workers that left while idle took themselves off `live`; extra
        // pills are harmless, missing ones would hang the join.
        let live = self.shared.live.load(Ordering::SeqCst);
        for _ in 0..live {
            self.shared
                .queue_tx
                .send(Message::Shutdown)
                .expect("the receiver lives in Shared");
        }
        (self.peak, live)
    }

    /// Little's law with room for a burst: enough workers that the rate,
    /// not the thread count, bounds throughput (threads >= rate x latency),
    /// plus those a window's burst starts at once. Until a latency is known,
    /// the pool doubles whenever every worker is busy while jobs wait.
    fn resize<'scope>(&mut self, scope: &'scope Scope<'scope, '_>, max: usize)
    where
        'a: 'scope,
    {
        let shared = self.shared;
        let live = shared.live.load(Ordering::SeqCst);
        let queued = !shared.queue_rx.is_empty();
        let mut wanted = shared.wanted.load(Ordering::SeqCst);
        match (shared.limiter.rate(), shared.stats.latency_estimate()) {
            (Some(rate), Some(latency)) => {
                // A window's starts come within its first half second.
                let burst = match shared.limiter.mode() {
                    LimiterMode::Windows { budget, .. } => budget as usize / 2,
                    _ => 1,
                };
                let in_flight = rate.per_second_f64() * latency.as_secs_f64() * 1.2;
                wanted = (in_flight.ceil() as usize + burst + 1).clamp(1, max);
            }
            _ => {
                // No latency known yet (or no rate): double while every
                // worker is busy and jobs wait.
                let starved = shared.waiting.load(Ordering::SeqCst) == 0 && queued;
                if starved && live >= wanted {
                    wanted = (live * 2).clamp(1, max);
                }
            }
        }
        shared.wanted.store(wanted, Ordering::SeqCst);
        // Only for jobs no waiting worker will take: a lone retry back in
        // the queue does not regrow an idle pool.
        let backlog = shared
            .queue_rx
            .len()
            .saturating_sub(shared.waiting.load(Ordering::SeqCst));
        if live < wanted && backlog > 0 {
            self.spawn(scope, (wanted - live).min(backlog));
        }
    }

    fn spawn<'scope>(&mut self, scope: &'scope Scope<'scope, '_>, count: usize)
    where
        'a: 'scope,
    {
        for _ in 0..count {
            let index = self.spawned;
            let shared = self.shared;
            let sink = self.sink_tx.clone();
            let rng = fastrand::Rng::with_seed(self.shared.config.seed.wrapping_add(index as u64));
            shared.live.fetch_add(1, Ordering::SeqCst);
            let spawned = thread::Builder::new()
                .name(format!("worker-{index}"))
                .spawn_scoped(scope, move || shared.worker_loop(sink, rng));
            match spawned {
                Ok(_) => self.spawned += 1,
                Err(error) => {
                    shared.live.fetch_sub(1, Ordering::SeqCst);
                    log::warn!("cannot start worker {index}: {error}; going on with fewer");
                    return;
                }
            }
        }
        self.peak = self.peak.max(self.shared.live.load(Ordering::SeqCst));
        log::debug!("{} workers", self.shared.live.load(Ordering::SeqCst));
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panic with a non-text payload".to_string()
    }
}

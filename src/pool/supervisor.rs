//! The supervisor: starts the workers, feeds due retries from the delay heap
//! back into the queue, resizes an auto-sized pool, and sends the shutdown
//! pills once the books hold no unfinished job (or the run stops).

use super::engine::{Engine, SinkSender};
use super::feed::{Feed, Source};
use super::sizing::{self, Demand, Load, SizePlan};
use super::summary::{AbortReason, LongPause};
use super::work::Work;
use crate::limiter::{PacingModel, PauseReason};
use std::thread::{self, Scope};
use std::time::{Duration, Instant, SystemTime};

/// How often the supervisor looks at the queue, the retry heap and the stop signal.
const SUPERVISOR_TICK: Duration = Duration::from_millis(10);

/// How many workers a run had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Headcount {
    /// The most that ran at once.
    pub(super) peak: usize,
    /// Those running when the last job finished (or the run stopped).
    pub(super) at_end: usize,
}

/// Ends the run if the supervisor unwinds (a panic in the caller's job
/// iterator, which the feed pulls): without the pills the scope would wait
/// for the workers for ever. The panic goes on to the caller.
struct ShutDownOnUnwind<'a, 'w, W: Work>(&'a Engine<'w, W>);

impl<W: Work> Drop for ShutDownOnUnwind<'_, '_, W> {
    fn drop(&mut self) {
        if thread::panicking() {
            let engine = self.0;
            engine.halt.abort(AbortReason::Internal(
                "the supervisor panicked (in the job iterator?)".into(),
            ));
            engine.limiter.interrupt();
            engine.queue.shut_down(engine.sizing.live());
        }
    }
}

/// Moves jobs from `feed` into the queue; a source that failed (a job
/// iterator that panicked on its own thread) aborts the run.
fn top_up<W: Work, J: Source<Job = W::Job>>(engine: &Engine<'_, W>, feed: &mut Feed<J>) {
    feed.top_up(&engine.queue, &engine.books);
    if let Some(why) = feed.take_failure() {
        // The iterator's panic may quote a job.
        let why = engine.work.redact(&why).into_owned();
        log::error!("{why}; stopping");
        engine.halt.abort(AbortReason::Internal(why));
    }
}

/// Ends the run if every start is held longer than it may wait
/// ([`PoolConfig::longest_pause`](super::PoolConfig::longest_pause)).
fn stop_for_long_pause<W: Work>(engine: &Engine<'_, W>, pause: Option<(PauseReason, SystemTime)>) {
    let (Some(longest), Some((reason, until))) = (engine.config.longest_pause, pause) else {
        return;
    };
    let left = until
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    if left > longest {
        log::warn!(
            "every request is held for {:.0} s ({reason}), longer than the longest pause allowed ({:.0} s): stopping",
            left.as_secs_f64(),
            longest.as_secs_f64()
        );
        engine.halt.pause_out(LongPause::new(reason, until));
    }
}

/// The supervisor of one run, on the thread that called
/// [`Pool::run_into`](super::Pool::run_into).
pub(super) struct Supervisor<'a, 'w, W: Work> {
    engine: &'a Engine<'w, W>,
    sink_tx: SinkSender<W>,
    /// Workers started so far (numbers their threads and seeds).
    spawned: usize,
    peak: usize,
}

impl<'a, 'w, W: Work> Supervisor<'a, 'w, W> {
    /// A supervisor whose workers send finished jobs down `sink_tx`.
    pub(super) fn new(engine: &'a Engine<'w, W>, sink_tx: SinkSender<W>) -> Self {
        Supervisor {
            engine,
            sink_tx,
            spawned: 0,
            peak: 0,
        }
    }

    /// Runs the jobs of `feed` to the end; see the module docs. Drops its
    /// sink sender when it returns; the workers drop theirs as they end.
    pub(super) fn supervise<'scope, J>(
        mut self,
        scope: &'scope Scope<'scope, '_>,
        feed: &mut Feed<J>,
    ) -> Headcount
    where
        'a: 'scope,
        J: Source<Job = W::Job>,
    {
        let engine = self.engine;
        let _unwinding = ShutDownOnUnwind(engine);
        let plan = SizePlan::new(engine.config.threads, engine.config.rate);
        engine.sizing.set_wanted(plan.initial);
        top_up(engine, feed);
        self.spawn(scope, plan.initial.min(engine.queue.len().max(1)));
        if engine.sizing.live() == 0 {
            log::error!("cannot start any worker thread; stopping");
            engine.halt.abort(AbortReason::Internal(
                "cannot start any worker thread".into(),
            ));
        }
        // Every job fed and none unfinished, or the run stops.
        while !(engine.halt.is_stopped() || feed.done() && engine.books.all_closed()) {
            let now = Instant::now();
            let next_due = engine.release_due(now);
            top_up(engine, feed);
            if plan.auto {
                self.resize(scope, plan.max);
            } else {
                // A fixed pool larger than the backlog first got workers
                // for the jobs queued then: the rest come as jobs do.
                let short = plan.max.saturating_sub(engine.sizing.live());
                let more = short.min(engine.queue.len());
                if more > 0 {
                    self.spawn(scope, more);
                }
            }
            let wait = next_due.map_or(SUPERVISOR_TICK, |due| {
                due.saturating_duration_since(now).min(SUPERVISOR_TICK)
            });
            engine.books.wait_for_last(wait);
            let status = engine.limiter.status();
            stop_for_long_pause(engine, status.pause);
            engine.stats.set_pacing(status);
        }
        engine.stats.set_pacing(engine.limiter.status());
        engine.limiter.interrupt();
        // Workers that left while idle took themselves off `live`; extra
        // pills are harmless, missing ones would hang the join.
        let live = engine.sizing.live();
        engine.queue.shut_down(live);
        Headcount {
            peak: self.peak,
            at_end: live,
        }
    }

    /// Sets the workers wanted (see [`sizing::wanted`]) and starts those
    /// the queue has jobs for.
    fn resize<'scope>(&mut self, scope: &'scope Scope<'scope, '_>, max: usize)
    where
        'a: 'scope,
    {
        let engine = self.engine;
        let load = Load {
            live: engine.sizing.live(),
            waiting: engine.sizing.waiting(),
            queued: engine.queue.len(),
        };
        let demand = match (engine.limiter.rate(), engine.stats.latency_estimate()) {
            (Some(rate), Some(latency)) => Some(Demand {
                // On a shared schedule this process starts only its share:
                // sized for the whole rate, each of P processes would run P
                // times the threads it needs (measured: 1200 each, 4 at
                // 1000/s, the machine saturated by them).
                per_second: rate.per_second_f64() * engine.limiter.share_of_rate(),
                latency,
                window_budget: match engine.limiter.pacing_model() {
                    PacingModel::Windows { budget, .. } => Some(budget),
                    _ => None,
                },
            }),
            // No latency known yet (or no rate).
            _ => None,
        };
        let wanted = sizing::wanted(load, engine.sizing.wanted(), demand, max);
        engine.sizing.set_wanted(wanted);
        let more = sizing::to_start(load, wanted);
        if more > 0 {
            self.spawn(scope, more);
        }
    }

    /// Starts up to `count` workers; stops at the first the system refuses.
    fn spawn<'scope>(&mut self, scope: &'scope Scope<'scope, '_>, count: usize)
    where
        'a: 'scope,
    {
        let engine = self.engine;
        for _ in 0..count {
            let index = self.spawned;
            let sink = self.sink_tx.clone();
            let rng = fastrand::Rng::with_seed(engine.config.seed.wrapping_add(index as u64));
            engine.sizing.joined();
            let spawned = thread::Builder::new()
                .name(format!("worker-{index}"))
                .spawn_scoped(scope, move || engine.worker_guarded(sink, rng));
            match spawned {
                Ok(_) => self.spawned += 1,
                Err(error) => {
                    engine.sizing.not_started();
                    log::warn!("cannot start worker {index}: {error}; going on with fewer");
                    return;
                }
            }
        }
        self.peak = self.peak.max(engine.sizing.live());
        log::debug!("{} workers", engine.sizing.live());
    }
}

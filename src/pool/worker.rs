//! The worker loop: take a job, wait for the limiter, try it, and settle
//! what the try says (finished, back in the queue, or into the delay heap).
//!
//! A panic inside a job is that job's failure, not a dead worker; a panic
//! anywhere else in the loop (the caller's budget counter or shared schedule
//! included) aborts the run cleanly rather than leaving a job the books wait
//! for forever.

use super::engine::{Engine, SinkSender};
use super::first_try::Turn;
use super::queue::{Message, Tracked};
use super::summary::AbortReason;
use super::work::{Attempt, Finished, Work};
use crate::limiter::{Backoff, Now, Reservation, SendingFor};
use crate::stats::AttemptKind;
use crossbeam_channel::RecvTimeoutError;
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// The longest wait a transient failure's `Retry-After` (a 503's) gives its
/// job before the next try; the other jobs go on meanwhile.
const LONGEST_ASKED_WAIT: Duration = Duration::from_secs(3600);

/// The shortest wait for a job before an idle worker looks again: a zero
/// `idle_exit` would spin the fixed pool's idle workers on the queue.
const MIN_IDLE_EXIT: Duration = Duration::from_millis(10);

impl<W: Work> Engine<'_, W> {
    /// [`Engine::worker_loop`], stopping the run cleanly if it panics
    /// outside a job's own code (a budget counter or shared schedule of the
    /// caller's, or ours): the worker's job is lost to this run, and the
    /// supervisor would otherwise wait for it for ever.
    pub(super) fn worker_guarded(&self, sink: SinkSender<W>, rng: fastrand::Rng) {
        let looped = catch_unwind(AssertUnwindSafe(|| self.worker_loop(sink, rng)));
        if let Err(payload) = looped {
            let message = self
                .work
                .redact(&panic_message(payload.as_ref()))
                .into_owned();
            log::error!("internal error in a worker, stopping the run: {message}");
            self.halt.abort(AbortReason::Internal(message));
        }
    }

    /// One worker: runs jobs until it takes a shutdown pill, or leaves an
    /// auto-sized pool that has no job for it.
    fn worker_loop(&self, sink: SinkSender<W>, mut rng: fastrand::Rng) {
        let sending = self.limiter.departure_mark().map(SendingFor::new);
        let idle_exit = self.config.idle_exit.max(MIN_IDLE_EXIT);
        loop {
            self.sizing.begin_wait();
            let tracked = match self.queue.recv_timeout(idle_exit) {
                Ok(Message::Job(tracked)) => {
                    if self.queue.running_low() {
                        self.books.ring();
                    }
                    tracked
                }
                Ok(Message::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                    self.sizing.end_wait();
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.sizing.end_wait();
                    if self.sizing.leave_if_surplus() {
                        return;
                    }
                    continue;
                }
            };
            // Waiting for the limiter counts as waiting: the worker is free
            // for a job, so the thread count is not the bottleneck.
            let turn = self.first_try.turn(self.halt.stop());
            let cleared = if self.halt.is_stopped() || turn.is_none() {
                None
            } else {
                self.limiter.acquire(self.halt.stop()).ok()
            };
            self.sizing.end_wait();
            if let (Some(sending), Some(reservation)) = (&sending, &cleared) {
                sending.started(reservation);
            }
            // The budget is taken at the start the limiter cleared, so the
            // starts it allows are the first ones in time; a worker cleared
            // later finds it spent and ends the run.
            match cleared {
                Some(reservation) if self.budget.take() => {
                    self.run_guarded(tracked, &reservation, &sink, &mut rng);
                }
                Some(_) => self.halt.spend_out(),
                None => {}
            }
            if turn == Some(Turn::First) {
                self.first_try.end();
            }
            // Unless it ran, the run is stopping: the job stays unfinished,
            // and a resumed run does it.
        }
    }

    /// [`Engine::run_once`], aborting the run if the engine's own code panics.
    fn run_guarded(
        &self,
        tracked: Tracked<W::Job>,
        reservation: &Reservation,
        sink: &SinkSender<W>,
        rng: &mut fastrand::Rng,
    ) {
        let handled = catch_unwind(AssertUnwindSafe(|| {
            self.run_once(tracked, reservation, sink, rng);
        }));
        if let Err(payload) = handled {
            // A bug outside the job's own code: its job may be lost to this
            // run, so stop cleanly (resumable) rather than wait for it forever.
            let message = self
                .work
                .redact(&panic_message(payload.as_ref()))
                .into_owned();
            log::error!("internal error, stopping the run: {message}");
            self.halt.abort(AbortReason::Internal(message));
        }
    }

    /// One try of a job, and what follows from it.
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
                let message = self
                    .work
                    .redact(&panic_message(payload.as_ref()))
                    .into_owned();
                log::error!("a job panicked: {message}");
                Attempt::Failure(self.work.panicked(&tracked.job, &message))
            });
        let end = Instant::now();
        tracked.attempts += 1;
        let backoff = self.teach_limiter(&attempt, reservation);
        self.settle(tracked, (attempt, backoff), (start, end), sink, rng);
    }

    /// Records the try that ran from `start` to `end` and moves its job on:
    /// to the sink, back into the queue, or into the delay heap.
    fn settle(
        &self,
        mut tracked: Tracked<W::Job>,
        (attempt, backoff): (Attempt<W::Output>, Option<Backoff>),
        (start, end): (Instant, Instant),
        sink: &SinkSender<W>,
        rng: &mut fastrand::Rng,
    ) {
        let latency = end - start;
        match attempt {
            Attempt::Success(output) => {
                self.stats.record(AttemptKind::Success, start, end);
                self.finish(tracked, output, true, latency, sink);
            }
            Attempt::Failure(output) => {
                self.stats.record(AttemptKind::Failure, start, end);
                self.finish(tracked, output, false, latency, sink);
            }
            Attempt::Abort(_) => {
                // Not this job's fault (the key was refused): it stays without
                // an outcome, like every job the stop leaves, so a resumed run
                // sends it.
                self.stats.record(AttemptKind::Failure, start, end);
                self.halt.abort(AbortReason::Job);
            }
            Attempt::RateLimited { output, .. } => {
                self.stats.record(AttemptKind::RateLimited, start, end);
                tracked.rate_limited += 1;
                if tracked.rate_limited > self.config.retry.max_rate_limited {
                    self.finish(tracked, output, false, latency, sink);
                    return;
                }
                match backoff {
                    // A spacing error: only this job waits.
                    Some(Backoff::Job { until }) => self.delays.push(until, tracked),
                    // Every worker waits in the limiter anyway.
                    _ => self.queue.push(tracked),
                }
            }
            Attempt::Transient(output) => {
                self.stats.record(AttemptKind::Transient, start, end);
                tracked.transient += 1;
                if !self.config.retry.may_retry(tracked.transient) {
                    self.finish(tracked, output, false, latency, sink);
                    return;
                }
                self.stats.record_retry();
                let asked = self.work.retry_after(&output).unwrap_or_default();
                let asked = asked.min(LONGEST_ASKED_WAIT);
                let backoff = self.config.retry.backoff(tracked.transient, rng).max(asked);
                let now = Instant::now();
                self.delays
                    .push(crate::limiter::later(now, backoff), tracked);
            }
        }
    }

    /// Hands what the reply said to the limiter: for a rate-limit reply it
    /// says who waits (this job, or every worker); any other reply with a
    /// status teaches it the gateway's window. Transient failures (no
    /// reply, 5xx) say nothing about pacing.
    fn teach_limiter(
        &self,
        attempt: &Attempt<W::Output>,
        reservation: &Reservation,
    ) -> Option<Backoff> {
        let now = Now::system();
        match attempt {
            Attempt::RateLimited {
                retry_after,
                output,
            } => {
                let hint = self.work.hint(output);
                let backoff = self
                    .limiter
                    .rejected(reservation, *retry_after, hint.as_ref(), now);
                log::debug!("rate limited (retry after {retry_after:?}, {hint:?}): {backoff:?}");
                Some(backoff)
            }
            Attempt::Success(output) | Attempt::Failure(output) => {
                self.limiter
                    .accepted(reservation, self.work.hint(output).as_ref(), now);
                None
            }
            Attempt::Transient(_) | Attempt::Abort(_) => None,
        }
    }

    /// Hands the job with its terminal outcome to the sink and closes it in
    /// the books.
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
        self.books.close_one();
    }
}

/// The text a panic was raised with.
pub(super) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panic with a non-text payload".to_string()
    }
}

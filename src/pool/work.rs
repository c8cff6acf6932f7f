//! What the pool runs: the [`Work`] trait, how one try of a job ends
//! ([`Attempt`]), and a job with its terminal outcome ([`Finished`]).

use crate::limiter::GatewayHint;
use std::borrow::Cow;
use std::time::Duration;

/// How one try of a job ended.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
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
    /// Failed so that no other job can succeed (a rejected key): stop the
    /// whole run. The job gets no outcome (the output is dropped): it was not
    /// processed, so it stays unfinished like the jobs the stop leaves, and a
    /// resumed run sends it.
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

    /// The output to record when [`Work::attempt`] panicked with `message`
    /// (passed through [`Work::redact`] first).
    fn panicked(&self, job: &Self::Job, message: &str) -> Self::Output;

    /// `text`, a panic's message that the pool logs or ends the run with,
    /// with the secrets this work holds hidden: a panic in a transport may
    /// quote a request's URL, key and all. Defaults to the text as it is.
    fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        Cow::Borrowed(text)
    }

    /// What the reply behind `output` said about the gateway's limits (its
    /// rate-limit headers), for the limiter to learn from. Defaults to none.
    fn hint(&self, _output: &Self::Output) -> Option<GatewayHint> {
        None
    }

    /// How long the service asked to wait before the next try of a job
    /// whose try was [`Attempt::Transient`] (a 503's `Retry-After`): the
    /// retry waits at least that, however short the policy's backoff.
    /// Defaults to none.
    fn retry_after(&self, _output: &Self::Output) -> Option<Duration> {
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

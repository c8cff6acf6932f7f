//! How a pool run ended: [`PoolSummary`], with its [`Ending`].

use crate::limiter::{date_time, PauseReason};
use crate::stats::StatsReport;
use std::fmt;
use std::io;
use std::time::SystemTime;

/// How a pool run ended.
#[derive(Debug)]
#[non_exhaustive]
pub struct PoolSummary {
    /// The statistics at the end.
    pub report: StatsReport,
    /// Jobs handed to the sink.
    pub finished: u64,
    /// Jobs without a recorded outcome (stopped or aborted runs, sink errors).
    /// Jobs never taken from the iterator are counted when its size hint
    /// has an upper bound; without one (an endless stream, a channel) only
    /// its lower bound is, since draining it might never end.
    pub unfinished: u64,
    /// Why the run ended.
    pub ending: Ending,
    /// The most workers that ran at once.
    pub peak_threads: usize,
    /// Workers still running when the last job finished.
    pub threads_at_end: usize,
}

/// Why a pool run ended. When several causes meet (a refused key while the
/// outcome file fills up), the first of this list wins: [`Ending::Aborted`],
/// then [`Ending::SinkFailed`], then [`Ending::BudgetSpent`], then
/// [`Ending::LongPause`], then [`Ending::Stopped`].
///
/// # Examples
///
/// ```
/// use restb::pool::{Ending, PoolSummary};
///
/// fn exit_code(summary: &PoolSummary) -> i32 {
///     match &summary.ending {
///         Ending::Completed if summary.report.failed == 0 => 0,
///         Ending::Stopped => 130,
///         Ending::SinkFailed { message, .. } => {
///             eprintln!("outcomes lost: {message}");
///             1
///         }
///         // Failed jobs, an abort, or an ending added in a later version.
///         _ => 1,
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ending {
    /// Every job reached a terminal outcome and the sink recorded it (some
    /// outcomes may be failures: see [`StatsReport::failed`]).
    Completed,
    /// The [`Stop`](crate::stop::Stop) was given before every job finished:
    /// requests in flight finished, the rest are unfinished.
    Stopped,
    /// The budget of starts ([`PoolConfig::budget`](super::PoolConfig::budget))
    /// was spent before every job finished: the tries in flight finished,
    /// the jobs left (the one that could not start included) are unfinished.
    BudgetSpent,
    /// Every start was held longer than
    /// [`PoolConfig::longest_pause`](super::PoolConfig::longest_pause) (a
    /// spent day or month quota, a `Retry-After` of an hour): the tries in
    /// flight finished, the jobs left are unfinished, to be sent after
    /// `pause.until`.
    LongPause(LongPause),
    /// The run stopped itself: no further job could succeed.
    Aborted {
        /// What made it stop.
        reason: AbortReason,
    },
    /// The sink returned an error; the run stopped at the first one.
    SinkFailed {
        /// The error's kind.
        kind: io::ErrorKind,
        /// The error's message.
        message: String,
    },
}

/// A pause of every start that outlasted what the run may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LongPause {
    /// Why every start is held.
    pub reason: PauseReason,
    /// When the pause ends (wall clock).
    pub until: SystemTime,
}

impl LongPause {
    /// A pause for `reason` until `until`.
    pub fn new(reason: PauseReason, until: SystemTime) -> LongPause {
        LongPause { reason, until }
    }
}

/// What made a run abort.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AbortReason {
    /// A job's try returned [`Attempt::Abort`](super::Attempt::Abort) (the
    /// service refused the key); that job, like the others left, has no outcome.
    Job,
    /// The engine itself failed (a panic outside a job's own code, or no
    /// worker thread could start); the message says how, and was logged.
    Internal(String),
}

impl Ending {
    /// The ending of a run that was aborted for `abort` (if it was), whose
    /// sink failed with `sink_error` (if it did), stopped at its budget (if
    /// `budget_spent`), and left `unfinished` jobs, or maybe more jobs in an
    /// iterator it did not see to its end (`maybe_more`); a `long_pause`
    /// stopped it if given.
    pub(super) fn of(
        abort: Option<AbortReason>,
        sink_error: Option<&io::Error>,
        (budget_spent, long_pause): (bool, Option<LongPause>),
        unfinished: u64,
        maybe_more: bool,
    ) -> Ending {
        let unfinished = unfinished + u64::from(maybe_more);
        match (abort, sink_error) {
            (Some(reason), _) => Ending::Aborted { reason },
            (None, Some(error)) => Ending::SinkFailed {
                kind: error.kind(),
                message: error.to_string(),
            },
            (None, None) if unfinished > 0 && budget_spent => Ending::BudgetSpent,
            (None, None) if unfinished > 0 => long_pause.map_or(Ending::Stopped, Ending::LongPause),
            (None, None) => Ending::Completed,
        }
    }
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ending::Completed => f.write_str("completed"),
            Ending::Stopped => f.write_str("stopped before every job finished"),
            Ending::BudgetSpent => f.write_str("the budget of requests was spent"),
            Ending::LongPause(pause) => write!(
                f,
                "every request was held until {} ({}), longer than the run may wait",
                date_time(pause.until),
                pause.reason
            ),
            Ending::Aborted {
                reason: AbortReason::Job,
            } => f.write_str("aborted: a job said no other can succeed"),
            Ending::Aborted {
                reason: AbortReason::Internal(message),
            } => write!(f, "aborted: internal error: {message}"),
            Ending::SinkFailed { message, .. } => write!(f, "cannot record outcomes: {message}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_abort_outranks_a_sink_error_which_outranks_a_stop() {
        let disk_full = io::Error::other("disk full");
        assert_eq!(
            Ending::of(
                Some(AbortReason::Job),
                Some(&disk_full),
                (true, None),
                3,
                false
            ),
            Ending::Aborted {
                reason: AbortReason::Job
            }
        );
        assert_eq!(
            Ending::of(None, Some(&disk_full), (true, None), 3, false),
            Ending::SinkFailed {
                kind: io::ErrorKind::Other,
                message: "disk full".into()
            }
        );
        let pause = LongPause::new(PauseReason::QuotaSpent, SystemTime::UNIX_EPOCH);
        assert_eq!(
            Ending::of(None, None, (true, Some(pause)), 3, false),
            Ending::BudgetSpent
        );
        assert_eq!(
            Ending::of(None, None, (false, Some(pause)), 3, false),
            Ending::LongPause(pause)
        );
        assert_eq!(
            Ending::of(None, None, (false, None), 3, false),
            Ending::Stopped
        );
        assert_eq!(
            Ending::of(None, None, (false, None), 0, false),
            Ending::Completed
        );
        assert_eq!(
            Ending::of(None, None, (false, None), 0, true),
            Ending::Stopped,
            "an iterator not seen to its end may hold more"
        );
    }

    #[test]
    fn a_sink_error_on_the_last_flush_is_not_hidden_by_a_full_count() {
        let error = io::Error::new(io::ErrorKind::WriteZero, "short write");
        assert!(matches!(
            Ending::of(None, Some(&error), (false, None), 0, false),
            Ending::SinkFailed {
                kind: io::ErrorKind::WriteZero,
                ..
            }
        ));
    }

    #[test]
    fn an_abort_by_the_last_job_is_still_an_abort() {
        let reason = AbortReason::Internal("no worker thread".into());
        assert_eq!(
            Ending::of(Some(reason.clone()), None, (false, None), 0, false),
            Ending::Aborted { reason }
        );
    }
}

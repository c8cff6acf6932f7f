//! What a rate-limit reply means for the pool: this job waits (a spacing
//! error), or every start waits (a spent window), and why.

use std::fmt;
use std::time::Instant;

/// Why every start is held back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PauseReason {
    /// A `Retry-After` longer than a window.
    RetryAfter,
    /// The one-second window is spent (`Remaining` 0 with window headers).
    WindowSpent,
    /// A longer window (minute, hour, month...) is spent.
    QuotaSpent,
    /// 429s kept coming with nothing accepted between them.
    Persistent,
    /// Another process on the shared schedule paused it (for one of the
    /// reasons above).
    OtherProcess,
}

impl fmt::Display for PauseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PauseReason::RetryAfter => "429, Retry-After",
            PauseReason::WindowSpent => "429, window spent",
            PauseReason::QuotaSpent => "quota spent",
            PauseReason::Persistent => "429s in a row",
            PauseReason::OtherProcess => "set by another process on this key",
        })
    }
}

/// What the pool does with a job whose request drew a 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backoff {
    /// A spacing error: only this job waits until `until`, then queues
    /// again; the other workers go on.
    Job {
        /// When the job may queue again.
        until: Instant,
    },
    /// The limiter holds every start until `until`: the job queues again at
    /// once and waits in the limiter with the others.
    Everyone {
        /// When starts resume.
        until: Instant,
        /// Why.
        reason: PauseReason,
    },
}

impl Backoff {
    /// When the job may be tried again.
    pub fn until(&self) -> Instant {
        match self {
            Backoff::Job { until } | Backoff::Everyone { until, .. } => *until,
        }
    }
}

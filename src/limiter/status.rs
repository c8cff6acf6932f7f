//! What the limiter is doing, in one value that the statistics, the
//! progress bar and `--stats-json` read.

use super::backoff::PauseReason;
use super::rate::Rate;
use std::time::{Duration, SystemTime};

/// A snapshot of the limiter for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct PacingStatus {
    /// The rate in force (the allotted one less what persisting 429s cut);
    /// `None` when not pacing.
    pub rate_in_force: Option<Rate>,
    /// How many times 429s that persisted at the paced rate cut the rate
    /// in force (another client on the key, or an allotment below the rate
    /// the limiter was given).
    pub rate_cuts: u32,
    /// How long every start was held by pauses in all.
    pub paused_total: Duration,
    /// The pause in force: why, and when it ends on the wall clock.
    pub pause: Option<(PauseReason, SystemTime)>,
}

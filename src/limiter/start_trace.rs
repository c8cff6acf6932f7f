//! The limiter's trace of each start (see [`StartTrace`]).

/// The log target of the lines: `RUST_LOG=restb::limiter::start=trace`.
pub(super) const TARGET: &str = "restb::limiter::start";

/// One start, traced to see where a schedule's starts fall behind
/// (`scripts/lib/start_trace.py`): how long after each bound it came (its
/// slot; the gap after our own previous start and after the latest one
/// another holder told of; `none` when there is none), in microseconds,
/// and its time on the wall clock, to set beside a gateway's log. Written
/// after the start is told, not before: a slow write would be counted as
/// the start's delay.
pub(super) struct StartTrace {
    pub(super) seq: Option<u64>,
    pub(super) wall: std::time::SystemTime,
    pub(super) after_slot_us: i128,
    pub(super) after_own_us: Option<i128>,
    pub(super) after_other_us: Option<i128>,
    pub(super) gap_us: u64,
}

impl std::fmt::Display for StartTrace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let field = |value: Option<String>| value.unwrap_or_else(|| "none".to_string());
        let wall_us = self
            .wall
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_micros());
        write!(
            f,
            "start seq {} wall_us {wall_us} after_slot_us {} after_own_us {} after_other_us {} \
             gap_us {}",
            field(self.seq.map(|seq| seq.to_string())),
            self.after_slot_us,
            field(self.after_own_us.map(|us| us.to_string())),
            field(self.after_other_us.map(|us| us.to_string())),
            self.gap_us,
        )
    }
}

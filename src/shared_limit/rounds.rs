//! Rounds of rejections, told to every process on the schedule (Redis
//! pub/sub).
//!
//! A leaky bucket with no burst refuses a request that reaches it a few
//! microseconds less than an interval after the one before, whoever sent
//! either: the jitter that drew one process a 429 spaces every process's
//! starts. Each process widens its pacing margin for a round of rejections;
//! alone, each of P processes learned the jitter for itself at the start of
//! a run (measured: 8 processes at 100/s on the mock's leaky bucket drew 11
//! of their 12 429s in the first 2.5 s, each 1-200 us short of the
//! interval). So a round is told to the others (fire and forget, on the
//! publishing connection of `starts.rs`) with the start of the request that
//! drew it, in Redis's time; a round whose request started before the
//! latest round known here (told or heard) is that same round, counted once.

use super::client::Inner;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

/// The rounds heard from the others, and the latest round known.
#[derive(Debug)]
pub(super) struct Rounds {
    heard: AtomicU64,
    /// When the latest round known was told, in microseconds of Redis's
    /// clock (`i64::MIN`: none yet).
    latest_us: AtomicI64,
}

impl Rounds {
    pub(super) fn new() -> Rounds {
        Rounds {
            heard: AtomicU64::new(0),
            latest_us: AtomicI64::new(i64::MIN),
        }
    }

    /// Rounds the other processes told of.
    pub(super) fn heard(&self) -> u64 {
        self.heard.load(Ordering::Acquire)
    }

    /// Whether a round whose first rejected request started at
    /// `started_us` is a new one; if so it is the latest, told at `told_us`.
    fn fresh(&self, started_us: i64, told_us: i64) -> bool {
        self.latest_us
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |latest| {
                (started_us > latest).then_some(latest.max(told_us))
            })
            .is_ok()
    }
}

/// The pub/sub channel of a schedule's rounds.
pub(super) fn channel(inner: &Inner) -> String {
    inner.config.key.part("rounds")
}

/// Tells the others that a request of ours started at `started` drew a new
/// round of rejections. Never blocks on Redis.
pub(super) fn publish(inner: &Inner, started: Instant) {
    let (Some(started_us), Some(told_us)) =
        (inner.redis_time(started), inner.redis_time(Instant::now()))
    else {
        return;
    };
    if !inner.rounds.fresh(started_us, told_us) {
        return;
    }
    let command = redis::cmd("PUBLISH")
        .arg(channel(inner))
        .arg(format!("{} {started_us} {told_us}", inner.id))
        .get_packed_command();
    inner.starts.send(&command);
}

/// Another process's message on the rounds channel (`ID STARTED_US
/// TOLD_US`), after its id.
pub(super) fn hear(inner: &Inner, text: &str) {
    let Some((started, told)) = text.split_once(' ') else {
        return;
    };
    let (Ok(started_us), Ok(told_us)) = (started.parse::<i64>(), told.parse::<i64>()) else {
        return;
    };
    // A teller whose clock mapping went wrong must not date the latest
    // round in the future: every round until then would be its.
    let told_us = inner
        .redis_time(Instant::now())
        .map_or(told_us, |now_us| told_us.min(now_us));
    if inner.rounds.fresh(started_us, told_us) {
        inner.rounds.heard.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_whose_request_started_before_the_latest_is_the_same_round() {
        let rounds = Rounds::new();
        assert!(rounds.fresh(1_000, 1_500), "the first round");
        assert!(!rounds.fresh(1_400, 1_600), "started before it was told");
        assert!(!rounds.fresh(1_500, 1_600));
        assert!(rounds.fresh(1_501, 1_700), "started after: a new round");
        assert!(!rounds.fresh(1_650, 1_800));
    }
}

//! The books of pauses: how long every start was held in all, why, and until
//! when; a long pause is said aloud (a run that waits an hour must not look
//! hung).

use super::backoff::PauseReason;
use super::clock::Now;
use std::time::{Duration, Instant, SystemTime};

/// A pause longer than this logs a warning with its reason and end.
pub(super) const LOUD_PAUSE: Duration = Duration::from_secs(5);
/// A pause read back from the shared schedule that ends this close after
/// the one recorded is the one recorded (times mapped from Redis's clock
/// differ by tens of microseconds).
const OWN_PAUSE_ECHO: Duration = Duration::from_millis(50);

/// See the module docs.
#[derive(Debug, Clone, Default)]
pub(super) struct PauseRecord {
    until: Option<Instant>,
    until_wall: Option<SystemTime>,
    reason: Option<PauseReason>,
    total: Duration,
}

impl PauseRecord {
    /// Books a pause decided at `now` until `until` (the time beyond what
    /// earlier pauses already held counts once).
    pub(super) fn record(&mut self, until: Instant, reason: PauseReason, now: Now) {
        self.record_said(until, None, reason, now);
    }

    /// [`PauseRecord::record`] of a pause that stops short of the end the
    /// gateway `said` (a spent quota's: at most an hour before the next
    /// try), which is the end the pause in force reports.
    pub(super) fn record_said(
        &mut self,
        until: Instant,
        said: Option<SystemTime>,
        reason: PauseReason,
        now: Now,
    ) {
        let held_from = self.until.map_or(now.instant, |u| u.max(now.instant));
        if until <= held_from {
            return;
        }
        self.total += until - held_from;
        self.until = Some(until);
        let wall = now.wall + (until - now.instant);
        self.until_wall = Some(said.map_or(wall, |said| said.max(wall)));
        self.reason = Some(reason);
        let length = until - now.instant;
        if length > LOUD_PAUSE {
            let resets = said
                .filter(|said| *said > wall + LOUD_PAUSE)
                .map_or(String::new(), |said| {
                    format!("; the gateway resets it at {}", date_time(said))
                });
            log::warn!(
                "pausing every request for {:.0} s, until {} ({reason}){resets}",
                length.as_secs_f64(),
                clock_time(wall)
            );
        }
    }

    /// A pause that another process on the shared schedule set, read back
    /// with a slot: said and counted like ours, unless it is ours come back
    /// (its end within the clock mapping's error of the one recorded).
    pub(super) fn record_others(&mut self, until: Instant, now: Now) {
        if self
            .until
            .is_some_and(|known| until <= known + OWN_PAUSE_ECHO)
        {
            return;
        }
        self.record(until, PauseReason::OtherProcess, now);
    }

    /// Seconds every start was held in all by `now` (pauses that overlap
    /// count once; a pause still running counts so far, not to its end: a
    /// run stopped during an hour's pause did not wait the hour).
    pub(super) fn total(&self, now: Instant) -> Duration {
        let ahead = self
            .until
            .map_or(Duration::ZERO, |until| until.saturating_duration_since(now));
        self.total.saturating_sub(ahead)
    }

    /// The pause in force at `now`: why, and when it ends on the wall clock.
    pub(super) fn current(&self, now: Instant) -> Option<(PauseReason, SystemTime)> {
        match (self.until, self.reason, self.until_wall) {
            (Some(until), Some(reason), Some(wall)) if until > now => Some((reason, wall)),
            _ => None,
        }
    }
}

/// The date and time of `wall` in UTC, as `2026-11-29 05:10:00 UTC`: for
/// the end of a pause that may be days away (a spent month quota).
pub fn date_time(wall: SystemTime) -> String {
    let secs = wall
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    crate::calendar::date_time(secs)
}

/// `HH:MM:SS UTC` of a wall-clock time.
pub fn clock_time(wall: SystemTime) -> String {
    let secs = wall
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        % 86_400;
    format!(
        "{:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn overlapping_pauses_count_once() {
        let now = Now {
            instant: Instant::now(),
            wall: UNIX_EPOCH + Duration::from_secs(13 * 3600 + 5 * 60),
        };
        let mut record = PauseRecord::default();
        let s = Duration::from_secs;
        record.record(now.instant + s(12), PauseReason::RetryAfter, now);
        record.record(now.instant + s(3), PauseReason::WindowSpent, now);
        assert_eq!(record.total(now.instant + s(12)), s(12));
        let later = Now {
            instant: now.instant + s(10),
            wall: now.wall + s(10),
        };
        record.record(later.instant + s(10), PauseReason::QuotaSpent, later);
        assert_eq!(record.total(later.instant + s(10)), s(20));
        // A pause still in force counts so far (a stop may end it early).
        assert_eq!(record.total(later.instant + s(4)), s(14));
        let (reason, until) = record.current(later.instant).unwrap();
        assert_eq!(reason, PauseReason::QuotaSpent);
        assert_eq!(clock_time(until), "13:05:20 UTC");
        assert_eq!(record.current(later.instant + s(10)), None);
    }

    #[test]
    fn another_processs_pause_is_recorded_unless_it_is_ours_come_back() {
        let now = Now {
            instant: Instant::now(),
            wall: UNIX_EPOCH,
        };
        let s = Duration::from_secs;
        let mut record = PauseRecord::default();
        record.record(now.instant + s(2), PauseReason::RetryAfter, now);
        record.record_others(now.instant + s(2) + Duration::from_micros(40), now);
        assert_eq!(
            record.current(now.instant).unwrap().0,
            PauseReason::RetryAfter
        );
        record.record_others(now.instant + s(600), now);
        assert_eq!(
            record.current(now.instant).unwrap().0,
            PauseReason::OtherProcess
        );
        assert_eq!(record.total(now.instant + s(600)), s(600));
    }
}

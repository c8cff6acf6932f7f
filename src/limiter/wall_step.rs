//! Noticing the wall clock step back (an NTP step, a resumed VM): window
//! mode books by wall-clock seconds, and a step back would leave its slots
//! in what is now the future, stalling every worker for the length of the
//! step. The monotonic clock does not step, so the two disagreeing by more
//! than a small tolerance is the sign.

use super::clock::Now;
use std::time::{Duration, Instant};

/// Disagreements smaller than this are slewing and reading noise.
const TOLERANCE: Duration = Duration::from_millis(50);

/// The last moment seen on both clocks.
#[derive(Debug, Clone, Default)]
pub(super) struct WallWatch {
    last: Option<(Instant, Duration)>,
}

impl WallWatch {
    /// How far the wall clock stepped back since the last look, if it did.
    pub(super) fn stepped_back(&mut self, now: Now) -> Option<Duration> {
        let wall = now.since_epoch();
        let step = self.last.and_then(|(instant, seen)| {
            // Where the wall clock should be, had it run with the monotonic one.
            let expected = if now.instant >= instant {
                seen + (now.instant - instant)
            } else {
                seen.saturating_sub(instant - now.instant)
            };
            expected.checked_sub(wall).filter(|back| *back > TOLERANCE)
        });
        self.last = Some((now.instant, wall));
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn a_step_back_is_seen_once_and_drift_is_not() {
        let t0 = Instant::now();
        let at = |mono_ms: u64, wall_ms: i64| Now {
            instant: t0 + Duration::from_millis(mono_ms),
            wall: UNIX_EPOCH + Duration::from_millis((1_000_000 + wall_ms) as u64),
        };
        let mut watch = WallWatch::default();
        assert_eq!(watch.stepped_back(at(0, 0)), None);
        assert_eq!(watch.stepped_back(at(500, 490)), None, "slewing");
        assert_eq!(
            watch.stepped_back(at(1000, -4_010)),
            Some(Duration::from_millis(5_000)),
            "stepped 5 s back"
        );
        assert_eq!(watch.stepped_back(at(1500, -3_510)), None, "seen once");
        assert_eq!(watch.stepped_back(at(2000, 7_000)), None, "forward is fine");
    }
}

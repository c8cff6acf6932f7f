//! Redis's clock on ours: an estimate of the offset between Redis's `TIME`
//! and this process's monotonic clock, NTP-style.
//!
//! Each reply carries Redis's time when the script ran, a moment between
//! our send and our receive; taking the midpoint is off by at most half
//! that round trip. On a loaded machine a single round trip can take
//! milliseconds (a thread descheduled mid-call), which would move a start
//! by as much; so slots are not mapped through their own round trip but
//! through the best recent one: the sample whose error bound — half its
//! round trip, plus the drift two clocks may gather since (100 ppm) — is
//! smallest. The hosts' wall clocks never enter, so a host whose clock is
//! off (or runs under `faketime`) gets the same mapping.
//!
//! Redis's clock may step (NTP on its host): a sample whose offset no
//! longer agrees with an older one, beyond both their error bounds, means
//! the older one maps through the clock before the step, and it goes. A
//! tight old sample kept would map every slot as far off as the step (and
//! the slots a process books ahead without asking Redis would follow it).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Samples kept (the most recent).
const KEPT: usize = 64;
/// How fast two clocks may drift apart: 100 us per second.
const DRIFT: f64 = 100e-6;

/// Slack on the agreement of two samples (seconds): Redis's time is in
/// whole microseconds.
const AGREEMENT: f64 = 2e-6;

#[derive(Debug, Clone, Copy)]
struct Sample {
    received: Instant,
    half_trip: Duration,
    /// Redis's time minus ours at the midpoint, in microseconds.
    offset_us: i64,
}

impl Sample {
    /// How far off its offset may be at `now` (seconds): half its round
    /// trip, and the drift since.
    fn bound(&self, now: Instant) -> f64 {
        self.half_trip.as_secs_f64()
            + now.saturating_duration_since(self.received).as_secs_f64() * DRIFT
    }
}

/// See the module docs.
#[derive(Debug)]
pub(super) struct ClockMap {
    epoch: Instant,
    samples: VecDeque<Sample>,
}

impl ClockMap {
    pub(super) fn new() -> ClockMap {
        ClockMap {
            epoch: Instant::now(),
            samples: VecDeque::with_capacity(KEPT),
        }
    }

    fn local_us(&self, at: Instant) -> i64 {
        i64::try_from(at.saturating_duration_since(self.epoch).as_micros()).unwrap_or(i64::MAX)
    }

    /// A reply sent at `sent`, received at `received`, ran at `redis_us`.
    pub(super) fn observe(&mut self, sent: Instant, received: Instant, redis_us: i64) {
        let half_trip = received.saturating_duration_since(sent) / 2;
        let midpoint = self.local_us(sent + half_trip);
        let new = Sample {
            received,
            half_trip,
            offset_us: redis_us.saturating_sub(midpoint),
        };
        // Samples from before a step of Redis's clock.
        self.samples.retain(|old| {
            let apart = old.offset_us.abs_diff(new.offset_us);
            let bounds = old.bound(received) + new.half_trip.as_secs_f64() + AGREEMENT;
            apart as f64 <= bounds * 1e6
        });
        if self.samples.len() == KEPT {
            self.samples.pop_front();
        }
        self.samples.push_back(new);
    }

    /// The offset of the sample with the smallest error bound at `now`.
    fn offset_us(&self, now: Instant) -> Option<i64> {
        self.samples
            .iter()
            .min_by(|a, b| a.bound(now).total_cmp(&b.bound(now)))
            .map(|s| s.offset_us)
    }

    /// What Redis's clock shows at our moment `at` (`None` before any
    /// sample).
    pub(super) fn redis_us(&self, at: Instant, now: Instant) -> Option<i64> {
        let offset = self.offset_us(now)?;
        Some(self.local_us(at).saturating_add(offset))
    }

    /// Drops every sample: a new connection may reach another host (a
    /// failover) whose clock reads differently, and an old sample with a
    /// tighter round trip would keep mapping through the old host's clock.
    pub(super) fn forget(&mut self) {
        self.samples.clear();
    }

    /// The moment of ours at which Redis's clock shows `redis_us`.
    pub(super) fn local(&self, redis_us: i64, now: Instant) -> Instant {
        let Some(offset) = self.offset_us(now) else {
            return now;
        };
        let local = redis_us.saturating_sub(offset);
        match u64::try_from(local) {
            Ok(micros) => self
                .epoch
                .checked_add(Duration::from_micros(micros))
                .unwrap_or(now),
            Err(_) => self.epoch,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tightest_recent_round_trip_sets_the_mapping() {
        let mut map = ClockMap::new();
        let t0 = map.epoch + Duration::from_secs(1);
        let us = Duration::from_micros;
        // Redis's clock reads 5_000_000 us more than ours.
        let redis = |local: Instant| 5_000_000 + map_us(t0, local) + 1_000_000;
        fn map_us(t0: Instant, at: Instant) -> i64 {
            i64::try_from((at - t0).as_micros()).unwrap()
        }
        // A slow call: sent at t0, received 20 ms later, Redis ran it just
        // before replying.
        let slow_sent = t0;
        let slow_received = t0 + us(20_000);
        map.observe(slow_sent, slow_received, redis(slow_received - us(10)));
        // A fast one: 100 us.
        let fast_sent = t0 + us(30_000);
        map.observe(fast_sent, fast_sent + us(100), redis(fast_sent + us(50)));
        let later = t0 + us(40_000);
        let target = redis(t0 + us(100_000));
        let mapped = map.local(target, later);
        let error = mapped.max(t0 + us(100_000)) - mapped.min(t0 + us(100_000));
        assert!(error <= us(1), "{error:?}");
    }

    #[test]
    fn a_forgotten_host_maps_nothing_and_the_next_one_maps_alone() {
        let mut map = ClockMap::new();
        let t0 = map.epoch + Duration::from_secs(2);
        let us = Duration::from_micros;
        // The old host: a tight round trip, its clock 7 s after our epoch.
        map.observe(t0, t0 + us(20), 2_000_010 + 7_000_000);
        map.forget();
        assert_eq!(map.redis_us(t0, t0), None, "no sample left");
        // The new host, 10 s ahead of the old one, through a slower trip.
        map.observe(t0, t0 + us(2_000), 2_001_000 + 17_000_000);
        assert_eq!(map.redis_us(t0, t0), Some(2_000_000 + 17_000_000));
    }

    #[test]
    fn a_step_of_redis_clock_drops_the_samples_from_before_it() {
        let mut map = ClockMap::new();
        let t0 = map.epoch + Duration::from_secs(2);
        let us = Duration::from_micros;
        // A tight sample: Redis reads 7 s past our epoch at t0 + 10 us.
        map.observe(t0, t0 + us(20), 2_000_010 + 7_000_000);
        // A second later, through a slower trip, Redis's clock reads 5 s
        // further on: a step.
        let t1 = t0 + Duration::from_secs(1);
        map.observe(t1, t1 + us(400), 3_000_200 + 12_000_000);
        assert_eq!(map.redis_us(t1, t1), Some(3_000_000 + 12_000_000));
        // A looser sample that agrees keeps the tighter one before it.
        let t2 = t1 + Duration::from_millis(10);
        map.observe(t2, t2 + us(2_000), 3_011_000 + 12_000_000 + 300);
        assert_eq!(
            map.redis_us(t2, t2),
            Some(3_010_000 + 12_000_000),
            "mapped through the 400 us trip, not the 2 ms one"
        );
    }

    #[test]
    fn our_moments_map_to_redis_and_back() {
        let mut map = ClockMap::new();
        let t0 = map.epoch + Duration::from_secs(2);
        assert_eq!(map.redis_us(t0, t0), None, "no sample yet");
        let us = Duration::from_micros;
        // Redis ran it 7 s (of its clock) after our epoch, mid-trip.
        map.observe(t0, t0 + us(200), 7_000_100);
        let at = t0 + us(5_000);
        let redis = map.redis_us(at, at).unwrap();
        assert_eq!(redis, 7_005_000);
        assert_eq!(map.local(redis, at), at);
    }

    #[test]
    fn without_samples_the_mapping_is_now() {
        let map = ClockMap::new();
        let now = Instant::now();
        assert_eq!(map.local(123, now), now);
    }
}

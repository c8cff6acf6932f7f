//! Property tests of the decisions, for any sequence of replies: never more
//! starts in a wall-clock second than the model allows, and never a pause
//! longer than the reply's hints justify.

use super::window::MAX_GUARD;
use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::time::UNIX_EPOCH;

/// What a gateway can answer.
#[derive(Debug, Clone)]
enum Reply {
    Ok,
    OkWindow {
        limit: u32,
        remaining: u32,
    },
    OkQuotaSpent {
        ours_ms: u64,
        reset_s: Option<u64>,
    },
    Rejected,
    RetryAfter {
        ms: u64,
    },
    RejectedWindow {
        limit: u32,
        remaining: u32,
    },
    RejectedQuota {
        ours_ms: u64,
        reset_s: Option<u64>,
        retry_s: Option<u64>,
    },
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        4 => Just(Reply::Ok),
        2 => (1u32..60, 0u32..60).prop_map(|(limit, r)| Reply::OkWindow { limit, remaining: r.min(limit) }),
        1 => (0u64..90_000, proptest::option::of(0u64..100)).prop_map(|(ours_ms, reset_s)| Reply::OkQuotaSpent { ours_ms, reset_s }),
        2 => Just(Reply::Rejected),
        1 => (0u64..5_000).prop_map(|ms| Reply::RetryAfter { ms }),
        2 => (1u32..60, 0u32..3).prop_map(|(limit, remaining)| Reply::RejectedWindow { limit, remaining }),
        1 => (0u64..90_000, proptest::option::of(0u64..100), proptest::option::of(0u64..100))
            .prop_map(|(ours_ms, reset_s, retry_s)| Reply::RejectedQuota { ours_ms, reset_s, retry_s }),
    ]
}

fn window(limit: u32, remaining: u32) -> GatewayHint {
    GatewayHint {
        second: Some(WindowCount { limit, remaining }),
        ..GatewayHint::default()
    }
}

fn quota(ours_ms: u64, reset_s: Option<u64>) -> GatewayHint {
    GatewayHint {
        exhausted_for: Some(Duration::from_millis(ours_ms)),
        reset: reset_s.map(Duration::from_secs),
        ..GatewayHint::default()
    }
}

/// The longest pause `reply` can justify, seen at `now`.
fn justified(reply: &Reply, now: Now) -> Duration {
    let to_next_window = Duration::from_secs(now.since_epoch().as_secs() + 1) - now.since_epoch();
    let window = to_next_window + MAX_GUARD;
    let quota = |ours_ms: u64, reset_s: Option<u64>, retry_s: Option<u64>| {
        let gateway = retry_s.or(reset_s).map(Duration::from_secs);
        gateway.unwrap_or(Duration::from_millis(ours_ms)) + learn::QUOTA_GUARD
    };
    let hinted = match reply {
        Reply::RetryAfter { ms } => Duration::from_millis(*ms).max(window),
        Reply::RejectedWindow { .. } => window,
        Reply::RejectedQuota {
            ours_ms,
            reset_s,
            retry_s,
        } => quota(*ours_ms, *reset_s, *retry_s),
        Reply::OkQuotaSpent { ours_ms, reset_s } => quota(*ours_ms, *reset_s, None),
        _ => Duration::ZERO,
    };
    // 429s that keep coming with no hint: at most a second.
    hinted.max(Duration::from_secs(1))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn starts_and_pauses_stay_within_what_the_replies_allow(
        rate in 1u32..40,
        phase_ms in 0u64..1000,
        steps in prop::collection::vec((0u64..400, reply(), 0usize..4), 1..300),
    ) {
        let wall0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_millis(phase_ms);
        let instant0 = Instant::now();
        let at = |offset: Duration| Now { instant: instant0 + offset, wall: wall0 + offset };
        let limiter = Limiter::new(Rate::per_second(f64::from(rate)));
        let mut offset = Duration::ZERO;
        let mut booked: Vec<Reservation> = Vec::new();
        // Every change of generation voids, by the limiter's own rule, the
        // slots booked before it that had not started.
        let mut changes: Vec<Pause> = Vec::new();
        let mut in_flight: Vec<Reservation> = Vec::new();
        for (gap_ms, reply, pick) in steps {
            offset += Duration::from_millis(gap_ms);
            let now = at(offset);
            let before = limiter.generation();
            let reservation = limiter.reserve_at(now);
            if limiter.generation() != before {
                changes.push(Pause { at: now.instant, generation: limiter.generation() });
            }
            booked.push(reservation);
            in_flight.push(reservation);
            // A reply comes for one request in flight that has started.
            let started: Vec<usize> = (0..in_flight.len())
                .filter(|i| in_flight[*i].start <= now.instant)
                .collect();
            let Some(&index) = started.get(pick % started.len().max(1)) else { continue };
            let request = in_flight.remove(index);
            let before = limiter.generation();
            let backoff = match &reply {
                Reply::Ok => { limiter.accepted(&request, None, now); None }
                Reply::OkWindow { limit, remaining } => {
                    limiter.accepted(&request, Some(&window(*limit, *remaining)), now); None
                }
                Reply::OkQuotaSpent { ours_ms, reset_s } => {
                    limiter.accepted(&request, Some(&quota(*ours_ms, *reset_s)), now); None
                }
                Reply::Rejected => Some(limiter.rejected(&request, None, None, now)),
                Reply::RetryAfter { ms } => {
                    Some(limiter.rejected(&request, Some(Duration::from_millis(*ms)), None, now))
                }
                Reply::RejectedWindow { limit, remaining } => {
                    Some(limiter.rejected(&request, Some(Duration::from_secs(1)), Some(&window(*limit, *remaining)), now))
                }
                Reply::RejectedQuota { ours_ms, reset_s, retry_s } => Some(limiter.rejected(
                    &request, retry_s.map(Duration::from_secs), Some(&quota(*ours_ms, *reset_s)), now,
                )),
            };
            if limiter.generation() != before {
                changes.push(Pause { at: now.instant, generation: limiter.generation() });
            }
            if let Some(Backoff::Everyone { until, .. }) = backoff {
                let length = until - now.instant;
                prop_assert!(length <= justified(&reply, now), "{reply:?}: paused {length:?}");
            }
        }
        let mut per_second: BTreeMap<u64, u32> = BTreeMap::new();
        for reservation in booked.iter().filter(|r| !changes.iter().any(|c| c.voids(r))) {
            let wall = at(reservation.start - instant0).since_epoch().as_secs();
            *per_second.entry(wall).or_default() += 1;
        }
        for (second, count) in per_second {
            prop_assert!(count <= rate, "{count} starts in second {second} at {rate}/s");
        }
    }
}

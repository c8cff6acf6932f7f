//! The late-start guards the pacing claims rest on, on the limiter's public
//! API with an injected clock ([`FakeClock`]) that makes every timed wait
//! end late, as on a busy machine: a slot woken too late for its one-second
//! window is booked again (a start then would count in the next window), and
//! a late start pushes the next one back by a whole interval.

use restb::limiter::{FakeClock, GatewayHint, Limiter, Rate, WindowCount};
use restb::stop::Stop;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A clock `phase` into a wall-clock second.
fn clock_at(phase: Duration) -> FakeClock {
    FakeClock::starting_at(UNIX_EPOCH + Duration::from_secs(1_700_000_000) + phase)
}

/// The wall-clock second `instant` falls in, read on `clock`.
fn second_of(clock: &FakeClock, instant: Instant) -> u64 {
    use restb::limiter::Clock;
    let now = clock.now();
    let wall: SystemTime = if instant >= now.instant {
        now.wall + (instant - now.instant)
    } else {
        now.wall - (now.instant - instant)
    };
    wall.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn kong(limit: u32, remaining: u32) -> GatewayHint {
    GatewayHint {
        second: Some(WindowCount { limit, remaining }),
        ..GatewayHint::default()
    }
}

#[test]
fn a_window_slot_woken_too_late_is_booked_again_in_a_later_window() {
    use restb::limiter::Clock;
    let clock = clock_at(ms(100));
    let limiter = Limiter::with_clock(Rate::per_second(4.0), clock.clone());
    let stop = Stop::new();
    // The gateway counts 4 per wall-clock second: window mode.
    let first = limiter.acquire(&stop).unwrap();
    limiter.accepted(&first, Some(&kong(4, 3)), clock.now());
    // Other workers hold the rest of this window and all of the next.
    for _ in 0..7 {
        limiter.reserve_at(clock.now());
    }
    // This caller's slot is two windows on (at 2.02 s). Its first wait ends
    // after one stop poll (at 1.1 s) and 1.95 s late: at 3.05 s, in the
    // window after its slot's.
    clock.set_lateness(ms(1950));
    let reservation = limiter.acquire(&stop).unwrap();
    let started = clock.now().instant;
    assert!(started >= reservation.start);
    assert_eq!(
        second_of(&clock, started),
        second_of(&clock, reservation.start),
        "the start falls in the window its slot was booked in"
    );
    assert!(
        second_of(&clock, started) >= 1_700_000_003,
        "booked again after waking late: slot in {}, now {}, model {:?}",
        second_of(&clock, reservation.start),
        second_of(&clock, started),
        limiter.pacing_model()
    );
}

#[test]
fn late_starts_never_bring_two_starts_closer_than_an_interval() {
    use restb::limiter::Clock;
    // Even pacing at 4/s (250 ms and the safety margin); every other wait
    // ends 180 ms late. Without the gap gate a late start and the on-time
    // one after it would be 70 ms apart.
    let clock = clock_at(ms(100));
    let limiter = Limiter::with_clock(Rate::per_second(4.0), clock.clone());
    let stop = Stop::new();
    let mut starts = Vec::new();
    for n in 0..12 {
        clock.set_lateness(if n % 2 == 1 { ms(180) } else { Duration::ZERO });
        limiter.acquire(&stop).unwrap();
        starts.push(clock.now().instant);
    }
    for pair in starts.windows(2) {
        assert!(pair[1] - pair[0] >= ms(250), "{:?}", pair[1] - pair[0]);
    }
}

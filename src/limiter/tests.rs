use super::*;
use crate::stop::Stop;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::num::NonZeroU32;
use std::time::UNIX_EPOCH;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

/// A moment `offset` after a start at `phase` into a wall-clock second.
fn clock(phase_ms: u64) -> impl Fn(Duration) -> Now {
    let instant0 = Instant::now();
    let wall0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000) + ms(phase_ms);
    move |offset| Now {
        instant: instant0 + offset,
        wall: wall0 + offset,
    }
}

fn kong_hint(limit: u32, remaining: u32) -> GatewayHint {
    GatewayHint {
        second: Some(WindowCount { limit, remaining }),
        ..GatewayHint::default()
    }
}

#[test]
fn rates_out_of_range_are_refused() {
    assert!(Rate::per_second(0.0).is_none());
    assert!(Rate::per_second(-1.0).is_none());
    assert!(Rate::per_second(f64::NAN).is_none());
    assert!(Rate::per_second(f64::INFINITY).is_none());
    assert_eq!(Rate::per_second(4.0).unwrap().interval(), ms(250));
}

#[test]
fn waiting_callers_get_evenly_spaced_slots() {
    let at = clock(0);
    let limiter = Limiter::new(Rate::per_second(4.0));
    let t0 = at(Duration::ZERO);
    let starts: Vec<Duration> = (0..5)
        .map(|_| limiter.reserve_at(t0).start - t0.instant)
        .collect();
    // A 0.2 % margin: the floor for jitter; and 5 ms of start-up allowance
    // for each of the first bookings.
    assert_eq!(
        starts,
        vec![ms(0), us(255_500), ms(511), us(766_500), ms(1_022)]
    );
}

#[test]
fn the_first_bookings_get_a_start_up_allowance() {
    // Regression: at 20/s against a leaky bucket without burst, requests 2
    // and 3 of a run reached the gateway less than 50 ms apart (the first
    // ones open connections while the pool spawns its threads).
    let at = clock(0);
    let limiter = Limiter::new(Rate::per_second(20.0));
    let t0 = at(Duration::ZERO);
    let starts: Vec<Instant> = (0..11).map(|_| limiter.reserve_at(t0).start).collect();
    let gaps: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps[..8].iter().all(|gap| *gap == us(55_100)), "{gaps:?}");
    assert!(gaps[8..].iter().all(|gap| *gap == us(50_100)), "{gaps:?}");
}

#[test]
fn idle_time_does_not_bank_a_burst() {
    let at = clock(0);
    let limiter = Limiter::new(Rate::per_second(4.0));
    limiter.reserve_at(at(Duration::ZERO));
    let later = at(Duration::from_secs(10));
    assert_eq!(limiter.reserve_at(later).start, later.instant);
    assert_eq!(limiter.reserve_at(later).start, later.instant + us(255_500));
}

#[test]
fn a_burst_lets_that_many_start_at_once_then_paces() {
    let at = clock(0);
    let rate = Rate::per_second(4.0)
        .unwrap()
        .with_burst(NonZeroU32::new(3).unwrap());
    let limiter = Limiter::new(Some(rate));
    let t0 = at(Duration::ZERO);
    let starts: Vec<Duration> = (0..5)
        .map(|_| limiter.reserve_at(t0).start - t0.instant)
        .collect();
    // The tolerance is two allotted intervals and the schedule moves on by
    // widened ones, so the margin (0.2 %) shows inside the burst too: that
    // keeps GCRA's bound (k + burst - 1 starts in k intervals) whatever the
    // margin does.
    assert_eq!(starts, vec![ms(0), ms(0), ms(1), us(251_500), ms(502)]);
}

#[test]
fn the_first_start_can_wait_for_a_wall_clock_second() {
    let at = clock(370);
    let limiter = Limiter::new(Rate::per_second(4.0)).aligned_to_windows();
    let t0 = at(Duration::ZERO);
    assert_eq!(limiter.reserve_at(t0).start - t0.instant, ms(650));
    assert_eq!(limiter.reserve_at(t0).start - t0.instant, us(905_500));
}

#[test]
fn a_pause_holds_everyone_and_voids_older_slots() {
    let at = clock(0);
    let limiter = Limiter::new(Rate::per_second(4.0));
    let t0 = at(Duration::ZERO);
    limiter.reserve_at(t0);
    let booked = limiter.reserve_at(t0);
    limiter.pause_at(t0.instant + Duration::from_secs(2), t0);
    assert!(limiter.is_void(&booked));
    let after = limiter.reserve_at(at(ms(300)));
    assert!(!limiter.is_void(&after));
    assert_eq!(after.start - t0.instant, Duration::from_secs(2));
    assert_eq!(
        limiter.reserve_at(at(ms(300))).start - t0.instant,
        us(2_255_500)
    );
}

#[test]
fn a_shorter_pause_does_not_shorten_a_longer_one() {
    let at = clock(0);
    let limiter = Limiter::new(None);
    let t0 = at(Duration::ZERO);
    limiter.pause_at(t0.instant + Duration::from_secs(3), t0);
    limiter.pause_at(t0.instant + Duration::from_secs(1), t0);
    assert_eq!(
        limiter.reserve_at(t0).start - t0.instant,
        Duration::from_secs(3)
    );
}

#[test]
fn without_a_rate_only_pauses_hold_starts() {
    let at = clock(0);
    let limiter = Limiter::new(None);
    let t0 = at(Duration::ZERO);
    for _ in 0..100 {
        assert_eq!(limiter.reserve_at(t0).start, t0.instant);
    }
    assert_eq!(limiter.pacing_model(), PacingModel::Unpaced);
}

#[test]
fn never_more_than_rate_starts_in_any_window() {
    // Invariant of even pacing: any one-second window holds at most `rate`
    // starts, whatever the arrival pattern.
    let at = clock(0);
    let limiter = Limiter::new(Rate::per_second(20.0));
    let mut seed = 0x2545_f491_u64;
    let mut offset = Duration::ZERO;
    let mut starts = Vec::new();
    for _ in 0..2000 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        offset += Duration::from_micros((seed >> 33) % 120_000);
        starts.push(limiter.reserve_at(at(offset)).start);
    }
    starts.sort();
    for (i, first) in starts.iter().enumerate() {
        let inside = starts[i..]
            .iter()
            .take_while(|s| **s - *first < Duration::from_secs(1))
            .count();
        assert!(inside <= 20, "{inside} starts within one second");
    }
}

fn fake_clock() -> FakeClock {
    FakeClock::starting_at(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
}

#[test]
fn acquire_returns_at_once_when_stopped() {
    let clock = fake_clock();
    let limiter = Limiter::with_clock(Rate::per_second(0.001), clock.clone());
    let stop = Stop::new();
    assert!(limiter.acquire(&stop).is_ok());
    stop.stop();
    let t = clock.now();
    assert_eq!(limiter.acquire(&stop), Err(Stopped));
    assert_eq!(clock.now(), t, "no waiting at all");
    let interrupted = Limiter::with_clock(Rate::per_second(1.0), fake_clock());
    interrupted.interrupt();
    assert_eq!(interrupted.acquire(&Stop::new()), Err(Stopped));
}

#[test]
fn acquire_waits_for_each_slot_on_the_injected_clock() {
    let clock = fake_clock();
    let t0 = clock.now().instant;
    let limiter = Limiter::with_clock(Rate::per_second(4.0), clock.clone());
    let stop = Stop::new();
    let mut starts = Vec::new();
    for _ in 0..4 {
        let reservation = limiter.acquire(&stop).unwrap();
        assert_eq!(clock.now().instant, reservation.start, "starts on its slot");
        starts.push(reservation.start - t0);
    }
    assert_eq!(starts, vec![ms(0), us(255_500), ms(511), us(766_500)]);
}

#[test]
fn a_late_start_pushes_the_next_one_back_by_a_whole_interval() {
    // A worker that wakes late for its slot starts late; the next slot must
    // keep a full interval after that actual start (a leaky bucket counts
    // the gaps it sees).
    let clock = fake_clock();
    let t0 = clock.now().instant;
    let limiter = Limiter::with_clock(Rate::per_second(4.0), clock.clone());
    let stop = Stop::new();
    limiter.acquire(&stop).unwrap();
    clock.set_lateness(ms(150));
    let late = limiter.acquire(&stop).unwrap();
    let started = clock.now().instant;
    assert_eq!(late.start - t0, us(255_500));
    assert!(started - late.start >= ms(149), "woke late for its slot");
    assert_eq!(late.actual_start(), started, "released as it woke");
    clock.set_lateness(Duration::ZERO);
    let next = limiter.acquire(&stop).unwrap();
    assert_eq!(
        clock.now().instant - started,
        us(255_500),
        "one spacing after"
    );
    assert_eq!(
        next.actual_start(),
        clock.now().instant,
        "released after its slot"
    );
    assert!(next.actual_start() > next.start);
}

#[test]
fn acquire_waits_out_a_pause_and_books_after_it() {
    let clock = fake_clock();
    let t0 = clock.now().instant;
    let limiter = Limiter::with_clock(Rate::per_second(4.0), clock.clone());
    let stop = Stop::new();
    limiter.acquire(&stop).unwrap();
    limiter.pause_until(t0 + Duration::from_secs(3));
    let after = limiter.acquire(&stop).unwrap();
    assert_eq!(after.start - t0, Duration::from_secs(3));
    assert!(!limiter.is_void(&after));
}

#[test]
fn window_headers_switch_to_window_mode_where_they_bind() {
    let at = clock(500);
    let limiter = Limiter::new(Rate::per_second(10.0));
    let t0 = at(Duration::ZERO);
    let first = limiter.reserve_at(t0);
    limiter.accepted(&first, Some(&kong_hint(4, 3)), at(ms(100)));
    assert_eq!(
        limiter.pacing_model(),
        PacingModel::Windows {
            budget: 4,
            guard: window::DEFAULT_GUARD
        }
    );
    // One start in this window already: three more now, then four at the next.
    let starts: Vec<Duration> = (0..8)
        .map(|_| limiter.reserve_at(at(ms(100))).start - t0.instant)
        .collect();
    assert_eq!(starts[..3], [ms(100); 3]);
    assert_eq!(starts[3..7], [ms(520), ms(525), ms(530), ms(535)]);
    assert_eq!(starts[7], ms(1520));
    // Windows that allow more than our rate do not hold us back: no
    // bursts at their starts, which a sliding window in another layer (the
    // headers not being its own) would reject.
    let slower = Limiter::new(Rate::per_second(2.5));
    slower.accepted(&slower.reserve_at(t0), Some(&kong_hint(4, 3)), t0);
    assert!(matches!(slower.pacing_model(), PacingModel::Even { .. }));
    let next = slower.reserve_at(t0).start - t0.instant;
    assert!(next >= ms(400), "one interval on, not a burst: {next:?}");
    let equal = Limiter::new(Rate::per_second(4.0));
    equal.accepted(&equal.reserve_at(t0), Some(&kong_hint(4, 3)), t0);
    assert!(matches!(
        equal.pacing_model(),
        PacingModel::Windows { budget: 4, .. }
    ));
}

#[test]
fn the_window_in_which_window_mode_begins_keeps_even_pacing() {
    // Other clients on the key, if any, cannot show in one reply's counts:
    // the rest of the window goes on evenly, the next one bursts.
    let at = clock(0);
    let limiter = Limiter::new(Rate::per_second(20.0));
    let t0 = at(Duration::ZERO);
    let first = limiter.reserve_at(t0);
    limiter.accepted(&first, Some(&kong_hint(20, 19)), at(ms(50)));
    assert!(matches!(
        limiter.pacing_model(),
        PacingModel::Windows { .. }
    ));
    let starts: Vec<Duration> = (0..21)
        .map(|_| limiter.reserve_at(at(ms(50))).start - t0.instant)
        .collect();
    let (this_window, next_window): (Vec<Duration>, Vec<Duration>) = starts
        .iter()
        .partition(|start| **start < Duration::from_secs(1));
    assert_eq!(this_window.len(), 19, "{starts:?}");
    assert!(
        this_window
            .windows(2)
            .all(|pair| pair[1] - pair[0] >= ms(50)),
        "{this_window:?}"
    );
    assert!(next_window[1] - next_window[0] < ms(10), "{next_window:?}");
}

#[test]
fn a_full_window_pauses_everyone_until_the_next() {
    let at = clock(300);
    let limiter = Limiter::new(Rate::per_second(4.0));
    let t0 = at(Duration::ZERO);
    let first = limiter.reserve_at(t0);
    limiter.accepted(&first, Some(&kong_hint(4, 3)), t0);
    let booked = limiter.reserve_at(t0);
    let backoff = limiter.rejected(&booked, None, Some(&kong_hint(4, 0)), t0);
    // To the next window, after a guard 20 ms wider: window mode kept to the
    // budget, yet the window was spent (clocks apart, or others on the key).
    assert_eq!(
        backoff,
        Backoff::Everyone {
            until: t0.instant + ms(740),
            reason: PauseReason::WindowSpent
        }
    );
    assert!(limiter.is_void(&booked));
    assert_eq!(limiter.reserve_at(t0).start - t0.instant, ms(740));
    assert!(matches!(
        limiter.pacing_model(),
        PacingModel::Windows { budget: 4, .. }
    ));
}

#[test]
fn a_rejection_while_the_window_has_room_is_not_a_full_window() {
    let at = clock(300);
    let limiter = Limiter::new(Rate::per_second(4.0));
    let t0 = at(Duration::ZERO);
    let booked = limiter.reserve_at(t0);
    let backoff = limiter.rejected(&booked, None, Some(&kong_hint(4, 2)), t0);
    assert!(matches!(backoff, Backoff::Job { .. }), "{backoff:?}");
    assert!(!limiter.is_void(&booked), "no pause to the next window");
    assert!(matches!(limiter.pacing_model(), PacingModel::Even { .. }));
}

#[test]
fn a_retry_after_longer_than_a_window_pauses_everyone() {
    let at = clock(300);
    let limiter = Limiter::new(Rate::per_second(4.0));
    let t0 = at(Duration::ZERO);
    let booked = limiter.reserve_at(t0);
    let backoff = limiter.rejected(&booked, Some(Duration::from_secs(7)), None, t0);
    assert_eq!(
        backoff,
        Backoff::Everyone {
            until: t0.instant + Duration::from_secs(7),
            reason: PauseReason::RetryAfter
        }
    );
    assert_eq!(
        limiter.reserve_at(t0).start - t0.instant,
        Duration::from_secs(7)
    );
    assert!(
        limiter.paused_total() < Duration::from_secs(7),
        "a pause in force counts so far, not to its end"
    );
}

#[test]
fn a_lone_429_with_retry_after_one_is_a_spacing_error_only_its_job_waits() {
    // nginx limit_req with `Retry-After: 1`: "1" is an upper bound, and
    // with even pacing the job's next slot is an interval away anyway.
    let at = clock(300);
    let limiter = Limiter::new(Rate::per_second(4.0));
    let t0 = at(Duration::ZERO);
    let first = limiter.reserve_at(t0);
    let other = limiter.reserve_at(t0);
    let backoff = limiter.rejected(&first, Some(Duration::from_secs(1)), None, t0);
    let Backoff::Job { until } = backoff else {
        panic!("{backoff:?}")
    };
    assert!(until - t0.instant <= ms(251), "{:?}", until - t0.instant);
    assert!(!limiter.is_void(&other), "the others go on");
    assert_eq!(limiter.paused_total(), Duration::ZERO);
    let precise = Limiter::new(Rate::per_second(4.0));
    let booked = precise.reserve_at(t0);
    assert_eq!(
        precise.rejected(&booked, Some(ms(40)), None, t0),
        Backoff::Job {
            until: t0.instant + ms(40)
        }
    );
}

#[test]
fn an_exhausted_minute_pauses_even_after_a_success() {
    let at = clock(0);
    let limiter = Limiter::new(Rate::per_second(4.0));
    let t0 = at(Duration::ZERO);
    let hint = GatewayHint {
        exhausted_for: Some(Duration::from_secs(42)),
        ..GatewayHint::default()
    };
    limiter.accepted(&limiter.reserve_at(t0), Some(&hint), t0);
    assert_eq!(
        limiter.reserve_at(t0).start - t0.instant,
        Duration::from_secs(42) + learn::QUOTA_GUARD
    );
    let (reason, _) = limiter.pause_reason().expect("a pause in force");
    assert_eq!(reason, PauseReason::QuotaSpent);
}

#[test]
fn a_spent_day_pauses_an_hour_and_names_the_gateways_reset() {
    // Kong's 429 for a spent day: `Retry-After` and `RateLimit-Reset` both
    // say 65887 s to midnight; the limiter asks again after an hour.
    let at = clock(0);
    let t0 = at(Duration::ZERO);
    let hint = GatewayHint {
        exhausted_for: Some(Duration::from_secs(65_887)),
        reset: Some(Duration::from_secs(65_887)),
        ..GatewayHint::default()
    };
    let limiter = Limiter::new(Rate::per_second(4.0));
    let booked = limiter.reserve_at(t0);
    let said = Some(Duration::from_secs(65_887));
    let backoff = limiter.rejected(&booked, said, Some(&hint), t0);
    assert_eq!(backoff.until() - t0.instant, learn::LONGEST_QUOTA_WAIT);
    let (reason, until) = limiter.pause_reason().expect("a pause in force");
    assert_eq!(reason, PauseReason::QuotaSpent);
    assert_eq!(
        until.duration_since(t0.wall).unwrap(),
        Duration::from_secs(65_887) + learn::QUOTA_GUARD
    );
}

#[test]
fn a_spent_minute_takes_the_gateways_reset_over_our_clock() {
    // Our clock says 24.5 s to the end of the minute; the gateway, whose
    // clock is behind ours, says 20 (Retry-After) or 21 (RateLimit-Reset).
    let at = clock(0);
    let t0 = at(Duration::ZERO);
    let hint = GatewayHint {
        exhausted_for: Some(ms(24_500)),
        reset: Some(Duration::from_secs(21)),
        ..GatewayHint::default()
    };
    let limiter = Limiter::new(Rate::per_second(4.0));
    let booked = limiter.reserve_at(t0);
    let backoff = limiter.rejected(&booked, Some(Duration::from_secs(20)), Some(&hint), t0);
    assert_eq!(
        backoff.until() - t0.instant,
        Duration::from_secs(20) + learn::QUOTA_GUARD
    );
    let reset_only = Limiter::new(Rate::per_second(4.0));
    let booked = reset_only.reserve_at(t0);
    let backoff = reset_only.rejected(&booked, None, Some(&hint), t0);
    assert_eq!(
        backoff.until() - t0.instant,
        Duration::from_secs(21) + learn::QUOTA_GUARD
    );
    let ours = Limiter::new(Rate::per_second(4.0));
    let booked = ours.reserve_at(t0);
    let fallback = GatewayHint {
        reset: None,
        ..hint
    };
    let backoff = ours.rejected(&booked, None, Some(&fallback), t0);
    assert_eq!(
        backoff.until() - t0.instant,
        ms(24_500) + learn::QUOTA_GUARD
    );
    assert!(matches!(
        backoff,
        Backoff::Everyone {
            reason: PauseReason::QuotaSpent,
            ..
        }
    ));
}

#[test]
fn blind_rejections_widen_pacing_and_back_off() {
    let at = clock(0);
    let limiter = Limiter::new(Rate::per_second(10.0));
    let t0 = at(Duration::ZERO);
    let booked = limiter.reserve_at(t0);
    let first = limiter.rejected(&booked, None, None, t0);
    assert_eq!(first, Backoff::Job { until: t0.instant });
    assert!(!limiter.is_void(&booked), "a first rejection pauses nobody");
    let PacingModel::Even { margin } = limiter.pacing_model() else {
        panic!("{:?}", limiter.pacing_model())
    };
    assert!((margin - 0.004).abs() < 1e-9, "{margin}");
    let second = limiter.rejected(&booked, None, None, t0);
    assert!(matches!(
        second,
        Backoff::Everyone {
            reason: PauseReason::Persistent,
            ..
        }
    ));
    // The next slot: an interval on (and the start-up allowance), plus an
    // eighth of one for each 429
    // (moving our phase away from whoever else sends on the key).
    let resume = limiter.reserve_at(t0).start - t0.instant;
    assert!(resume > ms(130) && resume < ms(131), "{resume:?}");
    // A third in a row: the pause doubles (two intervals). Three 429s are
    // not yet a persistence that cuts the rate.
    limiter.rejected(&booked, None, None, t0);
    assert_eq!(limiter.rate_in_force(), Rate::per_second(10.0));
    let third = limiter.reserve_at(t0).start - t0.instant;
    assert!(third > ms(200) && third < ms(202), "{third:?}");
    limiter.accepted(&limiter.reserve_at(t0), None, t0);
    let PacingModel::Even { margin: narrower } = limiter.pacing_model() else {
        panic!()
    };
    assert!(narrower < margin);
}

#[test]
fn headers_from_another_layer_are_dropped_after_two_contradictions() {
    // An upstream announces 20 per second, as our rate; a proxy in front
    // rejects the window's burst. Window mode first (the headers came with a success),
    // then even pacing for good.
    let clock = fake_clock();
    let limiter = Limiter::with_clock(Rate::per_second(20.0), clock.clone());
    let now = clock.now();
    let first = limiter.reserve_at(now);
    limiter.accepted(&first, Some(&kong_hint(20, 19)), now);
    assert!(matches!(
        limiter.pacing_model(),
        PacingModel::Windows { budget: 20, .. }
    ));
    let booked = limiter.reserve_at(now);
    let backoff = limiter.rejected(&booked, None, None, now);
    assert!(matches!(backoff, Backoff::Job { .. }), "{backoff:?}");
    assert!(matches!(
        limiter.pacing_model(),
        PacingModel::Windows { .. }
    ));
    let booked = limiter.reserve_at(now);
    limiter.rejected(&booked, None, None, now);
    assert!(matches!(limiter.pacing_model(), PacingModel::Even { .. }));
    assert_eq!(limiter.paused_total(), Duration::ZERO, "nobody paused");
    // The headers keep coming with successes: not believed any more.
    clock.advance(Duration::from_secs(2));
    let later = limiter.reserve_at(clock.now());
    limiter.accepted(&later, Some(&kong_hint(20, 19)), clock.now());
    assert!(matches!(limiter.pacing_model(), PacingModel::Even { .. }));
}

/// Window mode at 20/s for headers that claim as much, `window_starts` starts
/// into a window (the first at `phase_ms`), then two contradictions 10 ms
/// later: when the first even-paced start comes, after the first start.
/// Window mode began with a reply a second before, in a window that kept
/// even pacing to its end (see `Windows::stay_even_in`).
fn resume_after_leaving_windows(phase_ms: u64, window_starts: usize) -> Duration {
    let at = clock(phase_ms);
    let limiter = Limiter::new(Rate::per_second(20.0));
    let entry = at(Duration::ZERO);
    limiter.accepted(&limiter.reserve_at(entry), Some(&kong_hint(20, 19)), entry);
    let t0 = at(Duration::from_secs(1));
    let mut booked: Vec<Reservation> = (0..window_starts).map(|_| limiter.reserve_at(t0)).collect();
    let now = at(booked.last().map_or(t0.instant, |r| r.start) - entry.instant + ms(10));
    for _ in 0..2 {
        let contradicted = booked.pop().unwrap_or_else(|| limiter.reserve_at(now));
        limiter.rejected(&contradicted, None, None, now);
    }
    assert!(matches!(limiter.pacing_model(), PacingModel::Even { .. }));
    limiter.reserve_at(now).start - t0.instant
}

#[test]
fn leaving_windows_resumes_even_pacing_without_wasting_the_second() {
    // Three starts 100 ms into a second (the first, two of the window's
    // budget at once): pacing goes on one interval after the second
    // contradiction, not at the next wall-clock second.
    let next = resume_after_leaving_windows(100, 3);
    assert!(next >= ms(60) && next < ms(61), "{next:?}");
    // Twelve starts in the window's first 75 ms: as if they had been paced
    // evenly from its beginning, so that second gets no more than 20.
    let next = resume_after_leaving_windows(0, 12);
    assert!(next >= ms(600) && next < ms(602), "{next:?}");
}

#[test]
fn remaining_zero_on_429s_alone_is_no_spent_window() {
    // A leaky bucket that adds `X-RateLimit-Remaining-Second: 0` and
    // `Retry-After: 1` to its 429s, and no headers to its successes: its
    // 429 is a spacing error, not a spent window.
    let at = clock(500);
    let limiter = Limiter::new(Rate::per_second(20.0));
    let t0 = at(Duration::ZERO);
    let first = limiter.reserve_at(t0);
    limiter.accepted(&first, None, t0);
    let booked = limiter.reserve_at(t0);
    let other = limiter.reserve_at(t0);
    let backoff = limiter.rejected(
        &booked,
        Some(Duration::from_secs(1)),
        Some(&kong_hint(20, 0)),
        t0,
    );
    assert!(matches!(backoff, Backoff::Job { .. }), "{backoff:?}");
    assert!(!limiter.is_void(&other));
}

#[test]
fn spent_windows_right_after_a_fresh_window_stop_pausing_everyone() {
    // Window counts on successes, but the 429s that say "spent" come again
    // right after the fresh window opened: not a window limit after all.
    let at = clock(500);
    let limiter = Limiter::new(Rate::per_second(20.0));
    let t0 = at(Duration::ZERO);
    let first = limiter.reserve_at(t0);
    limiter.accepted(&first, Some(&kong_hint(20, 19)), t0);
    let booked = limiter.reserve_at(t0);
    let spent = limiter.rejected(&booked, None, Some(&kong_hint(20, 0)), t0);
    assert!(matches!(
        spent,
        Backoff::Everyone {
            reason: PauseReason::WindowSpent,
            ..
        }
    ));
    let t1 = at(ms(600));
    let fresh = limiter.reserve_at(t1);
    limiter.accepted(&fresh, Some(&kong_hint(20, 19)), t1);
    let next = limiter.reserve_at(t1);
    let again = limiter.rejected(&next, None, Some(&kong_hint(20, 0)), t1);
    assert!(
        !matches!(
            again,
            Backoff::Everyone {
                reason: PauseReason::WindowSpent,
                ..
            }
        ),
        "{again:?}"
    );
}

#[test]
fn persisting_429s_cut_the_rate_in_force_and_successes_win_it_back() {
    let at = clock(0);
    let limiter = Limiter::new(Rate::per_second(20.0));
    let mut offset = Duration::ZERO;
    // Every other request rejected: a key shared with another client.
    let mut cut = f64::MAX;
    for i in 0..40 {
        offset += ms(50);
        let booked = limiter.reserve_at(at(offset));
        if i % 2 == 0 {
            limiter.rejected(&booked, None, None, at(offset));
        } else {
            limiter.accepted(&booked, None, at(offset));
        }
        cut = cut.min(limiter.rate_in_force().unwrap().per_second_f64());
    }
    assert!(cut < 20.0 * 0.8 + 1e-9, "{cut}");
    let cuts = limiter.status().rate_cuts;
    assert!(cuts >= 1, "the status counts the cuts");
    for _ in 0..2000 {
        offset += ms(50);
        let booked = limiter.reserve_at(at(offset));
        limiter.accepted(&booked, None, at(offset));
    }
    assert_eq!(limiter.rate_in_force(), Rate::per_second(20.0));
    assert_eq!(limiter.status().rate_cuts, cuts, "climbing back is no cut");
}

/// Books the next slot at or after `offset` and moves `offset` to its start.
fn book_next(
    limiter: &Limiter,
    at: &impl Fn(Duration) -> Now,
    offset: &mut Duration,
) -> Reservation {
    let booked = limiter.reserve_at(at(*offset));
    *offset = (*offset).max(booked.start - at(Duration::ZERO).instant);
    booked
}

#[test]
fn a_cut_holds_every_start_for_three_allotted_intervals() {
    // Every other request rejected: the rate is too high for the key. The
    // cut comes with a short pause that lets a gateway counting over a
    // window see the excess leave it.
    let at = clock(0);
    let limiter = Limiter::new(Rate::per_second(20.0));
    let mut offset = Duration::ZERO;
    for i in 0..100 {
        offset += ms(50);
        let booked = book_next(&limiter, &at, &mut offset);
        if i % 2 == 1 {
            limiter.accepted(&booked, None, at(offset));
            continue;
        }
        if let Backoff::Everyone { until, reason } =
            limiter.rejected(&booked, None, None, at(offset))
        {
            assert_eq!(reason, PauseReason::Persistent);
            assert_eq!(until - at(offset).instant, ms(150));
            assert_eq!(limiter.rate_in_force(), Rate::per_second(16.0));
            return;
        }
    }
    panic!("no cut: {:?}", limiter.rate_in_force());
}

/// Ten requests accepted at 20/s from `offset` (a clean stretch before a
/// run of 429s); moves `offset` to the next interval.
fn accept_clean_stretch(limiter: &Limiter, at: &impl Fn(Duration) -> Now, offset: &mut Duration) {
    for _ in 0..10 {
        let booked = book_next(limiter, at, offset);
        limiter.accepted(&booked, None, at(*offset));
        *offset += ms(50);
    }
}

/// A pause for a window spent by clients together, from the run's first
/// rejected request: the window and its guard.
fn assert_spent_window_pause(pause: Duration) {
    assert_eq!(pause, ms(1_020), "the spent window's pause");
}

/// Two clients at the full rate on a sliding window that counts
/// rejections: after half a second everything is rejected. Drives one of
/// them (at 20/s) through a clean stretch and a run of 429s; returns the
/// pause the run drew, from its first rejected request, and when the
/// first start after it comes, from the pause's end.
fn pause_for_a_window_spent_together(limiter: &Limiter) -> (Duration, Duration) {
    let at = clock(0);
    let mut offset = Duration::ZERO;
    accept_clean_stretch(limiter, &at, &mut offset);
    let mut run_began = None;
    for _ in 0..3 {
        let booked = book_next(limiter, &at, &mut offset);
        let first = *run_began.get_or_insert(booked.start);
        if let Backoff::Everyone { until, reason } =
            limiter.rejected(&booked, None, None, at(offset))
        {
            if until >= first + Duration::from_secs(1) {
                assert_eq!(reason, PauseReason::Persistent);
                let resumed = limiter.reserve_at(at(until - at(Duration::ZERO).instant));
                return (until - first, resumed.start - until);
            }
        }
        offset += ms(50);
    }
    panic!("no pause for a spent window: {:?}", limiter.rate_in_force());
}

#[test]
fn a_window_spent_by_clients_together_holds_every_start_a_window_from_the_first_429() {
    // The cut goes to this client's half, and nothing starts until the
    // run's first rejected request has left the window (a request sent
    // sooner would be rejected and counted, keeping the window spent).
    let limiter = Limiter::new(Rate::per_second(20.0));
    let (pause, first_start) = pause_for_a_window_spent_together(&limiter);
    let share = limiter.rate_in_force().unwrap().per_second_f64() / 20.0;
    assert!((share - 0.485).abs() < 1e-6, "{share}");
    assert_spent_window_pause(pause);
    // Within one interval at the cut rate (see the next test).
    let interval = limiter.rate_in_force().unwrap().interval();
    assert!(first_start < interval.mul_f64(1.01), "{first_start:?}");
}

#[test]
fn clients_that_spent_a_window_together_do_not_resume_together() {
    // Their pauses end together; their first starts after it are spread
    // over one interval at the cut rate (about 103 ms).
    let first_starts: Vec<Duration> = (0..20)
        .map(|_| pause_for_a_window_spent_together(&Limiter::new(Rate::per_second(20.0))).1)
        .collect();
    let earliest = first_starts.iter().min().unwrap();
    let latest = first_starts.iter().max().unwrap();
    assert!(*latest - *earliest > ms(30), "{first_starts:?}");
}

#[test]
fn a_429_after_a_spent_windows_pause_is_the_first_of_its_own() {
    // A sliding estimate that weighs the previous window keeps it spent a
    // little past the pause: that 429's job waits, and the others go on at
    // the cut rate. Counted as the run's next, it held every start for
    // four intervals at that rate (0.8 s at 20/s cut to a quarter). The
    // requests sent before the cut are the run's, whenever they answer.
    let at = clock(0);
    let limiter = Limiter::new(Rate::per_second(20.0));
    let mut offset = Duration::ZERO;
    accept_clean_stretch(&limiter, &at, &mut offset);
    let sent: Vec<Reservation> = (0..6)
        .map(|_| {
            let booked = book_next(&limiter, &at, &mut offset);
            offset += ms(50);
            booked
        })
        .collect();
    // Rejections answer 175 ms after their start: the third makes the cut,
    // with three more requests on the wire.
    let answer = |booked: &Reservation| at(booked.start - at(Duration::ZERO).instant + ms(175));
    let mut pause_end = None;
    for booked in &sent[..3] {
        if let Backoff::Everyone { until, .. } =
            limiter.rejected(booked, None, None, answer(booked))
        {
            pause_end = Some(until);
        }
    }
    let pause_end = pause_end.expect("a pause for the spent window");
    assert_spent_window_pause(pause_end - sent[0].start);
    for booked in &sent[3..] {
        assert!(
            booked.start < answer(&sent[2]).instant,
            "sent before the cut"
        );
        let backoff = limiter.rejected(booked, None, None, answer(booked));
        assert!(matches!(backoff, Backoff::Job { .. }), "{backoff:?}");
    }
    offset = pause_end - at(Duration::ZERO).instant;
    let booked = book_next(&limiter, &at, &mut offset);
    let backoff = limiter.rejected(&booked, None, None, at(offset));
    assert!(matches!(backoff, Backoff::Job { .. }), "{backoff:?}");
}

#[test]
fn a_success_released_before_a_rejected_request_does_not_break_its_run() {
    // Threads whose slots have passed race to keep the gap after the last
    // start: the request booked next may leave first. Its success, slower
    // to answer than the 429s, comes after the first of them; the run of
    // 429s is still one run, ordered as the requests left.
    let at = clock(0);
    let limiter = Limiter::new(Rate::per_second(20.0));
    let mut offset = Duration::ZERO;
    accept_clean_stretch(&limiter, &at, &mut offset);
    let first = book_next(&limiter, &at, &mut offset);
    let next = limiter.reserve_at(at(offset));
    let (first, next) = (
        Reservation {
            released: Some(next.start),
            ..first
        },
        Reservation {
            released: Some(first.start),
            ..next
        },
    );
    offset = next.start - at(Duration::ZERO).instant;
    let lone = limiter.rejected(&first, None, None, at(offset + ms(1)));
    assert!(matches!(lone, Backoff::Job { .. }), "{lone:?}");
    limiter.accepted(&next, None, at(offset + ms(10)));
    for _ in 0..2 {
        offset += ms(50);
        let booked = book_next(&limiter, &at, &mut offset);
        let backoff = limiter.rejected(&booked, None, None, at(offset));
        if let Backoff::Everyone { until, .. } = backoff {
            // A window after the first to leave.
            assert_spent_window_pause(until - first.actual_start());
            return;
        }
    }
    panic!("no pause for a spent window: {:?}", limiter.rate_in_force());
}

/// Drives `limiter` for `seconds` against a gateway answering at once, with
/// `hint` on its successes: `accepts(start, accepted_starts, all_starts)`
/// decides each request. Returns each request's start and whether it
/// passed, and the backoff each 429 drew.
fn drive(
    limiter: &Limiter,
    at: &impl Fn(Duration) -> Now,
    seconds: u64,
    hint: Option<&GatewayHint>,
    mut accepts: impl FnMut(Duration, &[Duration], &[Duration]) -> bool,
) -> Vec<(Duration, bool, Option<Backoff>)> {
    let mut offset = Duration::ZERO;
    let (mut passed, mut all, mut replies) = (Vec::new(), Vec::new(), Vec::new());
    while offset < Duration::from_secs(seconds) {
        let booked = book_next(limiter, at, &mut offset);
        let ok = accepts(offset, &passed, &all);
        all.push(offset);
        if ok {
            passed.push(offset);
            limiter.accepted(&booked, hint, at(offset));
            replies.push((offset, true, None));
        } else {
            let backoff = limiter.rejected(&booked, None, None, at(offset));
            replies.push((offset, false, Some(backoff)));
        }
    }
    replies
}

#[test]
fn the_gap_that_passed_before_a_start_is_the_one_between_the_two_booked_before_it() {
    let at = clock(0);
    let limiter = Limiter::new(Rate::per_second(20.0));
    let first = limiter.reserve_at(at(ms(0)));
    let second = limiter.reserve_at(at(ms(200)));
    let third = limiter.reserve_at(at(ms(210)));
    assert_eq!(second.start - first.start, ms(200));
    assert!(third.start - second.start < ms(100));
    let schedule = &limiter.state.lock().schedule;
    assert_eq!(schedule.last_gap_before(third.start), Some(ms(200)));
    assert_eq!(
        schedule.last_gap_before(second.start),
        None,
        "one booked before"
    );
}

#[test]
fn a_probes_429_on_a_leaky_bucket_marks_the_cliff_and_the_rate_settles_just_under_it() {
    // Told twice the rate of a leaky bucket without burst. Cuts land on
    // what passed while every other request was rejected (about 80 % of
    // the gateway's rate); a probe's first 429 then says the cliff is at the
    // last gap that passed or a little above, and the rate goes to just
    // under it instead of back to the cut's. At 10/s a probe's steps are
    // largest, and an estimate from the rejected request's own gap would
    // land on the cliff.
    for gateway_rate in [20u64, 5] {
        let interval = ms(1000 / gateway_rate);
        let limiter = Limiter::new(Rate::per_second(2.0 * gateway_rate as f64));
        let leaky = |start: Duration, passed: &[Duration], _: &[Duration]| {
            passed.last().is_none_or(|last| start - *last >= interval)
        };
        let replies = drive(&limiter, &clock(0), 40, None, leaky);
        let late: Vec<_> = replies
            .iter()
            .filter(|(start, _, _)| *start >= Duration::from_secs(20))
            .collect();
        let accepted = late.iter().filter(|(_, ok, _)| *ok).count() as u64;
        let rejected = late.len() as u64 - accepted;
        let rate = limiter.rate_in_force().unwrap().per_second_f64();
        let cliff = gateway_rate as f64;
        assert!((0.95 * cliff..cliff).contains(&rate), "{rate} on {cliff}/s");
        assert!(
            accepted >= 18 * gateway_rate,
            "{accepted} accepted in 20 s on {cliff}/s"
        );
        assert!(rejected <= 6, "{rejected} rejected in 20 s on {cliff}/s");
    }
}

#[test]
fn no_cliff_is_read_where_replies_carry_window_counts() {
    // The same leaky bucket behind a layer whose successes announce 1000 a
    // second: windows that do not bind (no window mode), but a gateway that
    // counts windows somewhere. A gap that passed says nothing of it.
    let limiter = Limiter::new(Rate::per_second(40.0));
    let leaky = |start: Duration, passed: &[Duration], _: &[Duration]| {
        passed.last().is_none_or(|last| start - *last >= ms(50))
    };
    drive(&limiter, &clock(0), 40, Some(&kong_hint(1000, 999)), leaky);
    let rate = limiter.rate_in_force().unwrap().per_second_f64();
    assert!(rate < 18.0, "a cliff read: {rate}");
}

#[test]
fn a_share_risen_by_a_quarter_books_the_waiting_slots_again() {
    let at = clock(0);
    let limiter = Limiter::new(Rate::per_second(20.0));
    let mut offset = Duration::ZERO;
    // Every other request rejected until the second cut.
    let mut cuts = 0;
    let mut rate = 20.0;
    for i in 0..1000 {
        offset += ms(50);
        let booked = book_next(&limiter, &at, &mut offset);
        if i % 2 == 0 {
            limiter.rejected(&booked, None, None, at(offset));
        } else {
            limiter.accepted(&booked, None, at(offset));
        }
        let now = limiter.rate_in_force().unwrap().per_second_f64();
        cuts += usize::from(now < rate);
        rate = now;
        if cuts == 2 {
            break;
        }
    }
    assert!(rate < 16.0, "two cuts: {rate}");
    offset += ms(1000);
    // A worker's slot, booked at the cut rate, ahead of its start.
    let waiting = limiter.reserve_at(at(offset));
    // Successes from now on: not void until the rate rose by a quarter.
    for _ in 0..1000 {
        let now = limiter.rate_in_force().unwrap().per_second_f64();
        if now >= 20.0 {
            break;
        }
        if now < rate * 1.25 {
            assert!(!limiter.is_void(&waiting), "at {now}, cut at {rate}");
        }
        let booked = book_next(&limiter, &at, &mut offset);
        limiter.accepted(&booked, None, at(offset));
        if limiter.is_void(&waiting) {
            // The next slot is spaced by the rate that voided it.
            let interval = limiter.rate_in_force().unwrap().interval();
            let next = book_next(&limiter, &at, &mut offset);
            let gap = next.start - booked.start;
            assert!(gap <= interval.mul_f64(1.01), "{gap:?} after {interval:?}");
            return;
        }
    }
    panic!("never booked again: {:?}", limiter.rate_in_force());
}

#[test]
fn a_wall_clock_step_back_does_not_stall_window_mode() {
    let clock = FakeClock::starting_at(UNIX_EPOCH + Duration::from_millis(1_700_000_000_300));
    let limiter = Limiter::with_clock(Rate::per_second(4.0), clock.clone());
    let stop = Stop::new();
    let first = limiter.acquire(&stop).unwrap();
    limiter.accepted(&first, Some(&kong_hint(4, 3)), clock.now());
    for _ in 0..3 {
        limiter.acquire(&stop).unwrap();
    }
    clock.step_wall_back(Duration::from_secs(30));
    let before = clock.now().instant;
    for _ in 0..8 {
        limiter.acquire(&stop).unwrap();
    }
    let waited = clock.now().instant - before;
    assert!(waited < Duration::from_secs(4), "stalled {waited:?}");
}

#[test]
fn a_pause_is_counted_and_says_why() {
    let clock = fake_clock();
    let limiter = Limiter::with_clock(Rate::per_second(4.0), clock.clone());
    let booked = limiter.reserve_at(clock.now());
    limiter.rejected(&booked, Some(Duration::from_secs(30)), None, clock.now());
    let (reason, until) = limiter.pause_reason().unwrap();
    assert_eq!(reason, PauseReason::RetryAfter);
    assert_eq!(
        until.duration_since(clock.now().wall).unwrap(),
        Duration::from_secs(30)
    );
    clock.advance(Duration::from_secs(31));
    assert_eq!(limiter.pause_reason(), None);
    assert_eq!(limiter.paused_total(), Duration::from_secs(30));
}

/// A discrete-event run of a pool against a simulated gateway: `workers`
/// threads, each reserving, starting, and waiting `latency` for the reply.
struct Simulation {
    jobs: usize,
    workers: usize,
    latency: Duration,
    phase_ms: u64,
}

#[derive(Debug, Default)]
struct SimResult {
    first_start: Option<Duration>,
    last_end: Duration,
    accepted: usize,
    rejected: usize,
    per_window: BTreeMap<u64, u32>,
}

impl SimResult {
    fn throughput(&self) -> f64 {
        self.accepted as f64 / (self.last_end - self.first_start.unwrap()).as_secs_f64()
    }
}

impl Simulation {
    /// Against a Kong-style gateway: `limit` per wall-clock second.
    fn kong(&self, limiter: &Limiter, limit: u32) -> SimResult {
        self.kong_shared(&[limiter], limit).remove(0)
    }

    /// Uncoordinated clients on one key of a Kong-style gateway, each with
    /// `workers` threads and `jobs` jobs of its own.
    fn kong_shared(&self, limiters: &[&Limiter], limit: u32) -> Vec<SimResult> {
        let at = clock(self.phase_ms);
        let clients = limiters.len();
        let mut results: Vec<SimResult> = (0..clients).map(|_| SimResult::default()).collect();
        let mut counts: BTreeMap<u64, u32> = BTreeMap::new();
        #[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
        enum Event {
            Free,
            Start(u64),
            Reply(u64, bool, u32),
        }
        let mut reservations = Vec::new();
        // Worker `w` is client `w % clients`'s.
        let mut current = vec![u64::MAX; self.workers * clients];
        let mut events = BinaryHeap::new();
        for worker in 0..current.len() {
            events.push(Reverse((Duration::ZERO, worker, Event::Free)));
        }
        let mut left = vec![self.jobs; clients];
        while let Some(Reverse((time, worker, event))) = events.pop() {
            let now = at(time);
            let client = worker % clients;
            let (limiter, result) = (limiters[client], &mut results[client]);
            match event {
                Event::Free => {
                    if left[client] == 0 {
                        continue;
                    }
                    left[client] -= 1;
                    reservations.push(limiter.reserve_at(now));
                    let id = reservations.len() as u64 - 1;
                    current[worker] = id;
                    let start = reservations[id as usize].start - at(Duration::ZERO).instant;
                    events.push(Reverse((start, worker, Event::Start(id))));
                }
                Event::Start(id) if id != current[worker] => {}
                Event::Start(id) => {
                    if limiter.is_void(&reservations[id as usize]) {
                        reservations.push(limiter.reserve_at(now));
                        let again = reservations.len() as u64 - 1;
                        current[worker] = again;
                        let start = reservations[again as usize].start - at(Duration::ZERO).instant;
                        events.push(Reverse((start.max(time), worker, Event::Start(again))));
                        continue;
                    }
                    current[worker] = u64::MAX;
                    result.first_start.get_or_insert(time);
                    let window = now.since_epoch().as_secs();
                    let count = counts.entry(window).or_default();
                    if *count < limit {
                        *count += 1;
                        *result.per_window.entry(window).or_default() += 1;
                        let remaining = limit - *count;
                        events.push(Reverse((
                            time + self.latency,
                            worker,
                            Event::Reply(id, true, remaining),
                        )));
                    } else {
                        events.push(Reverse((time + ms(2), worker, Event::Reply(id, false, 0))));
                    }
                }
                Event::Reply(id, ok, remaining) => {
                    let reservation = reservations[id as usize];
                    let mut free_at = time;
                    let generation = limiter.generation();
                    if ok {
                        result.accepted += 1;
                        result.last_end = result.last_end.max(time);
                        limiter.accepted(&reservation, Some(&kong_hint(limit, remaining)), now);
                    } else {
                        result.rejected += 1;
                        left[client] += 1;
                        let backoff =
                            limiter.rejected(&reservation, None, Some(&kong_hint(limit, 0)), now);
                        free_at = free_at.max(backoff.until() - at(Duration::ZERO).instant);
                    }
                    events.push(Reverse((free_at, worker, Event::Free)));
                    // Sleepers whose slots were voided wake now, as in acquire.
                    if limiter.generation() != generation {
                        for (sleeper, id) in current.iter().enumerate() {
                            if *id != u64::MAX && sleeper % clients == client {
                                events.push(Reverse((time, sleeper, Event::Start(*id))));
                            }
                        }
                    }
                }
            }
        }
        results
    }
}

#[test]
fn the_tutorials_workload_uses_every_window_without_a_429() {
    // 36 requests, 4 per second in fixed windows, 1.16 s latency: pacing
    // alone gives about 3.6; learning the windows from the first reply gives
    // more than 3.9, whatever the phase of the first start.
    for phase_ms in [0, 130, 370, 500, 620, 880, 990] {
        for workers in [8, 12, 40] {
            let simulation = Simulation {
                jobs: 36,
                workers,
                latency: ms(1160),
                phase_ms,
            };
            let limiter = Limiter::new(Rate::per_second(4.0)).aligned_to_windows();
            let result = simulation.kong(&limiter, 4);
            assert_eq!(result.accepted, 36);
            assert_eq!(result.rejected, 0, "phase {phase_ms} workers {workers}");
            let throughput = result.throughput();
            assert!(
                throughput >= 3.9,
                "phase {phase_ms}, {workers} workers: {throughput:.2}"
            );
        }
    }
}

#[test]
fn too_fast_a_rate_meets_the_window_once_then_keeps_to_it() {
    let simulation = Simulation {
        jobs: 200,
        workers: 40,
        latency: ms(300),
        phase_ms: 450,
    };
    let limiter = Limiter::new(Rate::per_second(20.0));
    let result = simulation.kong(&limiter, 8);
    assert_eq!(result.accepted, 200);
    assert!(result.rejected <= 8, "{} rejections", result.rejected);
    assert!(result.per_window.values().all(|n| *n <= 8));
    assert!(matches!(
        limiter.pacing_model(),
        PacingModel::Windows { budget: 8, .. }
    ));
}

#[test]
fn uncoordinated_clients_on_one_key_share_the_windows_without_colliding() {
    // Each told the whole rate, each learns from the gateway's counts what
    // the others take. Only the first window, where the bursts of clients
    // that know nothing of each other meet, draws 429s; from then on the
    // windows are used whole, each client about its fair share.
    for clients in [2, 4] {
        let simulation = Simulation {
            jobs: 300 / clients,
            workers: 16,
            latency: ms(50),
            phase_ms: 300,
        };
        let limiters: Vec<Limiter> = (0..clients)
            .map(|_| Limiter::new(Rate::per_second(20.0)).aligned_to_windows())
            .collect();
        let results = simulation.kong_shared(&limiters.iter().collect::<Vec<_>>(), 20);
        let rejected: usize = results.iter().map(|r| r.rejected).sum();
        assert!(rejected < 20, "{clients} clients: {rejected} 429s");
        let mut per_window = BTreeMap::<u64, u32>::new();
        for result in &results {
            assert_eq!(result.accepted, 300 / clients);
            for (window, n) in &result.per_window {
                *per_window.entry(*window).or_default() += n;
            }
        }
        // Until the first client runs out of jobs.
        let first = *per_window.keys().next().unwrap();
        let windows = first..first + results.iter().map(|r| r.last_end).min().unwrap().as_secs();
        for (window, n) in per_window.range(windows.clone()) {
            assert_eq!(*n, 20, "{clients} clients, window {window}: {per_window:?}");
        }
        let fair = 20 * (windows.end - windows.start) / clients as u64;
        for result in &results {
            let mine: u32 = result
                .per_window
                .range(windows.clone())
                .map(|(_, n)| n)
                .sum();
            let mine = u64::from(mine);
            assert!(
                mine * 4 >= fair * 3 && mine * 4 <= fair * 5,
                "{mine} of {fair}"
            );
        }
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// GCRA's tight invariant, whatever the arrival pattern, the learned
        /// margin and the pauses: any span of k intervals holds at most
        /// k + burst - 1 starts.
        #[test]
        fn never_more_than_rate_plus_burst_in_any_span(
            rate in 1.0f64..1000.0,
            burst in 1u32..8,
            gaps in prop::collection::vec(0u64..3_000, 1..400),
            rejections in prop::collection::vec(any::<bool>(), 0..20),
            k in 1u32..20,
        ) {
            let rate = Rate::per_second(rate).unwrap().with_burst(NonZeroU32::new(burst).unwrap());
            let limiter = Limiter::new(Some(rate));
            let at = clock(0);
            let mut offset = Duration::ZERO;
            let mut booked: Vec<Reservation> = Vec::new();
            let mut pauses: Vec<Pause> = Vec::new();
            for (i, gap) in gaps.iter().enumerate() {
                offset += rate.interval().mul_f64(*gap as f64 / 1000.0);
                booked.push(limiter.reserve_at(at(offset)));
                // Now and then a rejection without a hint widens the margin
                // (and may pause): the invariant must still hold.
                if rejections.get(i % 20).copied().unwrap_or(false) && i % 7 == 0 {
                    let before = limiter.generation();
                    limiter.rejected(booked.last().unwrap(), None, None, at(offset));
                    if limiter.generation() != before {
                        // Replays the pause (a later one never shortens it)
                        // to learn which slots the limiter's own rule voids.
                        pauses.push(limiter.pause_at(at(offset).instant, at(offset)));
                    }
                }
            }
            let mut starts: Vec<Instant> = booked
                .iter()
                .filter(|r| !pauses.iter().any(|pause| pause.voids(r)))
                .map(|r| r.start)
                .collect();
            starts.sort();
            let span = rate.interval() * k;
            // GCRA with tolerance (burst - 1) intervals: starts i and
            // i + n - 1 are at least (n - burst) intervals apart.
            let bound = k + burst - 1;
            for (i, first) in starts.iter().enumerate() {
                let inside = starts[i..].iter().take_while(|s| **s - *first < span).count();
                prop_assert!(inside as u32 <= bound, "{} starts in {:?}", inside, span);
            }
        }
    }
}

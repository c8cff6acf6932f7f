//! The shared limit against a real `redis-server` that each test starts on
//! a free loopback port (and kills when it ends). No mock of Redis.
#![cfg(feature = "redis")]

mod common;

use common::redis_server::{free_port, Redis};
use common::{signal, wait_until};

use restb::api::ClientKey;
use restb::limiter::{
    Backoff, Limiter, Now, PacingModel, PauseReason, Rate, SharedPacing, SharedSlots,
};
use restb::mock::{MockConfig, MockServer};
use restb::pool::BudgetCounter;
use restb::shared_limit::{
    RedisBudget, RedisUrl, ScheduleKey, SharedLimit, SharedLimitConfig, SharedLimitError,
    SharedSchedule, LOOKAHEAD,
};
use restb::stop::Stop;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn schedule_key(name: &str) -> ScheduleKey {
    ScheduleKey::new(&ClientKey::new(name).unwrap(), "http://127.0.0.1:1")
}

fn connect(url: &str, key: &str, rps: f64) -> Result<SharedLimit, SharedLimitError> {
    let url = RedisUrl::parse(url).unwrap();
    let config = SharedLimitConfig::new(url, schedule_key(key), Rate::per_second(rps).unwrap());
    SharedLimit::connect(config)
}

/// A limiter at `rps` on the schedule of `key` held in `redis`, and that
/// schedule.
fn shared_limiter(redis: &Redis, key: &str, rps: f64) -> (Arc<SharedSchedule>, Limiter) {
    let schedule = Arc::new(SharedSchedule::new(
        connect(&redis.url(), key, rps).unwrap(),
    ));
    let slots: Arc<dyn SharedSlots> = schedule.clone();
    let limiter = Limiter::new(Rate::per_second(rps)).shared(SharedPacing::new(slots));
    (schedule, limiter)
}

const MS: Duration = Duration::from_millis(1);

#[test]
fn slots_are_one_interval_apart_across_two_processes() {
    let redis = Redis::start();
    let a = connect(&redis.url(), "key-1", 10.0).unwrap();
    let b = connect(&redis.url(), "key-1", 10.0).unwrap();
    let interval = Duration::from_millis(100);
    // (start, round trip measured around the call)
    let slots: Vec<(Instant, Duration)> = (0..10)
        .map(|n| {
            let limit = if n % 2 == 0 { &a } else { &b };
            let sent = Instant::now();
            let start = limit.reserve(interval, 1.0).unwrap().start;
            (start, sent.elapsed())
        })
        .collect();
    // Each start is placed on our clock within half its round trip of
    // where Redis put it, so a gap is off by at most half of both trips.
    for pair in slots.windows(2) {
        let [(first, trip_1), (second, trip_2)] = [pair[0], pair[1]];
        let gap = second.saturating_duration_since(first);
        let slack = (trip_1 + trip_2) / 2 + Duration::from_micros(100);
        let off = gap.abs_diff(interval);
        assert!(off <= slack, "gap {gap:?}, slack {slack:?}");
    }
    assert_eq!(a.peers().live.max(b.peers().live), 2);
    assert_eq!(a.round_trips().count + b.round_trips().count, 10);
}

/// A slot asked for no earlier than a time (the end of this process's
/// pause, which may reach Redis a moment later) is booked there in Redis
/// too: booked earlier, it was wasted, and the other processes' slots came
/// right after the pause together with ours. A time further ahead than a
/// booking's look-ahead books nothing yet (a turn): held in Redis, it held
/// every other process's slots until then, even for a pause Redis never
/// heard of (one set while it was lost).
#[test]
fn a_slot_asked_for_after_a_time_is_booked_after_it_in_redis_too() {
    let redis = Redis::start();
    let a = SharedSchedule::new(connect(&redis.url(), "key-h", 10.0).unwrap());
    let b = SharedSchedule::new(connect(&redis.url(), "key-h", 10.0).unwrap());
    let interval = Duration::from_millis(100);
    let earliest = Instant::now() + Duration::from_millis(60);
    let ours = a.book(earliest, interval);
    assert!(ours.start >= earliest && !ours.turn, "{ours:?}");
    let theirs = b.book(Instant::now(), interval);
    assert!(
        theirs.start + 5 * MS >= ours.start + interval,
        "{:?} after ours",
        theirs.start.checked_duration_since(ours.start)
    );

    let far = Instant::now() + Duration::from_secs(2);
    let asked_at = Instant::now();
    let ours = a.book(far, interval);
    assert!(ours.turn, "nothing booked 2 s ahead: {ours:?}");
    let c = SharedSchedule::new(connect(&redis.url(), "key-h", 10.0).unwrap());
    let theirs = c.book(Instant::now(), interval);
    assert!(!theirs.turn, "{theirs:?}");
    assert!(
        theirs.start < asked_at + Duration::from_millis(1500),
        "held {:?} by a time of ours far ahead",
        theirs.start.checked_duration_since(asked_at)
    );
}

#[test]
fn different_keys_have_independent_schedules() {
    let redis = Redis::start();
    let a = connect(&redis.url(), "key-a", 1.0).unwrap();
    let b = connect(&redis.url(), "key-b", 1.0).unwrap();
    let second = Duration::from_secs(1);
    let now = Instant::now();
    a.reserve(second, 1.0).unwrap();
    let a2 = a.reserve(second, 1.0).unwrap().start;
    let b1 = b.reserve(second, 1.0).unwrap().start;
    assert!(a2 >= now + second - 5 * MS, "key-a's second slot waits");
    assert!(b1 < now + 100 * MS, "key-b's first slot does not");
}

#[test]
fn a_pause_written_by_one_process_holds_the_other() {
    let redis = Redis::start();
    let a = connect(&redis.url(), "key-p", 100.0).unwrap();
    let b = connect(&redis.url(), "key-p", 100.0).unwrap();
    let until = Instant::now() + Duration::from_millis(800);
    let end = a.pause(until, "Retry-After: 0.8").unwrap();
    assert!(end > until - 20 * MS && end < until + 20 * MS);
    let grant = b.reserve(Duration::from_millis(10), 1.0).unwrap();
    assert!(grant.start >= until - 20 * MS, "{:?}", until - grant.start);
    let paused = grant.paused_until.expect("the reply names the pause");
    assert!(paused > until - 20 * MS && paused < until + 20 * MS);
    // A shorter pause does not cut a longer one short.
    let shorter = b.pause(Instant::now() + 100 * MS, "short").unwrap();
    assert!(shorter > until - 20 * MS);
}

/// A limiter paused on a shared schedule asks again a look-ahead before
/// the pause ends, not at its end: asked then, the first start after the
/// pause waited for a Redis round trip (a review's finding).
#[test]
fn a_paused_shared_limiter_asks_again_before_the_pause_ends() {
    let redis = Redis::start();
    let (schedule, limiter) = shared_limiter(&redis, "key-w", 100.0);
    let until = Instant::now() + Duration::from_millis(800);
    schedule.limit().pause(until, "Retry-After: 0.8").unwrap();
    let heard = limiter.reserve_at(Now::system());
    assert!(heard.start + 20 * MS >= until, "the first slot hears of it");
    let next = limiter.reserve_at(Now::system());
    assert!(next.is_turn(), "{next:?}");
    assert!(
        next.start + LOOKAHEAD / 2 <= until,
        "asked again {:?} before the end",
        until.checked_duration_since(next.start)
    );
}

/// Regression: a pause another process wrote was honoured in silence, so
/// a run held by it for ten minutes logged nothing and looked hung. It is
/// in the books now, with its reason, as a pause of our own would be.
#[test]
fn another_processs_pause_is_said_and_counted() {
    let redis = Redis::start();
    let (_schedule, limiter) = shared_limiter(&redis, "key-s", 100.0);
    limiter.reserve_at(Now::system());
    assert_eq!(limiter.pause_reason(), None);
    let other = connect(&redis.url(), "key-s", 100.0).unwrap();
    other
        .pause(
            Instant::now() + Duration::from_secs(600),
            "Retry-After: 600",
        )
        .unwrap();
    limiter.reserve_at(Now::system());
    let (reason, until) = limiter.pause_reason().expect("the pause is known");
    assert_eq!(reason, PauseReason::OtherProcess);
    let left = until.duration_since(std::time::SystemTime::now()).unwrap();
    assert!(left > Duration::from_secs(590), "{left:?}");
    assert!(limiter.paused_total() < Duration::from_secs(1), "so far");
}

/// A start told by one process reaches the others on the key (and only
/// them), mapped onto their clock through Redis's: the second process
/// keeps its gap after the first one's actual start, late or not.
#[test]
fn an_actual_start_is_told_to_the_other_processes_on_the_key() {
    let redis = Redis::start();
    let a = connect(&redis.url(), "key-s", 100.0).unwrap();
    let b = connect(&redis.url(), "key-s", 100.0).unwrap();
    let other_key = connect(&redis.url(), "key-t", 100.0).unwrap();
    for limit in [&a, &b, &other_key] {
        // A reservation maps Redis's clock onto ours.
        limit.reserve(Duration::from_millis(10), 1.0).unwrap();
    }
    // The others subscribe in the background: tell until one arrives.
    let mut told = None;
    for _ in 0..100 {
        let at = Instant::now() - Duration::from_millis(3);
        a.started(at, None);
        std::thread::sleep(20 * MS);
        if let Some(seen) = b.started_elsewhere() {
            told = Some((at, seen));
            break;
        }
    }
    let (at, seen) = told.expect("b never heard of a's start");
    // Each side maps within half a round trip: well under 5 ms here, and
    // seconds off if the clocks were not mapped through Redis's.
    assert!(seen.max(at) - seen.min(at) < 5 * MS, "{at:?} vs {seen:?}");
    assert_eq!(
        a.started_elsewhere(),
        None,
        "a process's own start is its own"
    );
    assert_eq!(
        other_key.started_elsewhere(),
        None,
        "another key's schedule"
    );
}

/// A loopback proxy to `port` that can go silent: after [`Silent::cut`] the
/// connections it carried pass nothing either way and stay open (a NAT's
/// state dropped, a host gone without a FIN), while new ones pass.
struct Silent {
    port: u16,
    cuts: Arc<std::sync::atomic::AtomicU64>,
}

impl Silent {
    fn to(port: u16) -> Silent {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let cuts = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let proxy = Silent {
            port: listener.local_addr().unwrap().port(),
            cuts: cuts.clone(),
        };
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", port)) else {
                    continue;
                };
                let born = cuts.load(Ordering::SeqCst);
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), upstream.try_clone().unwrap()),
                    (upstream, client),
                ] {
                    let cuts = cuts.clone();
                    std::thread::spawn(move || {
                        let mut buffer = [0u8; 4096];
                        while let Ok(n @ 1..) = from.read(&mut buffer) {
                            let silent = cuts.load(Ordering::SeqCst) != born;
                            if !silent && to.write_all(&buffer[..n]).is_err() {
                                return;
                            }
                        }
                    });
                }
            }
        });
        proxy
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn cut(&self) {
        self.cuts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// `teller` tells of a start until `listener` has heard one told after
/// `after` (bounded by `limit`); whether it did.
fn hears_a_start_after(
    listener: &SharedLimit,
    teller: &SharedLimit,
    after: Instant,
    limit: Duration,
) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        teller.started(Instant::now(), None);
        std::thread::sleep(50 * MS);
        if listener
            .started_elsewhere()
            .is_some_and(|seen| seen > after)
        {
            return true;
        }
    }
    false
}

/// Waits (boundedly) until `limit` has heard `rounds` rounds of
/// rejections from the others.
fn until_rounds_heard(limit: &SharedLimit, rounds: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while limit.rounds_heard().unwrap_or(0) < rounds {
        assert!(Instant::now() < deadline, "round {rounds} never heard");
        std::thread::sleep(10 * MS);
    }
}

/// A round of 429s that widened one process's pacing margin is heard by
/// the others on the key (each of 8 processes used to learn the same
/// jitter with its own 429s), and counted once however many tell of it.
#[test]
fn a_round_of_rejections_is_heard_by_the_others_once() {
    let redis = Redis::start();
    let a = connect(&redis.url(), "key-r", 100.0).unwrap();
    let b = connect(&redis.url(), "key-r", 100.0).unwrap();
    let other_key = connect(&redis.url(), "key-q", 100.0).unwrap();
    for limit in [&a, &b, &other_key] {
        limit.reserve(Duration::from_millis(10), 1.0).unwrap();
    }
    // Each subscribes in the background: listening once it hears a start.
    let now = Instant::now();
    assert!(hears_a_start_after(&b, &a, now, Duration::from_secs(5)));
    assert!(hears_a_start_after(&a, &b, now, Duration::from_secs(5)));

    let rejected = Instant::now() - 3 * MS;
    a.widened(rejected);
    until_rounds_heard(&b, 1);
    // b's request started before a told of the round: the same round; so
    // is a's own, told again.
    b.widened(rejected + MS);
    a.widened(rejected);
    std::thread::sleep(200 * MS);
    assert_eq!(
        a.rounds_heard(),
        Some(0),
        "its own, or one it did not tell of"
    );
    assert_eq!(b.rounds_heard(), Some(1));
    assert_eq!(
        other_key.rounds_heard().unwrap_or(0),
        0,
        "another key's schedule"
    );

    std::thread::sleep(5 * MS);
    b.widened(Instant::now());
    until_rounds_heard(&a, 1);
    assert_eq!(b.rounds_heard(), Some(1));
}

/// A process that joins a key whose processes widened their margins (for
/// rounds told before it listened) starts from the widest, told through
/// the heartbeats; one that leaves takes its margin with it.
#[test]
fn a_process_joining_starts_from_the_widest_margin_on_the_key() {
    let redis = Redis::start();
    let config = |rps: f64| {
        let url = RedisUrl::parse(&redis.url()).unwrap();
        let mut config =
            SharedLimitConfig::new(url, schedule_key("key-j"), Rate::per_second(rps).unwrap());
        config.heartbeat = 50 * MS;
        config
    };
    let first = Arc::new(SharedSchedule::new(
        SharedLimit::connect(config(100.0)).unwrap(),
    ));
    let slots: Arc<dyn SharedSlots> = first.clone();
    let early = Limiter::new(Rate::per_second(100.0)).shared(SharedPacing::new(slots));
    let margin = |limiter: &Limiter| match limiter.pacing_model() {
        PacingModel::Even { margin } => margin,
        other => panic!("{other:?}"),
    };
    let floor = margin(&early);
    // Two rounds of 429s, each told at the next booking.
    for _ in 0..2 {
        let booked = early.reserve_at(Now::system());
        let seen = Now {
            instant: booked.start + MS,
            wall: std::time::SystemTime::now(),
        };
        early.rejected(&booked, None, None, seen);
        early.accepted(&booked, None, seen);
    }
    early.reserve_at(Now::system());
    let widened = margin(&early);
    assert!(widened > 2.0 * floor, "{widened}");

    let deadline = Instant::now() + Duration::from_secs(5);
    let joined = loop {
        let late = SharedLimit::connect(config(100.0)).unwrap();
        if late.peers().widest_margin.is_some() {
            break late;
        }
        assert!(Instant::now() < deadline, "the margin was never told");
        std::thread::sleep(50 * MS);
    };
    let told = joined.peers().widest_margin.unwrap();
    assert!((told - widened).abs() < 2e-6, "{told} against {widened}");
    let slots: Arc<dyn SharedSlots> = Arc::new(SharedSchedule::new(joined));
    let late = Limiter::new(Rate::per_second(100.0)).shared(SharedPacing::new(slots));
    assert!((margin(&late) - told).abs() < 1e-12);

    drop(early);
    drop(first);
    let after = SharedLimit::connect(config(100.0)).unwrap();
    assert_eq!(after.peers().widest_margin, None, "gone with its process");
}

/// Which side of a start reaches Redis through a proxy that goes silent.
#[derive(Debug, Clone, Copy, PartialEq)]
enum CutOff {
    Listener,
    Teller,
}

/// A listener hears a teller's starts before `side` is cut off without a
/// word, and again (within `limit`) after.
fn heard_across_a_silent_cut(side: CutOff, key: &str, limit: Duration) {
    let redis = Redis::start();
    let proxy = Silent::to(redis.port);
    let url = |cut_off| {
        if side == cut_off {
            proxy.url()
        } else {
            redis.url()
        }
    };
    let listener = connect(&url(CutOff::Listener), key, 100.0).unwrap();
    let teller = connect(&url(CutOff::Teller), key, 100.0).unwrap();
    for limit in [&listener, &teller] {
        // A reservation maps Redis's clock onto ours.
        limit.reserve(Duration::from_millis(10), 1.0).unwrap();
    }
    let began = Instant::now();
    assert!(
        hears_a_start_after(&listener, &teller, began, Duration::from_secs(10)),
        "never heard a start before the cut"
    );
    proxy.cut();
    let cut = Instant::now();
    assert!(
        hears_a_start_after(&listener, &teller, cut, limit),
        "{side:?} cut off: the teller's starts unheard since the cut"
    );
}

/// Regression: a subscriber whose connection was lost without a word
/// waited for messages for ever (a read timeout is no error), so the
/// process went deaf to the others' starts for the rest of the run and
/// drew 429s on a leaky bucket. It asks its connection for an answer when
/// nothing came for two seconds, and reconnects when none comes.
#[test]
fn a_subscriber_cut_off_without_a_word_reconnects() {
    heard_across_a_silent_cut(CutOff::Listener, "key-d", Duration::from_secs(10));
}

/// A publishing connection cut off without a word takes the starts told
/// and passes none (a write fails only once TCP gives up, minutes later):
/// the others heard nothing of them. A process whose subscriber does not
/// hear its own starts back reopens the connection that tells them.
#[test]
fn a_publisher_cut_off_without_a_word_reconnects() {
    heard_across_a_silent_cut(CutOff::Teller, "key-e", Duration::from_secs(20));
}

/// `teller` tells that it started slot `seq` until `limit` has heard it
/// (bounded): the subscriber and the publishing side connect in the
/// background. Before a process has heard a start from another it reports
/// every slot as started (it cannot hear those told before it subscribed).
fn until_heard(limit: &SharedLimit, teller: &SharedLimit, seq: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while limit.slot_started(seq + 1) || !limit.slot_started(seq) {
        assert!(Instant::now() < deadline, "slot {seq} was never heard");
        teller.started(Instant::now(), Some(seq));
        std::thread::sleep(20 * MS);
    }
}

/// Slots are numbered in the order of their starts, across processes; a
/// start told with its number is known in every process on the key.
#[test]
fn slots_are_numbered_and_a_started_slot_is_known_everywhere() {
    let redis = Redis::start();
    let a = connect(&redis.url(), "key-n", 100.0).unwrap();
    let b = connect(&redis.url(), "key-n", 100.0).unwrap();
    let interval = Duration::from_millis(10);
    let numbers: Vec<u64> = (0..6)
        .map(|n| {
            let limit = if n % 2 == 0 { &a } else { &b };
            limit.reserve(interval, 1.0).unwrap().seq
        })
        .collect();
    assert_eq!(numbers, vec![1, 2, 3, 4, 5, 6]);
    assert!(b.slot_started(5), "nothing heard yet: nothing waited for");
    assert!(b.slot_unheard(5), "...and nothing known");
    until_heard(&b, &a, 3);
    assert!(b.slot_started(2), "before the first start heard");
    assert!(!b.slot_started(5), "nobody started slot 5 yet");
    assert!(!b.slot_unheard(5), "its start would be heard");
    assert!(!b.slot_unheard(2), "a later slot was heard started");
    until_heard(&b, &a, 5);
    assert!(
        b.slot_started(4),
        "a later slot started: so did the ones before"
    );
    assert!(!b.slot_started(6));
    assert!(
        a.slot_started(6),
        "a has heard no other process: it waits for none"
    );
    assert!(a.slot_unheard(6), "...and cannot know about slot 6");
    assert!(!a.slot_unheard(5), "its own start");
}

/// Redis lost the slot counter (a restart) and numbers from 1 again: the
/// new numbers are waited for, not taken as long since started.
#[test]
fn a_slot_counter_that_starts_again_is_followed() {
    let mut redis = Redis::start();
    let port = redis.port;
    let a = connect(&redis.url(), "key-r", 100.0).unwrap();
    let b = connect(&redis.url(), "key-r", 100.0).unwrap();
    // A start is told in Redis's time: a reservation maps its clock.
    b.reserve(Duration::from_millis(10), 1.0).unwrap();
    until_heard(&a, &b, 500);
    let _ = redis.child.kill();
    let _ = redis.child.wait();
    let _revived = Redis::start_with(Some(port), None);
    let deadline = Instant::now() + Duration::from_secs(10);
    let reserve = |limit: &SharedLimit| loop {
        if let Ok(grant) = limit.reserve(Duration::from_millis(10), 1.0) {
            break grant.seq;
        }
        assert!(Instant::now() < deadline, "never reconnected");
        std::thread::sleep(50 * MS);
    };
    assert_eq!((reserve(&a), reserve(&b)), (1, 2), "a fresh counter");
    // Heard as slot 2, not taken as started long ago (500 was).
    until_heard(&a, &b, 2);
    assert!(!a.slot_started(3));
}

/// Regression (a review's finding): the schedule's times are kept in
/// Redis as absolute times of its clock; a failover to a replica whose
/// clock is behind (or a step back of Redis's clock) held every start for
/// as long as the step. Here the times are left as a primary whose clock
/// read 5 s more would have left them: the next slot, after a pause of
/// 300 ms it set, comes after the pause's length, not 5 s later.
#[test]
fn a_redis_clock_that_went_back_holds_no_start_for_the_step() {
    let redis = Redis::start();
    let limit = connect(&redis.url(), "key-c", 10.0).unwrap();
    let interval = Duration::from_millis(100);
    limit.reserve(interval, 1.0).unwrap();
    let mut con = admin(&redis);
    let ahead = redis_time_and_set(&mut con, "key-c", &[]) + 5_000_000;
    redis_time_and_set(
        &mut con,
        "key-c",
        &[
            ("clock", ahead),
            ("tat", ahead + 100_000),
            ("pause", ahead + 300_000),
        ],
    );
    let asked = Instant::now();
    let grant = limit.reserve(interval, 1.0).unwrap();
    let wait = grant.start.saturating_duration_since(asked);
    assert!(
        (200 * MS..800 * MS).contains(&wait),
        "the slot came {wait:?} after it was asked for"
    );
    assert!(grant.paused_until.is_some(), "the pause still holds");
    // The times written back shifted: the next slot follows on.
    let next = limit.reserve(interval, 1.0).unwrap();
    assert!(
        next.start.saturating_duration_since(grant.start) < 200 * MS,
        "the next slot came {:?} after",
        next.start.saturating_duration_since(grant.start)
    );
    // A pause that ended before the step's time: gone, not outliving it.
    let now = redis_time_and_set(&mut con, "key-c", &[]);
    redis_time_and_set(
        &mut con,
        "key-c",
        &[("clock", now + 5_000_000), ("pause", now + 4_000_000)],
    );
    limit.reserve(interval, 1.0).unwrap();
    let asked = Instant::now();
    let after = limit.reserve(interval, 1.0).unwrap();
    let wait = after.start.saturating_duration_since(asked);
    assert!(wait < 800 * MS, "a slot {wait:?} after it was asked for");
}

/// A connection of the test's own to `redis`, to read and write the
/// schedule's keys as another process (or another host's clock) would.
fn admin(redis: &Redis) -> redis::Connection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap()
}

/// Redis's time now, in microseconds; and sets `parts` of the schedule of
/// `key` to the times given.
fn redis_time_and_set(con: &mut redis::Connection, key: &str, parts: &[(&str, i64)]) -> i64 {
    let (seconds, micros): (i64, i64) = redis::cmd("TIME").query(con).unwrap();
    for (part, at) in parts {
        redis::cmd("SET")
            .arg(format!("{}:{part}", schedule_key(key)))
            .arg(*at)
            .query::<()>(con)
            .unwrap();
    }
    seconds * 1_000_000 + micros
}

/// The review of the fix above: a step back first seen by a pause, or by
/// nothing at all for a while (a long pause, no reservation), left `tat`
/// on the old clock. Every script moves both times back, heartbeats too.
#[test]
fn a_step_back_seen_by_a_pause_or_a_heartbeat_moves_the_schedule_back_too() {
    let redis = Redis::start();
    let limit = connect(&redis.url(), "key-s", 10.0).unwrap();
    let interval = Duration::from_millis(100);
    limit.reserve(interval, 1.0).unwrap();
    let mut con = admin(&redis);
    let now = redis_time_and_set(&mut con, "key-s", &[]);
    redis_time_and_set(
        &mut con,
        "key-s",
        &[("clock", now + 5_000_000), ("tat", now + 5_100_000)],
    );
    limit.pause(Instant::now() + 200 * MS, "a 429").unwrap();
    let asked = Instant::now();
    let wait = limit
        .reserve(interval, 1.0)
        .unwrap()
        .start
        .saturating_duration_since(asked);
    assert!(wait < 800 * MS, "after a pause, a slot {wait:?} later");
    // Nothing but the heartbeat runs now.
    let now = redis_time_and_set(&mut con, "key-s", &[]);
    redis_time_and_set(
        &mut con,
        "key-s",
        &[("clock", now + 5_000_000), ("tat", now + 5_100_000)],
    );
    let tat_key = format!("{}:tat", schedule_key("key-s"));
    // A beat comes each second; time alone would take 4.6 s to pass the test.
    wait_until(
        Duration::from_millis(2_500),
        "a heartbeat moving tat back",
        || {
            let tat: Option<i64> = redis::cmd("GET").arg(&tat_key).query(&mut con).unwrap();
            let now = redis_time_and_set(&mut con, "key-s", &[]);
            tat.is_none_or(|tat| tat < now + 500_000)
        },
    );
}

/// A process gone whose last heartbeat was written before a step back of
/// Redis's clock stops counting as live a heartbeat's lifetime after it,
/// not that plus the step.
#[test]
fn a_process_gone_before_a_step_back_stops_counting_in_its_time() {
    let redis = Redis::start();
    let limit = connect(&redis.url(), "key-g", 10.0).unwrap();
    let mut con = admin(&redis);
    let now = redis_time_and_set(&mut con, "key-g", &[]);
    // Its heartbeat, as a clock 20 s ahead wrote it: live for 3 s more.
    redis_time_and_set(&mut con, "key-g", &[("clock", now + 20_000_000)]);
    redis::cmd("ZADD")
        .arg(format!("{}:procs", schedule_key("key-g")))
        .arg(now + 23_000_000)
        .arg("gone")
        .query::<()>(&mut con)
        .unwrap();
    wait_until(Duration::from_secs(3), "the other counted", || {
        limit.peers().live == 2
    });
    wait_until(
        Duration::from_secs(6),
        "the process gone no longer counted",
        || limit.peers().live == 1,
    );
}

/// Another process woke late for its slot and started just before ours
/// came; its start was not heard yet. Ours waits to hear it and then keeps
/// the whole gap after it: on a leaky bucket two requests that close are
/// one 429. A slot whose holder never starts holds the next one a gap at
/// most.
#[test]
fn a_start_waits_to_hear_that_the_slot_before_it_started() {
    let redis = Redis::start();
    let (schedule, limiter) = shared_limiter(&redis, "key-w", 10.0);
    let other = connect(&redis.url(), "key-w", 10.0).unwrap();
    let stop = Stop::new();
    assert_eq!(
        other.reserve(Duration::from_millis(100), 1.0).unwrap().seq,
        1
    );
    until_heard(schedule.limit(), &other, 1);
    // A reply without window headers: the gateway counts gaps.
    let first = limiter.acquire(&stop).unwrap();
    limiter.accepted(&first, None, Now::system());
    let gap = Duration::from_millis(100);
    std::thread::scope(|scope| {
        let held = other.reserve(gap, 1.0).unwrap();
        let ours = scope.spawn(|| {
            limiter.acquire(&stop).unwrap();
            Instant::now()
        });
        // Ours comes a gap after the held slot; the holder starts 30 ms
        // after that, late.
        std::thread::sleep((held.start + gap + 30 * MS).saturating_duration_since(Instant::now()));
        let told = Instant::now();
        other.started(told, Some(held.seq));
        let started = ours.join().unwrap();
        assert!(
            started >= told + gap - 5 * MS,
            "ours started {:?} after the late start",
            started.saturating_duration_since(told)
        );
        // The next slot's holder never starts.
        other.reserve(gap, 1.0).unwrap();
        let asked = Instant::now();
        limiter.acquire(&stop).unwrap();
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "{:?}",
            asked.elapsed()
        );
    });
}

/// A cut of the rate in force (429s that persist at the paced rate) holds
/// its own process's starts alone: a pause written to Redis would hold
/// every process on the key for one process's cut.
#[test]
fn a_cut_of_the_rate_pauses_no_other_process() {
    let redis = Redis::start();
    let (_schedule, limiter) = shared_limiter(&redis, "key-c", 20.0);
    let other = connect(&redis.url(), "key-c", 20.0).unwrap();
    let booked = limiter.reserve_at(Now::system());
    // Every other reply a 429: none in a row (those pause every process,
    // rightly), yet a fifth of the recent replies, which persists.
    let mut backoffs = Vec::new();
    let in_force = || limiter.rate_in_force().unwrap().per_second_f64();
    for _ in 0..100 {
        if in_force() < 20.0 {
            break;
        }
        let now = Now::system();
        limiter.accepted(&booked, None, now);
        backoffs.push(limiter.rejected(&booked, None, None, now));
    }
    assert!(in_force() < 20.0, "no cut");
    assert!(
        backoffs.iter().all(|b| matches!(b, Backoff::Job { .. })),
        "{backoffs:?}"
    );
    let grant = other.reserve(Duration::from_millis(50), 1.0).unwrap();
    assert_eq!(grant.paused_until, None, "the cut paused the key");
}

/// On a shared schedule the learned margin gives back half as much per
/// success as on a process's own: a 429 there costs every process on the
/// key.
#[test]
fn a_shared_schedule_narrows_its_margin_at_half_the_pace() {
    let redis = Redis::start();
    let (_schedule, shared) = shared_limiter(&redis, "key-m", 10.0);
    let own = Limiter::new(Rate::per_second(10.0));
    let margin = |limiter: &Limiter| match limiter.pacing_model() {
        PacingModel::Even { margin } => margin,
        other => panic!("{other:?}"),
    };
    for limiter in [&shared, &own] {
        let now = Now::system();
        let booked = limiter.reserve_at(now);
        limiter.rejected(&booked, None, None, now);
        for _ in 0..200 {
            limiter.accepted(&booked, None, now);
        }
    }
    // Both widened alike; then (1 - 1/800)^200 = 0.78 of it against
    // (1 - 1/400)^200 = 0.61.
    let (shared, own) = (margin(&shared), margin(&own));
    assert!(shared > own * 1.2, "shared {shared}, own {own}");
}

#[test]
fn processes_that_disagree_on_the_rate_share_the_smallest() {
    let redis = Redis::start();
    let fast = connect(&redis.url(), "key-r", 10.0).unwrap();
    let slow = connect(&redis.url(), "key-r", 4.0).unwrap();
    let own = Duration::from_millis(100);
    let sent = Instant::now();
    let grant = fast.reserve(own, 1.0).unwrap();
    let next = fast.reserve(own, 1.0).unwrap();
    let slack = sent.elapsed() + Duration::from_micros(100);
    assert_eq!(grant.interval, 250 * MS, "the slowest rate");
    let gap = next.start - grant.start;
    assert!(gap.abs_diff(250 * MS) <= slack, "{gap:?}");
    // The slow process leaves: within a heartbeat or two, ours again.
    drop(slow);
    let deadline = Instant::now() + Duration::from_secs(5);
    while fast.reserve(own, 1.0).unwrap().interval != own {
        assert!(
            Instant::now() < deadline,
            "the slowest rate outlived its process"
        );
        std::thread::sleep(50 * MS);
    }
    assert_eq!(fast.peers().live, 1);
}

#[test]
fn the_password_is_hidden_in_every_error() {
    let redis = Redis::start_with(None, Some("right-pw"));
    let wrong = format!("redis://:wr0ng-pw@127.0.0.1:{}", redis.port);
    let error = connect(&wrong, "key-x", 1.0).unwrap_err().to_string();
    assert!(error.contains("redis://:***@127.0.0.1"), "{error}");
    assert!(!error.contains("wr0ng-pw"), "{error}");
    let right = format!("redis://:right-pw@127.0.0.1:{}/2", redis.port);
    let limit = connect(&right, "key-x", 1.0).unwrap();
    assert_eq!(
        limit.url().to_string(),
        format!("redis://:***@127.0.0.1:{}/2", redis.port)
    );
    assert!(!format!("{limit:?}").contains("right-pw"));
    // Review: without its `:` the password was taken for a user name by
    // the redis crate, and no AUTH went.
    let bare = format!("redis://right-pw@127.0.0.1:{}", redis.port);
    let limit = connect(&bare, "key-x", 1.0).expect("the bare password authenticates");
    assert_eq!(
        limit.url().to_string(),
        format!("redis://***@127.0.0.1:{}", redis.port)
    );
    // Review: no password at all read "Protocol error: unauthenticated
    // multibulk length", which does not say that one is needed.
    let none = format!("redis://127.0.0.1:{}", redis.port);
    let error = connect(&none, "key-x", 1.0).unwrap_err().to_string();
    assert!(error.contains("Authentication required"), "{error}");
    let nobody = format!("redis://:s3cret@127.0.0.1:{}", free_port());
    let error = connect(&nobody, "key-x", 1.0).unwrap_err().to_string();
    assert!(
        error.contains("***") && !error.contains("s3cret"),
        "{error}"
    );
}

/// Waits (5 s at most) until the heartbeats of `schedule` count two
/// processes.
fn until_two_live(schedule: &SharedSchedule) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while schedule.limit().peers().live != 2 {
        assert!(Instant::now() < deadline, "the heartbeat never counted two");
        std::thread::sleep(50 * MS);
    }
}

#[test]
fn a_lost_redis_falls_back_to_a_local_share_and_comes_back() {
    let mut redis = Redis::start();
    let port = redis.port;
    let a = connect(&redis.url(), "key-f", 10.0).unwrap();
    let b = connect(&redis.url(), "key-f", 10.0).unwrap();
    let schedule = SharedSchedule::new(a);
    until_two_live(&schedule);
    let interval = Duration::from_millis(100);
    assert!(schedule.book(Instant::now(), interval).shared);
    let (first, second) = kill_and_book_twice(&mut redis, &schedule, interval);
    assert_eq!(second - first, 2 * interval, "half the rate: two live");
    let _revived = Redis::start_with(Some(port), None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !schedule.book(Instant::now(), interval).shared {
        assert!(Instant::now() < deadline, "never reconnected");
        std::thread::sleep(50 * MS);
    }
    drop(b);
}

/// Regression: back from a loss of Redis, the shared schedule of a
/// restarted Redis began at once, beside the local slots the processes had
/// handed out and not yet started: 429s on a fixed window. The first slot
/// after the return, and every other process's after it, come after them.
#[test]
fn the_shared_schedule_resumes_after_the_local_slots_handed_out() {
    let mut redis = Redis::start();
    let port = redis.port;
    let schedule = SharedSchedule::new(connect(&redis.url(), "key-r", 10.0).unwrap());
    let interval = Duration::from_millis(100);
    assert!(schedule.book(Instant::now(), interval).shared);
    let _ = redis.child.kill();
    let _ = redis.child.wait();
    let mut local_end = Instant::now();
    for _ in 0..20 {
        let booking = schedule.book(Instant::now(), interval);
        assert!(!booking.shared);
        local_end = local_end.max(booking.start);
    }
    let _revived = Redis::start_with(Some(port), None);
    let deadline = Instant::now() + Duration::from_secs(10);
    let back = loop {
        let booking = schedule.book(Instant::now(), interval);
        if booking.shared {
            break booking;
        }
        assert!(Instant::now() < deadline, "never reconnected");
        std::thread::sleep(50 * MS);
    };
    assert!(
        back.start > local_end,
        "{:?} before the local slots' end",
        local_end - back.start
    );
    let other = connect(&format!("redis://127.0.0.1:{port}"), "key-r", 10.0).unwrap();
    let theirs = other.reserve(interval, 1.0).unwrap();
    assert!(
        theirs.start + 5 * MS >= local_end,
        "another process's slot {:?} before the local slots' end",
        local_end - theirs.start
    );
}

/// Review: back from a loss of Redis, the first process to reconnect took
/// the whole rate on the shared schedule while the others still paced at
/// their local share, until their heartbeats reconnected too (up to a
/// period later): 14 starts in 500 ms where 10 were allotted. Its own
/// starts now keep the local share apart until every process can be back.
#[test]
fn back_from_a_loss_a_process_keeps_its_local_share_until_the_others_can_be_back() {
    let mut redis = Redis::start();
    let port = redis.port;
    let schedule = SharedSchedule::new(connect(&redis.url(), "key-back", 10.0).unwrap());
    let _other = connect(&redis.url(), "key-back", 10.0).unwrap();
    until_two_live(&schedule);
    let interval = Duration::from_millis(100);
    assert!(schedule.book(Instant::now(), interval).shared);
    let (first, second) = kill_and_book_twice(&mut redis, &schedule, interval);
    let share = second - first;
    assert_eq!(share, 2 * interval, "half the rate: two live");
    let _revived = Redis::start_with(Some(port), None);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut starts = Vec::new();
    while starts.len() < 4 {
        assert!(
            Instant::now() < deadline,
            "never reconnected, or turns for ever"
        );
        let booking = schedule.book(Instant::now(), interval);
        if !booking.shared {
            std::thread::sleep(50 * MS);
        } else if booking.turn {
            std::thread::sleep(booking.start.saturating_duration_since(Instant::now()));
        } else {
            starts.push(booking.start);
        }
    }
    // Redis's time mapped onto ours: off by half a round trip at most.
    let slack = 5 * MS;
    for pair in starts.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap + slack >= share, "{gap:?} apart back from the loss");
    }
    // Once every process can be back (a heartbeat, a connect timeout and
    // half a second: 2.5 s), the whole rate again.
    std::thread::sleep(Duration::from_millis(2600));
    let now = Instant::now();
    let (one, two) = (schedule.book(now, interval), schedule.book(now, interval));
    assert!(one.shared && two.shared && !one.turn && !two.turn);
    assert!(
        (two.start - one.start).abs_diff(interval) <= slack,
        "{:?} apart after the grace",
        two.start - one.start
    );
}

/// Stops `redis` for good and books two slots at once on `schedule`, which
/// must both be local now; their starts.
fn kill_and_book_twice(
    redis: &mut Redis,
    schedule: &SharedSchedule,
    interval: Duration,
) -> (Instant, Instant) {
    let _ = redis.child.kill();
    let _ = redis.child.wait();
    let first = local_slot(schedule, interval);
    let second = local_slot(schedule, interval);
    (first, second)
}

/// A slot of the local fallback, asked for again at each turn it gives
/// (as the limiter does); its start.
fn local_slot(schedule: &SharedSchedule, interval: Duration) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let booking = schedule.book(Instant::now(), interval);
        assert!(!booking.shared, "Redis is gone");
        if !booking.turn {
            return booking.start;
        }
        assert!(booking.start < deadline, "turns for ever");
        std::thread::sleep(booking.start.saturating_duration_since(Instant::now()));
    }
}

/// Regression (a review's finding): with a Redis that hangs, each booking
/// fails only at its timeout, and the threads that waited behind it asked
/// for slots long past: the fallback handed them out, at once, one after
/// the other, and the local share held nobody back. A local slot is never
/// in the past, and the next comes a share after it.
#[test]
fn the_fallback_hands_out_no_slot_in_the_past() {
    let mut redis = Redis::start();
    let interval = Duration::from_millis(100);
    let schedule = SharedSchedule::new(connect(&redis.url(), "key-p", 10.0).unwrap());
    assert!(schedule.book(Instant::now(), interval).shared);
    // The slot booked in Redis and the share after it are past too.
    std::thread::sleep(3 * interval);
    let _ = redis.child.kill();
    let _ = redis.child.wait();
    let asked = Instant::now();
    let long_ago = asked.checked_sub(Duration::from_secs(2)).unwrap();
    let first = schedule.book(long_ago, interval);
    let second = schedule.book(long_ago, interval);
    assert!(!first.shared && !first.turn);
    assert!(
        first.start >= asked,
        "{:?} before the call",
        asked - first.start
    );
    if !second.turn {
        assert!(second.start >= first.start + interval, "two at once");
    }
}

/// Regression: the fallback share used this process's own rate, so a
/// process told 10/s beside one told 4/s ran at 10/2 per second once Redis
/// was gone (the schedule had paced both at 4/s); and its first local slot
/// came at once, on top of the slots already booked in Redis.
#[test]
fn the_fallback_keeps_the_slowest_rate_and_starts_after_the_booked_slots() {
    let mut redis = Redis::start();
    let fast = connect(&redis.url(), "key-g", 10.0).unwrap();
    let _slow = connect(&redis.url(), "key-g", 4.0).unwrap();
    let schedule = SharedSchedule::new(fast);
    let deadline = Instant::now() + Duration::from_secs(5);
    while schedule.limit().peers().live != 2
        || schedule.limit().peers().slowest < Duration::from_millis(250)
    {
        assert!(Instant::now() < deadline, "the heartbeats never told both");
        std::thread::sleep(50 * MS);
    }
    let interval = Duration::from_millis(100);
    let booked = schedule.book(Instant::now(), interval);
    assert!(booked.shared);
    let last_shared = booked.start;
    let (first, second) = kill_and_book_twice(&mut redis, &schedule, interval);
    assert_eq!(
        second - first,
        Duration::from_millis(500),
        "two processes at the slowest rate, 4/s"
    );
    assert!(
        first >= last_shared + Duration::from_millis(500),
        "the first local slot {:?} after the last shared one",
        first - last_shared
    );
}

/// Regression: a pause while Redis was lost kept the local slots it voided,
/// so with a few threads waiting the first start after it came seconds
/// late (the restart run of scripts/shared_limit.sh: no request for 2 s
/// after a window spent at the loss). And a pause set right after a local
/// slot came moved the next one to the pause's end, less than a share
/// after it: onto another process's slots.
#[test]
fn a_pause_in_the_fallback_frees_the_local_slots_it_voids() {
    let mut redis = Redis::start();
    let schedule = SharedSchedule::new(connect(&redis.url(), "key-p", 10.0).unwrap());
    // Wide, so that the second slot is still to come on a busy machine.
    let interval = Duration::from_millis(300);
    let (first, second) = kill_and_book_twice(&mut redis, &schedule, interval);
    assert!(second > Instant::now(), "the second slot is still to come");
    schedule.pause(Instant::now() + 10 * MS, "a 429 in a row");
    let after = schedule.book(Instant::now(), interval);
    assert!(!after.turn, "the voided slot, not a turn for later");
    assert_eq!(after.start, second, "free again, a share after the first");
    assert_eq!(second - first, interval);
    // Its time comes: the request left. A pause now keeps the next slot a
    // share after it, not at the pause's end.
    std::thread::sleep(after.start.saturating_duration_since(Instant::now()));
    schedule.pause(after.start + 20 * MS, "a 429 in a row");
    let next = local_slot(&schedule, interval);
    assert_eq!(next, after.start + interval);
    // A pause longer than a share holds it to the pause's end.
    let until = next + 3 * interval;
    std::thread::sleep(next.saturating_duration_since(Instant::now()));
    schedule.pause(until, "window spent");
    assert_eq!(local_slot(&schedule, interval), until);
}

/// Regression: the fallback gave every waiting thread a local slot at once,
/// so they ran a thread's count of shares ahead (16 x 200 ms), and back on
/// Redis the shared schedule, held after them, stood still for seconds.
#[test]
fn the_fallback_books_no_further_ahead_than_the_shared_schedule() {
    let mut redis = Redis::start();
    let schedule = SharedSchedule::new(connect(&redis.url(), "key-t", 10.0).unwrap());
    let interval = Duration::from_millis(100);
    let _ = redis.child.kill();
    let _ = redis.child.wait();
    let now = Instant::now();
    let bookings: Vec<_> = (0..16).map(|_| schedule.book(now, interval)).collect();
    let slots = bookings.iter().filter(|b| !b.turn).count();
    assert_eq!(slots, 2, "a slot and the next, the rest turns");
    let horizon = Instant::now() + LOOKAHEAD + interval;
    assert!(bookings.iter().all(|b| b.start <= horizon && !b.shared));
}

/// A Redis that takes the connection and never answers (a host stopped,
/// a firewall) is named as such, not as the socket's "Resource temporarily
/// unavailable".
#[test]
fn a_redis_that_never_answers_is_said_to_be_silent() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let started = Instant::now();
    let error = match connect(&format!("redis://:pw@127.0.0.1:{port}"), "key-q", 10.0) {
        Ok(_) => panic!("a silent Redis was taken for a working one"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("no answer in time"), "{error}");
    assert!(!error.contains("pw@"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(listener);
}

/// Regression (a review's finding): Redis's `timeout` setting closes a
/// client idle for that long, and the reservation connection, idle through
/// a long pause or at a slow rate, was then taken for a loss of Redis (a
/// warning, local pacing). A connection Redis closed is opened again.
#[test]
fn a_connection_redis_closed_for_idling_is_opened_again() {
    let redis = Redis::start();
    redis::cmd("CONFIG")
        .arg(&["SET", "timeout", "1"][..])
        .query::<()>(&mut admin(&redis))
        .unwrap();
    let url = RedisUrl::parse(&redis.url()).unwrap();
    let rate = Rate::per_second(10.0).unwrap();
    let mut config = SharedLimitConfig::new(url, schedule_key("key-i"), rate);
    // The heartbeat's own connection is never idle that long.
    config.heartbeat = 200 * MS;
    let limit = SharedLimit::connect(config).unwrap();
    assert!(limit.reserve(100 * MS, 1.0).is_ok());
    // Redis closes a client idle for more than a second within about one.
    std::thread::sleep(Duration::from_millis(3500));
    let after_idling = limit.reserve(100 * MS, 1.0);
    assert!(after_idling.is_ok(), "{after_idling:?}");
    assert!(limit.is_connected());
    std::thread::sleep(Duration::from_millis(3500));
    let paused = limit.pause(Instant::now() + 100 * MS, "a test");
    assert!(paused.is_ok(), "{paused:?}");
}

/// Commands Redis has run so far.
fn commands_run(redis: &Redis) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query(&mut admin(redis))
        .unwrap();
    let line = info
        .lines()
        .find_map(|line| line.strip_prefix("total_commands_processed:"))
        .expect("INFO stats counts the commands");
    line.trim().parse().unwrap()
}

/// A review's finding: a heartbeat period of 0 was taken as given, and the
/// heartbeat ran without a pause (130,000 commands a second).
#[test]
fn a_heartbeat_period_of_zero_is_no_busy_loop() {
    let redis = Redis::start();
    let url = RedisUrl::parse(&redis.url()).unwrap();
    let rate = Rate::per_second(10.0).unwrap();
    let mut config = SharedLimitConfig::new(url, schedule_key("key-z"), rate);
    config.heartbeat = Duration::ZERO;
    let limit = SharedLimit::connect(config).unwrap();
    let before = commands_run(&redis);
    std::thread::sleep(Duration::from_secs(1));
    let run = commands_run(&redis) - before;
    drop(limit);
    // One beat each 10 ms, about ten commands each.
    assert!(run < 5_000, "{run} commands in a second");
}

/// Regression: dropping a shared limit while Redis hung (stopped, not gone)
/// waited out its threads' calls one after the other: the heartbeat's
/// removal of the process alone took the whole timeout, and a run's exit
/// came 1.4 s after its last outcome. The threads are told together and
/// waited for briefly; those still in a call end on their own.
#[test]
fn dropping_a_shared_limit_does_not_wait_out_a_hung_redis() {
    let redis = Redis::start();
    let url = RedisUrl::parse(&redis.url()).unwrap();
    let mut config =
        SharedLimitConfig::new(url, schedule_key("key-h"), Rate::per_second(10.0).unwrap());
    config.timeout = Duration::from_secs(3);
    let limit = SharedLimit::connect(config).unwrap();
    assert!(limit.reserve(100 * MS, 1.0).is_ok());
    signal(&redis.child, "STOP");
    let dropping = Instant::now();
    drop(limit);
    let took = dropping.elapsed();
    signal(&redis.child, "CONT");
    assert!(
        took < Duration::from_millis(2500),
        "the drop waited out Redis's timeout: {took:?}"
    );
}

/// A no-op job.
struct Nothing;

impl restb::pool::Work for Nothing {
    type Job = u32;
    type Output = ();

    fn attempt(&self, _job: &u32) -> restb::pool::Attempt<()> {
        restb::pool::Attempt::Success(())
    }

    fn panicked(&self, _job: &u32, _message: &str) {}
}

/// An embedder's review: a pool given a shared schedule but no rate of its
/// own paced nothing and never used the schedule (50 jobs in 3 ms). It
/// paces at the rate the schedule was joined at.
#[test]
fn a_pool_without_a_rate_paces_at_the_shared_schedules() {
    let redis = Redis::start();
    let (schedule, _) = shared_limiter(&redis, "key-n", 10.0);
    let mut config = restb::pool::PoolConfig::default();
    config.rate = None;
    config.shared = Some(SharedPacing::new(schedule.clone()));
    let started = Instant::now();
    let summary = restb::pool::Pool::new(config, Stop::new()).run(&Nothing, 0..6, |_| Ok(()));
    assert_eq!(summary.finished, 6);
    assert!(schedule.limit().round_trips().count >= 6, "booked in Redis");
    // Six starts at 10/s: five intervals at least.
    assert!(started.elapsed() >= 500 * MS, "{:?}", started.elapsed());
}

/// A process on the schedule of `key` with a monthly budget of `budget`.
fn with_budget(redis: &Redis, key: ScheduleKey, budget: u64) -> SharedLimit {
    let url = RedisUrl::parse(&redis.url()).unwrap();
    let mut config = SharedLimitConfig::new(url, key, Rate::per_second(10.0).unwrap());
    config.budget = Some(budget);
    config.heartbeat = 100 * MS;
    SharedLimit::connect(config).unwrap()
}

/// Regression (a review's finding): processes that disagreed on
/// `--shared-budget` each counted to their own, the largest winning. As for
/// the rate, the smallest budget of the live processes holds; once its
/// process has gone, the others' own.
#[test]
fn the_smallest_budget_of_the_live_processes_holds() {
    let redis = Redis::start();
    let small = with_budget(&redis, schedule_key("key-b"), 3);
    let large = Arc::new(with_budget(&redis, schedule_key("key-b"), 10));
    let url = RedisUrl::parse(&redis.url()).unwrap();
    let peers = Arc::clone(&large);
    let budget = RedisBudget::connect(url, schedule_key("key-b"), 10, Duration::from_secs(5))
        .unwrap()
        .held_to(move || peers.peers().smallest_budget);
    let deadline = Instant::now() + Duration::from_secs(5);
    while large.peers().smallest_budget != Some(3) {
        assert!(Instant::now() < deadline, "never heard the smaller budget");
        std::thread::sleep(20 * MS);
    }
    assert_eq!(budget.limit(), 3);
    let taken = (0..10).filter(|_| budget.take().unwrap()).count();
    assert_eq!(taken, 3, "the smaller budget, while its process is live");
    drop(small);
    while large.peers().smallest_budget != Some(10) {
        assert!(
            Instant::now() < deadline,
            "the gone process's budget still held"
        );
        std::thread::sleep(20 * MS);
    }
    let more = (0..10).filter(|_| budget.take().unwrap()).count();
    assert_eq!(more, 7, "ours once it has gone");
}

// ---- The `restb` binary with --shared-limit ----

const KEY: &str = "shared-test-key-5ecr3t";

fn restb() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_restb"));
    command
        .env_remove("RUST_LOG")
        .env_remove("RESTB_SHARED_LIMIT")
        .env("RESTB_CLIENT_KEY", KEY);
    command
}

fn url_list(dir: &std::path::Path, name: &str, count: usize) -> String {
    let path = dir.join(format!("{name}.txt"));
    let body: String = (1..=count)
        .map(|n| format!("https://example.com/{name}/{n}.jpg\n"))
        .collect();
    std::fs::write(&path, body).unwrap();
    path.to_string_lossy().into_owned()
}

/// Regression: a dry run skipped the shared limit's checks and said 0 to
/// flags a real run refuses with 2. It makes them now (without connecting:
/// a dry run needs no key, and so has no schedule to join).
#[test]
fn a_dry_run_refuses_what_a_real_run_refuses_of_the_shared_limit() {
    let dir = tempfile::tempdir().unwrap();
    let list = url_list(dir.path(), "dry", 2);
    for (flags, said) in [
        (&["--shared-limit", "http://h"][..], "--shared-limit"),
        (
            &["--shared-budget", "5"][..],
            "--shared-budget: needs --shared-limit",
        ),
        (
            &[
                "--mode",
                "concurrency",
                "--shared-limit",
                "redis://127.0.0.1:1",
            ][..],
            "needs --mode rate",
        ),
    ] {
        for dry in [true, false] {
            let mut command = restb();
            command.args(["run", &list, "--rps", "5"]).args(flags);
            if dry {
                command.arg("--dry-run");
            }
            let output = command.output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                output.status.code(),
                Some(2),
                "{flags:?} dry {dry}: {stderr}"
            );
            assert!(stderr.contains(said), "{flags:?}: {stderr}");
        }
    }
    let from_env = restb()
        .args(["run", &list, "--dry-run"])
        .env("RESTB_SHARED_LIMIT", "redis://:pw@")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&from_env.stderr);
    assert!(
        stderr.contains("RESTB_SHARED_LIMIT redis://:***@: no host"),
        "{stderr}"
    );
}

/// Regression: fewer requests than processes gave each process none, and
/// a table of zeros with exit status 0.
#[test]
fn a_shared_bench_needs_a_request_for_each_process() {
    let output = restb()
        .args(["bench", "--shared-limit", "redis://127.0.0.1:1"])
        .args(["--processes", "4", "--requests", "2"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--requests: 2 is fewer than the 4 processes"),
        "{stderr}"
    );
}

/// Every image of the list has exactly one outcome line, and it is `ok`.
fn assert_each_once(list: &str, outcomes: &std::path::Path) {
    let wanted: std::collections::BTreeSet<String> = std::fs::read_to_string(list)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let lines = std::fs::read_to_string(outcomes).unwrap();
    let mut seen = std::collections::BTreeMap::<String, u32>::new();
    for line in lines.lines() {
        let value: serde_json::Value = serde_json::from_str(line).expect("whole JSON lines");
        assert_eq!(value["status"], "ok", "{line}");
        *seen
            .entry(value["image"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert!(seen.values().all(|n| *n == 1), "duplicated outcomes");
    assert_eq!(
        seen.keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        wanted
    );
}

#[test]
fn an_unreachable_redis_at_start_exits_2_before_any_request() {
    let gateway = MockServer::start(MockConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let list = url_list(dir.path(), "a", 3);
    let port = free_port();
    let output = restb()
        .args([
            "run",
            &list,
            "--base-url",
            &gateway.base_url(),
            "--rps",
            "10",
        ])
        .args([
            "--shared-limit",
            &format!("redis://:pa55word@127.0.0.1:{port}/1"),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("redis://:***@127.0.0.1:{port}/1")),
        "{stderr}"
    );
    assert!(
        !stderr.contains("pa55word") && !stderr.contains(KEY),
        "{stderr}"
    );
    assert_eq!(gateway.counters().requests, 0);
    // The same through the environment variable, and a bad URL.
    let output = restb()
        .args(["run", &list, "--base-url", &gateway.base_url()])
        .env("RESTB_SHARED_LIMIT", "http://127.0.0.1:1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("RESTB_SHARED_LIMIT") && stderr.contains("redis://"),
        "the variable it came from is named: {stderr}"
    );
    assert_eq!(gateway.counters().requests, 0);
}

#[test]
fn redis_killed_mid_run_loses_and_duplicates_nothing() {
    let mut redis = Redis::start();
    let mut config = MockConfig::default();
    config.latency = Duration::from_millis(20);
    let gateway = MockServer::start(config).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lists = [url_list(dir.path(), "a", 40), url_list(dir.path(), "b", 40)];
    let children: Vec<(Child, std::path::PathBuf)> = lists
        .iter()
        .enumerate()
        .map(|(n, list)| {
            let out = dir.path().join(format!("out{n}.jsonl"));
            let child = restb()
                .args([
                    "run",
                    list,
                    "--base-url",
                    &gateway.base_url(),
                    "--rps",
                    "20",
                ])
                .args(["--shared-limit", &redis.url(), "-o"])
                .arg(&out)
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (child, out)
        })
        .collect();
    // Two processes share 20/s: 80 requests take about 4 s; Redis goes at 1 s.
    std::thread::sleep(Duration::from_secs(1));
    let _ = redis.child.kill();
    let _ = redis.child.wait();
    let mut warned = 0;
    for ((child, out), list) in children.into_iter().zip(&lists) {
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{stderr}");
        assert_each_once(list, &out);
        warned += usize::from(stderr.contains("pacing locally"));
        assert!(stderr.matches("pacing locally").count() <= 1, "{stderr}");
    }
    assert!(warned >= 1, "a process noticed the loss");
    assert_eq!(gateway.counters().ok, 80);
}

/// The binary tells its `--shared-budget` to the others and holds to a
/// smaller one of a live process on the key, and says so.
#[test]
fn a_run_holds_to_a_smaller_budget_of_another_process_and_says_so() {
    let redis = Redis::start();
    let gateway = MockServer::start(MockConfig::default()).unwrap();
    let key = ScheduleKey::new(&ClientKey::new(KEY).unwrap(), &gateway.base_url());
    let _other = with_budget(&redis, key, 3);
    let dir = tempfile::tempdir().unwrap();
    let list = url_list(dir.path(), "b", 8);
    let output = restb()
        .args([
            "run",
            &list,
            "--base-url",
            &gateway.base_url(),
            "--rps",
            "20",
        ])
        .args([
            "--shared-limit",
            &redis.url(),
            "--shared-budget",
            "10",
            "-o",
        ])
        .arg(dir.path().join("out.jsonl"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert_eq!(gateway.counters().requests, 3, "{stderr}");
    assert_eq!(
        stderr
            .matches("has a budget of 3 requests a month, below our 10")
            .count(),
        1,
        "{stderr}"
    );
}

#[test]
fn the_faster_process_says_once_that_the_slowest_rate_holds() {
    let redis = Redis::start();
    let gateway = MockServer::start(MockConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fast_list = url_list(dir.path(), "fast", 30);
    let slow_list = url_list(dir.path(), "slow", 10);
    let run = |list: &str, rps: &str| {
        restb()
            .args(["run", list, "--base-url", &gateway.base_url(), "--rps", rps])
            .args(["--shared-limit", &redis.url(), "-o"])
            .arg(dir.path().join(format!("{rps}.jsonl")))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let fast = run(&fast_list, "20");
    std::thread::sleep(Duration::from_millis(300));
    let slow = run(&slow_list, "10");
    let fast = fast.wait_with_output().unwrap();
    let slow = slow.wait_with_output().unwrap();
    let fast_err = String::from_utf8_lossy(&fast.stderr);
    assert_eq!(fast.status.code(), Some(0), "{fast_err}");
    assert_eq!(slow.status.code(), Some(0));
    assert_eq!(
        fast_err
            .matches("the shared schedule uses the smallest rate")
            .count(),
        1,
        "{fast_err}"
    );
    assert!(fast_err.contains("10.00/s"), "{fast_err}");
    assert!(!String::from_utf8_lossy(&slow.stderr).contains("smallest rate"));
    assert!(String::from_utf8_lossy(&fast.stderr).contains("Redis round trip p50"));
}

#[test]
fn the_client_key_never_reaches_redis() {
    let redis = Redis::start();
    // MONITOR streams every command Redis receives, arguments included.
    let mut monitor = TcpStream::connect(("127.0.0.1", redis.port)).unwrap();
    monitor.write_all(b"MONITOR\r\n").unwrap();
    monitor
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let secret = "s3cret-client-key";
    let url = RedisUrl::parse(&redis.url()).unwrap();
    let key = ScheduleKey::new(&ClientKey::new(secret).unwrap(), "http://127.0.0.1:1");
    let config = SharedLimitConfig::new(url, key.clone(), Rate::per_second(50.0).unwrap());
    let limit = SharedLimit::connect(config).unwrap();
    for _ in 0..3 {
        limit.reserve(Duration::from_millis(20), 1.0).unwrap();
    }
    limit.pause(Instant::now() + 50 * MS, "test").unwrap();
    drop(limit);
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        match monitor.read(&mut buffer) {
            Ok(n) if n > 0 => seen.extend_from_slice(&buffer[..n]),
            _ => break,
        }
    }
    let seen = String::from_utf8_lossy(&seen);
    assert!(seen.contains(&format!("{key}:tat")), "{seen}");
    assert!(!seen.contains(secret), "{seen}");
}

#[test]
fn stats_json_reports_the_redis_round_trip_only_with_a_shared_limit() {
    let redis = Redis::start();
    let gateway = MockServer::start(MockConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let list = url_list(dir.path(), "rtt", 12);
    let run = |shared: bool| {
        let stats = dir.path().join(format!("stats-{shared}.json"));
        let mut command = restb();
        command
            .args(["run", &list, "--base-url", &gateway.base_url()])
            .args(["--rps", "50", "-q", "-o"])
            .arg(dir.path().join(format!("out-{shared}.jsonl")))
            .arg("--stats-json")
            .arg(&stats);
        if shared {
            command.args(["--shared-limit", &redis.url()]);
        }
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(0), "{stderr}");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
        (json, stderr)
    };
    let (json, stderr) = run(true);
    let shared = &json["shared_limit"];
    let reservations = shared["reservations"].as_u64().expect("reservations");
    assert!(reservations >= 12, "one per start at least: {shared}");
    let p50 = shared["redis_round_trip_p50_us"].as_u64().expect("p50");
    let p99 = shared["redis_round_trip_p99_us"].as_u64().expect("p99");
    // Microseconds: above zero, and below the 1 s timeout of a Redis call.
    assert!(p50 > 0 && p99 >= p50 && p99 <= 1_100_000, "{shared}");
    let line = format!(
        "shared limit: [{reservations}] reservations, Redis round trip p50 [{p50}] us, p99 [{p99}] us"
    );
    assert!(stderr.contains(&line), "{stderr}");

    let (json, stderr) = run(false);
    assert!(json.get("shared_limit").is_none(), "{json}");
    assert!(json["succeeded"].as_u64() == Some(12), "{json}");
    assert!(!stderr.contains("shared limit"), "{stderr}");
}

#[test]
fn bench_measures_processes_sharing_one_key() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let output = restb()
        .args([
            "bench",
            "--shared-limit",
            &redis.url(),
            "--processes",
            "2,1",
        ])
        .args(["--rps", "20", "--latency", "0.02", "--requests", "30", "-q"])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("processes") && stdout.contains("% allot"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let points = report["points"].as_array().unwrap();
    let processes: Vec<u64> = points
        .iter()
        .map(|p| p["processes"].as_u64().unwrap())
        .collect();
    assert_eq!(processes, vec![1, 2], "sorted: {report}");
    for point in points {
        // Every request of every holder reached the gateway once, and the
        // gateway's own count of accepted ones is the figure reported.
        let accepted = point["accepted"].as_u64().unwrap();
        let limited = point["rate_limited"].as_u64().unwrap();
        assert_eq!(accepted, 30, "{point}");
        assert!(limited <= 3, "{point}");
        let shares = point["fair_share_percent"].as_array().unwrap();
        assert_eq!(shares.len() as u64, point["processes"].as_u64().unwrap());
        assert!(point["percent_of_allotment"].as_f64().unwrap() > 0.0);
        let p50 = point["redis_round_trip_p50_us"].as_u64().unwrap();
        let p99 = point["redis_round_trip_p99_us"].as_u64().unwrap();
        assert!(p50 > 0 && p99 >= p50, "{point}");
    }
    // A redis:// URL is required, and the flag is named.
    let output = restb()
        .args(["bench", "--shared-limit", "http://127.0.0.1:1", "-q"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--shared-limit"));
}

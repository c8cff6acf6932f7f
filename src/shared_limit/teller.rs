//! Our starts told to the other processes from a thread of their own, a
//! moment after they are made.
//!
//! Telling a start is a write to Redis, which hands the notice at once to
//! every process's subscriber. Made by the worker just before its request,
//! that write put a wake-up of Redis and of every subscriber on the machine
//! between the start and the request reaching the gateway: the request came
//! late to a busy nginx, the next holder's on-time one came less than an
//! interval after it and drew a 429, and a start held up while telling was
//! told again later (`limiter/wait.rs`), which put every later start back.
//! The worker now hands the start over (no write, no wait) and this thread
//! tells it [`TELL_AFTER`] later: the request reaches the gateway first, and
//! the notice still comes well before the next holder's start, an interval
//! on. Measured with `scripts/shared_limit.sh` (8 processes at 100/s on
//! nginx, alternating): 96.8-98.2 % of the allotment and 6-9 429s told on
//! the worker; 98.0-98.9 % and 2-6 429s told 0.3-3 ms later; 97.9-98.3 %
//! and 6 429s handed to the thread but told at once.

use crossbeam_channel::Sender;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long after a start it is told: long enough for the request to reach
/// the gateway on a busy machine (nginx took it within a few hundred
/// microseconds in the traces), short against an interval.
pub(super) const TELL_AFTER: Duration = Duration::from_micros(300);
/// At most this share of the interval, so the next holder (an interval
/// later) has heard the start before its own, however fast the rate.
const TELL_AFTER_SHARE: u32 = 4;
/// Starts waiting to be told; more are dropped (a notice is fire and
/// forget: the others keep their gap after the ones they hear, and wait
/// only a gap for one they do not).
const WAITING: usize = 1024;

/// A start of ours to tell: when, and in which slot of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Start {
    pub(super) at: Instant,
    pub(super) seq: Option<u64>,
}

/// How long after a start to tell it, for starts `interval` apart.
pub(super) fn delay_for(interval: Duration) -> Duration {
    TELL_AFTER.min(interval / TELL_AFTER_SHARE)
}

/// The thread that tells each start handed to it (`tell`) `delay` after it
/// was made; it ends when the sender is dropped.
pub(super) fn spawn(
    delay: Duration,
    mut tell: impl FnMut(Start) + Send + 'static,
) -> (Sender<Start>, JoinHandle<()>) {
    let (sender, starts) = crossbeam_channel::bounded::<Start>(WAITING);
    let thread = std::thread::Builder::new()
        .name("restb-shared-teller".into())
        .spawn(move || {
            for start in starts {
                let due = start.at + delay;
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                tell(start);
            }
        })
        .expect("spawning the shared-teller thread: the OS refused a thread");
    (sender, thread)
}

/// Hands `start` to the teller; never waits (a full queue drops it).
pub(super) fn hand_over(teller: &Sender<Start>, start: Start) {
    // Full (the thread held up by a stalled Redis) or gone (dropping): the
    // notice is lost, as on a lost connection.
    let _ = teller.try_send(start);
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;
    use std::sync::Arc;

    #[test]
    fn a_start_is_told_on_another_thread_no_sooner_than_the_delay_after_it() {
        let told = Arc::new(Mutex::new(Vec::new()));
        let into = Arc::clone(&told);
        let delay = Duration::from_millis(3);
        let (teller, thread) = spawn(delay, move |start| {
            into.lock()
                .push((start, Instant::now(), std::thread::current().id()));
        });
        let mut handed = Vec::new();
        for seq in 1..=5 {
            let start = Start {
                at: Instant::now(),
                seq: Some(seq),
            };
            hand_over(&teller, start);
            handed.push(start);
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(teller);
        thread.join().unwrap();
        let told = told.lock();
        assert_eq!(told.iter().map(|t| t.0).collect::<Vec<_>>(), handed);
        for (start, at, thread) in told.iter() {
            assert!(*at >= start.at + delay, "told {:?} after", *at - start.at);
            assert_ne!(*thread, std::thread::current().id());
        }
    }

    #[test]
    fn the_delay_is_a_quarter_of_a_short_interval_at_most() {
        assert_eq!(delay_for(Duration::from_millis(10)), TELL_AFTER);
        assert_eq!(
            delay_for(Duration::from_micros(400)),
            Duration::from_micros(100)
        );
    }
}

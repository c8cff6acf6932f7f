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

use super::starts::RESTARTED;
use crossbeam_channel::{Sender, TrySendError};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

/// A start of ours to tell: when, in which slot of the schedule, and when
/// to tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Start {
    pub(super) at: Instant,
    pub(super) seq: Option<u64>,
    due: Instant,
}

/// How long after a start to tell it, for starts `interval` apart.
pub(super) fn delay_for(interval: Duration) -> Duration {
    TELL_AFTER.min(interval / TELL_AFTER_SHARE)
}

/// The thread that tells the starts handed to it, and what it was handed.
#[derive(Debug)]
pub(super) struct Teller {
    sender: Option<Sender<Start>>,
    thread: Option<JoinHandle<()>>,
    delay: Duration,
    /// The highest slot number handed over so far (0: none).
    handed_through: AtomicU64,
    /// Whether the loss of the thread was warned of.
    warned: AtomicBool,
}

impl Teller {
    /// Starts the thread, which tells each start handed over (`tell`)
    /// `delay` after it was made.
    pub(super) fn spawn(delay: Duration, mut tell: impl FnMut(Start) + Send + 'static) -> Teller {
        let (sender, starts) = crossbeam_channel::bounded::<Start>(WAITING);
        let thread = std::thread::Builder::new()
            .name("restb-shared-teller".into())
            .spawn(move || {
                for start in starts {
                    let now = Instant::now();
                    if start.due > now {
                        std::thread::sleep(start.due - now);
                    }
                    tell(start);
                }
            })
            .expect("spawning the shared-teller thread: the OS refused a thread");
        Teller {
            sender: Some(sender),
            thread: Some(thread),
            delay,
            handed_through: AtomicU64::new(0),
            warned: AtomicBool::new(false),
        }
    }

    /// Hands over a start made at `at`, in slot `seq`; never waits (a full
    /// queue drops it, as a lost connection would). A slot's first start is
    /// told the delay after it (no later than the delay from now: a start
    /// said to come later must not hold the ones behind it); a slot told of
    /// before (a request that left later than its start, told again by the
    /// limiter once it is on its way) at once: that request has gone.
    pub(super) fn hand_over(&self, at: Instant, seq: Option<u64>) {
        let now = Instant::now();
        let told_before = seq.is_some_and(|seq| self.told_before(seq));
        let due = if told_before {
            now
        } else {
            at.min(now) + self.delay
        };
        let Some(sender) = &self.sender else {
            return;
        };
        if let Err(TrySendError::Disconnected(_)) = sender.try_send(Start { at, seq, due }) {
            if !self.warned.swap(true, Ordering::AcqRel) {
                log::warn!(
                    "shared limit: the thread that tells our starts to the other processes \
                     is gone; they no longer keep their gap after ours"
                );
            }
        }
    }

    /// Whether slot `seq` was handed over before. Numbers only grow, unless
    /// Redis lost its counter (see `Starts::booked`): then this counts
    /// again from `seq`, or every start would go at once for the rest of
    /// the run.
    fn told_before(&self, seq: u64) -> bool {
        let through = self.handed_through.fetch_max(seq, Ordering::AcqRel);
        if through >= seq.saturating_add(RESTARTED) {
            self.handed_through.store(seq, Ordering::Release);
            return false;
        }
        through >= seq
    }
}

impl Drop for Teller {
    fn drop(&mut self) {
        // The thread ends when the channel closes, once it has told what
        // it holds.
        self.sender.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;
    use std::sync::Arc;
    use std::thread::ThreadId;

    type Told = Arc<Mutex<Vec<(Start, Instant, ThreadId)>>>;

    fn recording(delay: Duration) -> (Teller, Told) {
        let told: Told = Arc::default();
        let into = Arc::clone(&told);
        let teller = Teller::spawn(delay, move |start| {
            into.lock()
                .push((start, Instant::now(), std::thread::current().id()));
        });
        (teller, told)
    }

    #[test]
    fn a_start_is_told_on_another_thread_no_sooner_than_the_delay_after_it() {
        let delay = Duration::from_millis(3);
        let (teller, told) = recording(delay);
        let mut handed = Vec::new();
        for seq in 1..=5 {
            let at = Instant::now();
            teller.hand_over(at, Some(seq));
            handed.push((at, Some(seq)));
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(teller);
        let told = told.lock();
        let starts: Vec<_> = told.iter().map(|(s, _, _)| (s.at, s.seq)).collect();
        assert_eq!(starts, handed, "each, in order, once the teller is dropped");
        for (start, at, thread) in told.iter() {
            assert!(*at >= start.at + delay, "told {:?} after", *at - start.at);
            assert_ne!(*thread, std::thread::current().id());
        }
    }

    #[test]
    fn a_slot_told_again_goes_at_once_and_a_start_ahead_waits_no_longer_than_the_delay() {
        let delay = Duration::from_millis(300);
        let (teller, told) = recording(delay);
        teller.hand_over(Instant::now(), Some(7));
        std::thread::sleep(delay + Duration::from_millis(100));
        // Its request left late: told again once on its way, at once.
        let again = Instant::now();
        teller.hand_over(again - Duration::from_millis(1), Some(7));
        std::thread::sleep(Duration::from_millis(150));
        // A start said to come in 5 s holds nothing behind it for longer
        // than the delay.
        let ahead = Instant::now();
        teller.hand_over(ahead + Duration::from_secs(5), Some(8));
        drop(teller);
        let told = told.lock();
        assert_eq!(told.len(), 3);
        let (_, again_at, _) = told[1];
        assert!(
            again_at < again + Duration::from_millis(150),
            "told again {:?} after",
            again_at - again
        );
        let (_, ahead_at, _) = told[2];
        assert!(
            ahead_at < ahead + delay + Duration::from_secs(2),
            "told {:?} after",
            ahead_at - ahead
        );
    }

    /// Review: after Redis lost its counter (a restart), every new slot
    /// number was below the highest handed over, so every start went at
    /// once, as a slot told again does.
    #[test]
    fn a_counter_started_again_in_redis_gets_the_delay_again() {
        let delay = Duration::from_millis(200);
        let (teller, told) = recording(delay);
        teller.hand_over(Instant::now(), Some(RESTARTED + 500));
        std::thread::sleep(delay + Duration::from_millis(100));
        teller.hand_over(Instant::now(), Some(1));
        teller.hand_over(Instant::now(), Some(2));
        drop(teller);
        let told = told.lock();
        assert_eq!(told.len(), 3);
        for (start, at, _) in &told[1..] {
            assert!(*at >= start.at + delay, "told {:?} after", *at - start.at);
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

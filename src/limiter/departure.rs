//! When a paced request's bytes actually left. A start is recorded when its
//! slot comes, but the request may go out well after: after opening a
//! connection (the first requests of a run, each on a new one), or after
//! the thread was preempted on a busy machine. The next start, on time,
//! then reaches a leaky-bucket gateway less than an interval behind it and
//! draws a 429. So the transport tells when it has written a request; a
//! departure later than usual after its start moves the recorded start on
//! by the difference, and the next start keeps its gap from there.
//!
//! Over TLS the first write on a new connection is the handshake's, so
//! there the mark falls before the handshake's round trip: only later
//! delays (a preemption, a slow write) are seen.
//!
//! Only the part beyond the usual delay counts: every request spends some
//! microseconds between its start and its write, and counting those would
//! slow every gap by as much. A request that opened a connection counts
//! all of its delay (see [`DepartureMark::departed`]): in traces of every
//! request of 8 processes at 100/s on a leaky bucket, 13 of the 16 429s of
//! the runs' first seconds came right after one, told with the usual delay
//! taken off, from the next start, which left sooner after its own.
//!
//! On a schedule shared with other processes, a departure later than usual
//! is also told to them (with its slot's number), as the start itself was:
//! their next start keeps its gap from it too. However little later: the
//! next holder hears it well before its own slot, and a delay left untold
//! is a gap that much short at the gateway (measured, 4 processes at 100/s
//! on a leaky bucket: told from 100 us late on, 1.1-1.6 % of requests drew
//! a 429, each right after a request that left 100-200 us after its told
//! start; told from any delay, 0.3-0.4 %).
//!
//! The delay counts from the start the limiter recorded (and told), not
//! from when the worker got to its request: a preemption on the way (or
//! telling the others, where that wakes someone) delays the request as
//! much. Restb's Redis schedule tells such a correction at once, not after
//! the moment it waits before telling a start (`shared_limit/teller.rs`):
//! the request has gone.
//!
//! The pool's worker threads each know the limiter they start for
//! ([`SendingFor`]); the transport, deep inside ureq, tells through
//! [`request_sent`] without either knowing the other.

use super::reservation::Reservation;
use super::shared::SharedPacing;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The usual delay follows a new low at once and a higher delay by this
/// share per request: it tracks the fast path, not the stalls.
const USUAL_RISES_BY: f64 = 1.0 / 64.0;
/// The usual delay (nanoseconds) before any request was written.
pub(super) const NO_DELAY_YET: u64 = u64::MAX;

thread_local! {
    static SENDING_FOR: RefCell<Option<Sending>> = const { RefCell::new(None) };
}

/// What a worker thread is sending for.
#[derive(Debug)]
struct Sending {
    mark: DepartureMark,
    /// The start of the request this thread is about to send, and its
    /// slot's number on a shared schedule.
    started: Option<(Instant, Option<u64>)>,
    /// The moment the limiter recorded (and maybe told the others) as this
    /// thread's start, if it kept a gap for it.
    began: Option<Instant>,
}

/// Where a limiter keeps its latest start (nanoseconds since `epoch`, plus
/// one; 0: no start yet), and the usual delay from a start to its write
/// (nanoseconds; [`NO_DELAY_YET`] before the first).
#[derive(Debug, Clone)]
pub(crate) struct DepartureMark {
    pub(super) epoch: Instant,
    pub(super) last_start: Arc<AtomicU64>,
    pub(super) usual_delay: Arc<AtomicU64>,
    /// The schedule shared with other processes, if any.
    pub(super) others: Option<SharedPacing>,
}

impl DepartureMark {
    /// A request started at `started` (slot `seq` of a shared schedule) was
    /// written at `sent`, `on_new_connection` if it opened one.
    fn departed(
        &self,
        (started, seq): (Instant, Option<u64>),
        sent: Instant,
        on_new_connection: bool,
    ) {
        let delay = nanos(sent.saturating_duration_since(started));
        // A request that opened a connection is late by all its delay:
        // opening one is not usual, so it does not count toward the usual
        // delay; and the next start, on another connection, maybe another
        // process's, can leave sooner after its own start than our usual
        // (early in a run each process's usual is still falling toward its
        // fast path).
        let usual = Duration::from_nanos(if on_new_connection {
            0
        } else {
            self.usual_after(delay)
        });
        let late_start = sent.checked_sub(usual).unwrap_or(started).max(started);
        let since = nanos(late_start.saturating_duration_since(self.epoch));
        let one_up = since.min(u64::MAX - 1) + 1;
        self.last_start.fetch_max(one_up, Ordering::AcqRel);
        if let Some(others) = &self.others {
            if late_start > started {
                others.slots().started(late_start, seq);
            }
        }
    }

    /// The usual delay, taking in one of `delay` (nanoseconds) on a
    /// connection already open.
    fn usual_after(&self, delay: u64) -> u64 {
        let rise = |before: u64| {
            if delay > before && before != NO_DELAY_YET {
                before + ((delay - before) as f64 * USUAL_RISES_BY) as u64
            } else {
                delay
            }
        };
        let before = self
            .usual_delay
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |before| {
                Some(rise(before))
            })
            .unwrap_or_else(|before| before);
        rise(before)
    }
}

/// The current thread sends for a limiter until this is dropped.
#[derive(Debug)]
pub(crate) struct SendingFor(());

impl SendingFor {
    pub(crate) fn new(mark: DepartureMark) -> SendingFor {
        SENDING_FOR.with(|current| {
            *current.borrow_mut() = Some(Sending {
                mark,
                started: None,
                began: None,
            });
        });
        SendingFor(())
    }

    /// The limiter just cleared `reservation` on this thread; the delay to
    /// the write counts from the start it recorded, if it did.
    pub(crate) fn started(&self, reservation: &Reservation) {
        SENDING_FOR.with(|current| {
            if let Some(sending) = current.borrow_mut().as_mut() {
                let at = sending.began.take().unwrap_or_else(Instant::now);
                sending.started = Some((at, reservation.seq));
            }
        });
    }
}

impl Drop for SendingFor {
    fn drop(&mut self) {
        SENDING_FOR.with(|current| current.borrow_mut().take());
    }
}

/// The limiter recorded a start at `at` on this thread (`None`: forget
/// any recorded before, whose slot was then voided).
pub(super) fn began(at: Option<Instant>) {
    SENDING_FOR.with(|current| {
        if let Some(sending) = current.borrow_mut().as_mut() {
            sending.began = at;
        }
    });
}

/// A request was just written on this thread, `on_new_connection` if
/// nothing was written on its connection before. The first write after a
/// start tells its limiter (if any) when the request left.
pub(crate) fn request_sent(on_new_connection: bool) {
    SENDING_FOR.with(|current| {
        if let Some(sending) = current.borrow_mut().as_mut() {
            if let Some(started) = sending.started.take() {
                sending
                    .mark
                    .departed(started, Instant::now(), on_new_connection);
            }
        }
    });
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A mark with `epoch`, the usual delay `usual` (nanoseconds) and no
    /// start yet.
    fn mark_at(epoch: Instant, usual: u64, others: Option<SharedPacing>) -> DepartureMark {
        DepartureMark {
            epoch,
            last_start: Arc::new(AtomicU64::new(0)),
            usual_delay: Arc::new(AtomicU64::new(usual)),
            others,
        }
    }

    fn recorded(mark: &DepartureMark) -> Duration {
        Duration::from_nanos(mark.last_start.load(Ordering::Acquire) - 1)
    }

    #[test]
    fn only_a_departure_later_than_usual_moves_the_recorded_start() {
        let epoch = Instant::now();
        let mark = mark_at(epoch, NO_DELAY_YET, None);
        // Usual: 1 ms from start to write.
        for n in 0..10 {
            mark.departed((epoch + ms(10 * n), None), epoch + ms(10 * n + 1), false);
        }
        assert_eq!(recorded(&mark), ms(90));
        // A preemption: written 4 ms after its start at 100 ms, 3 ms later
        // than usual.
        mark.departed((epoch + ms(100), None), epoch + ms(104), false);
        let moved = recorded(&mark);
        assert!(moved > ms(102) && moved <= ms(103), "{moved:?}");
        // A start recorded later is not moved back.
        mark.last_start
            .store(ms(200).as_nanos() as u64 + 1, Ordering::Release);
        mark.departed((epoch + ms(110), None), epoch + ms(111), false);
        assert_eq!(recorded(&mark), ms(200));
    }

    /// The first requests of a run each open a connection: the whole of
    /// their delay counts, and none becomes the usual one; nor does a
    /// usual delay known by then shorten one: the next start may leave
    /// sooner after its own start than that (another process's, whose
    /// usual is its own).
    #[test]
    fn a_request_that_opened_a_connection_is_late_by_all_its_delay() {
        let epoch = Instant::now();
        let told = Arc::new(Told::default());
        let mark = mark_at(epoch, NO_DELAY_YET, Some(SharedPacing::new(told.clone())));
        mark.departed((epoch + ms(10), Some(1)), epoch + ms(13), true);
        assert_eq!(recorded(&mark), ms(13));
        assert_eq!(mark.usual_delay.load(Ordering::Acquire), NO_DELAY_YET);
        mark.departed((epoch + ms(20), Some(2)), epoch + ms(21), false);
        assert_eq!(mark.usual_delay.load(Ordering::Acquire), nanos(ms(1)));
        mark.departed((epoch + ms(30), Some(3)), epoch + ms(34), true);
        assert_eq!(recorded(&mark), ms(34));
        assert_eq!(mark.usual_delay.load(Ordering::Acquire), nanos(ms(1)));
        assert_eq!(
            *told.0.lock(),
            [(epoch + ms(13), Some(1)), (epoch + ms(34), Some(3))],
            "told as they left"
        );
    }

    /// A shared schedule that only records what it is told.
    #[derive(Debug, Default)]
    struct Told(Mutex<Vec<(Instant, Option<u64>)>>);

    impl crate::limiter::SharedSlots for Told {
        fn reserve(&self, earliest: Instant, _: Duration) -> crate::limiter::SharedSlot {
            crate::limiter::SharedSlot::new(earliest, None)
        }
        fn pause(&self, _: Instant, _: &str) {}
        fn started(&self, at: Instant, seq: Option<u64>) {
            self.0.lock().push((at, seq));
        }
    }

    #[test]
    fn a_departure_later_than_usual_is_told_to_the_other_processes() {
        let epoch = Instant::now();
        let told = Arc::new(Told::default());
        let mark = mark_at(epoch, NO_DELAY_YET, Some(SharedPacing::new(told.clone())));
        mark.departed((epoch + ms(10), Some(1)), epoch + ms(11), false);
        mark.departed((epoch + ms(20), Some(2)), epoch + ms(21), false);
        assert!(told.0.lock().is_empty(), "usual departures are not told");
        mark.departed((epoch + ms(30), Some(3)), epoch + ms(33), false);
        // Told as it stands: 33 ms less the usual delay, which rose by a
        // 64th of this one's excess.
        let usual = ms(1) + ms(2).mul_f64(USUAL_RISES_BY);
        assert_eq!(*told.0.lock(), [(epoch + ms(33) - usual, Some(3))]);
        // A few microseconds later than usual is told too.
        let sent = epoch + ms(41) + Duration::from_micros(60);
        mark.departed((epoch + ms(40), Some(4)), sent, false);
        let told = told.0.lock();
        assert_eq!(told.len(), 2, "{told:?}");
        assert_eq!(told[1].1, Some(4));
        assert!(told[1].0 > epoch + ms(40), "{:?}", told[1].0 - epoch);
    }

    /// The worker got to its request 5 ms after the limiter recorded its
    /// start (it told the others, then was preempted): that is 5 ms of
    /// delay, not none.
    #[test]
    fn the_delay_counts_from_the_start_the_limiter_recorded() {
        let now = Instant::now();
        let mark = mark_at(now - ms(1000), nanos(ms(1)), None);
        let sending = SendingFor::new(mark.clone());
        let recorded_at = now - ms(5);
        began(Some(recorded_at));
        sending.started(&Reservation::unpaced(recorded_at, 0));
        request_sent(false);
        // About 5 ms after its start, 4 ms later than the usual 1 ms: the
        // recorded start moves on by about 4 ms.
        let moved = mark.epoch + recorded(&mark) - recorded_at;
        assert!(moved > ms(3) && moved < ms(4) + ms(1) / 2, "{moved:?}");
        drop(sending);
    }

    #[test]
    fn the_thread_that_started_tells_once_per_start() {
        let epoch = Instant::now() - ms(1000);
        let mark = mark_at(epoch, NO_DELAY_YET, None);
        let sending = SendingFor::new(mark.clone());
        request_sent(false);
        assert_eq!(
            mark.last_start.load(Ordering::Acquire),
            0,
            "nothing started"
        );
        sending.started(&Reservation::unpaced(Instant::now(), 0));
        std::thread::spawn(|| request_sent(false)).join().unwrap();
        assert_eq!(mark.last_start.load(Ordering::Acquire), 0, "another thread");
        request_sent(false);
        let told = mark.last_start.load(Ordering::Acquire);
        assert!(told > 0);
        request_sent(false);
        assert_eq!(
            mark.last_start.load(Ordering::Acquire),
            told,
            "the body's write"
        );
        drop(sending);
    }
}

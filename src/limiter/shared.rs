//! The seam between the limiter and a schedule of starts held outside this
//! process: GCRA's one arrival time kept where every process on a client
//! key sees it (Redis, in `restb::shared_limit`), instead of in this
//! limiter. The limiter still decides *how* it paces (its learned margin,
//! its local pauses, the gap between its own starts); the shared schedule
//! decides *when* the next start of anyone on the key may be.

use super::Rate;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A start booked on a shared schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SharedSlot {
    /// When the request may start, on this process's clock.
    pub start: Instant,
    /// The end of a pause that some holder of the schedule set, if one
    /// holds: the limiter voids its own slots booked before it.
    pub paused_until: Option<Instant>,
    /// Not a slot: this process holds enough slots ahead already; ask
    /// again at `start`.
    pub turn: bool,
    /// The slot's number on the schedule, if the schedule numbers its
    /// slots in the order of their starts: the limiter then waits to hear
    /// that the slot before it started (see [`SharedSlots::slot_started`]).
    pub seq: Option<u64>,
}

impl SharedSlot {
    /// A slot at `start`, with the end of a pause in force if any.
    pub fn new(start: Instant, paused_until: Option<Instant>) -> SharedSlot {
        SharedSlot {
            start,
            paused_until,
            turn: false,
            seq: None,
        }
    }

    /// This slot, numbered `seq` on the schedule.
    pub fn numbered(self, seq: u64) -> SharedSlot {
        SharedSlot {
            seq: Some(seq),
            ..self
        }
    }

    /// A turn: no slot was booked; ask again at `at`.
    pub fn turn(at: Instant) -> SharedSlot {
        SharedSlot {
            start: at,
            paused_until: None,
            turn: true,
            seq: None,
        }
    }
}

/// A schedule of starts shared with other processes. Implementations must
/// not fail: when the shared store is out of reach they pace locally at a
/// safe share of the rate (see `restb::shared_limit::SharedSchedule`).
pub trait SharedSlots: Send + Sync + fmt::Debug {
    /// Books the first start at or after `earliest`, at least `increment`
    /// after the previous start booked by anyone on the schedule.
    fn reserve(&self, earliest: Instant, increment: Duration) -> SharedSlot;

    /// Holds every holder's starts until `until`; `reason` is for logs.
    fn pause(&self, until: Instant, reason: &str);

    /// This holder started a request at `at`, in slot `seq` of the
    /// schedule if the schedule numbers its slots (after keeping its own
    /// gap): tell the other holders. Must not block on the shared store.
    /// Defaults to nothing.
    fn started(&self, _at: Instant, _seq: Option<u64>) {}

    /// Whether slot `seq` (or a later one) is known to have started, here
    /// or by another holder. The holder of slot `seq + 1` waits for it,
    /// briefly: a holder that woke late for its slot and started just
    /// before the next one's on-time start was not heard in time, and a
    /// leaky bucket refused one of the two. Defaults to `true` (no wait).
    fn slot_started(&self, _seq: u64) -> bool {
        true
    }

    /// Whether slot `seq` is not known to have started and its start could
    /// not have been heard (this holder has heard none of the others' yet,
    /// as when it has just joined): its holder may have started late
    /// without our knowing. The holder of slot `seq + 1` then keeps a
    /// start-up allowance after its own slot. Defaults to `false`.
    fn slot_unheard(&self, _seq: u64) -> bool {
        false
    }

    /// The latest start another holder told of, on this process's clock:
    /// the limiter keeps its gap after it too, so a holder that woke late
    /// for its slot does not put the next holder's on-time start less
    /// than an interval behind its own. Defaults to `None`.
    fn started_elsewhere(&self) -> Option<Instant> {
        None
    }

    /// This holder's pacing margin widened for a round of rejections, the
    /// first of which started at `started`: tell the other holders, whose
    /// starts the same jitter spaces (see [`SharedSlots::rounds_heard`]).
    /// Must not block on the shared store. Defaults to nothing.
    fn widened(&self, _started: Instant) {}

    /// How many rounds of rejections other holders told of so far (one per
    /// round, however many of them saw it): the limiter widens its margin
    /// for each new one, so that a schedule of P holders learns the jitter
    /// once, not P times, and gives back for all their acceptances. `None`
    /// while the others' rounds cannot be heard (the shared store lost):
    /// each holder then learns alone. Defaults to `None`.
    fn rounds_heard(&self) -> Option<u64> {
        None
    }

    /// This holder paces with `margin` now (0.01: 1 % slower than the
    /// rate); called at each booking, so it must be cheap. Defaults to
    /// nothing.
    fn margin_in_use(&self, _margin: f64) {}

    /// The widest margin the other holders pace with: one that joins the
    /// schedule starts from it, not from the floor, as the rounds that
    /// widened it were told before it listened. Defaults to `None`.
    fn widest_margin(&self) -> Option<f64> {
        None
    }

    /// How many holders (processes) draw from the schedule now, this one
    /// included: this process gets about its share of the rate, and sizes
    /// its pool for that share, not for the whole rate. Defaults to 1.
    fn holders(&self) -> u32 {
        1
    }

    /// The rate this holder joined the schedule at, if the schedule knows
    /// it: a pool given the schedule but no rate of its own paces at it.
    /// Defaults to `None`.
    fn rate(&self) -> Option<Rate> {
        None
    }
}

/// A cheap handle on a [`SharedSlots`], for [`Limiter::shared`] and
/// `PoolConfig::shared`. Two handles are equal when they are the same
/// schedule.
///
/// [`Limiter::shared`]: super::Limiter::shared
#[derive(Clone)]
pub struct SharedPacing(Arc<dyn SharedSlots>);

impl SharedPacing {
    /// Wraps a shared schedule.
    pub fn new(slots: Arc<dyn SharedSlots>) -> SharedPacing {
        SharedPacing(slots)
    }

    pub(super) fn slots(&self) -> &dyn SharedSlots {
        self.0.as_ref()
    }

    /// Holders drawing from the schedule now, at least 1 (see
    /// [`SharedSlots::holders`]).
    pub fn holders(&self) -> u32 {
        self.0.holders().max(1)
    }

    /// The rate this holder joined the schedule at, if known (see
    /// [`SharedSlots::rate`]).
    pub fn rate(&self) -> Option<Rate> {
        self.0.rate()
    }
}

impl PartialEq for SharedPacing {
    fn eq(&self, other: &SharedPacing) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for SharedPacing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SharedPacing").field(&self.0).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limiter::{Clock, FakeClock, GatewayHint, Limiter, Now, Rate, WindowCount};
    use crate::stop::Stop;
    use parking_lot::Mutex;
    use std::time::SystemTime;

    /// A shared schedule in this process's memory: the seam's contract
    /// (the Redis one is tested against a real redis-server in
    /// tests/shared_limit.rs).
    #[derive(Debug, Default)]
    struct InMemory {
        next: Mutex<Option<Instant>>,
        pause: Mutex<Option<Instant>>,
        paused: Mutex<Vec<Instant>>,
        turns: Mutex<Vec<Instant>>,
        calls: Mutex<u32>,
        holders: Option<u32>,
        /// The latest start another holder told of.
        elsewhere: Mutex<Option<Instant>>,
        /// The starts this holder told of.
        told: Mutex<Vec<Instant>>,
        /// How long telling a start holds the teller up.
        telling_takes: Option<Duration>,
        /// The starts of the requests whose rounds of rejections this
        /// holder told of.
        widened: Mutex<Vec<Instant>>,
        /// Rounds the other holders told of (`None`: not heard).
        rounds: Mutex<Option<u64>>,
        /// The margins this holder told of, one per booking.
        margins: Mutex<Vec<f64>>,
        /// The widest margin of the other holders.
        widest: Option<f64>,
        /// The number of the next slot booked (`None`: slots unnumbered).
        next_seq: Mutex<Option<u64>>,
        /// The slots up to this number could not be heard (0: all heard).
        unheard_through: u64,
    }

    impl SharedSlots for InMemory {
        fn reserve(&self, earliest: Instant, increment: Duration) -> SharedSlot {
            *self.calls.lock() += 1;
            if let Some(at) = self.turns.lock().pop() {
                return SharedSlot::turn(at);
            }
            let mut next = self.next.lock();
            let pause = *self.pause.lock();
            let start = [Some(earliest), *next, pause].into_iter().flatten().max();
            let start = start.expect("earliest is always there");
            *next = Some(start + increment);
            let slot = SharedSlot::new(start, pause);
            match self.next_seq.lock().as_mut() {
                Some(seq) => {
                    *seq += 1;
                    slot.numbered(*seq - 1)
                }
                None => slot,
            }
        }

        fn slot_unheard(&self, seq: u64) -> bool {
            seq <= self.unheard_through
        }

        fn pause(&self, until: Instant, _reason: &str) {
            self.paused.lock().push(until);
        }

        fn holders(&self) -> u32 {
            self.holders.unwrap_or(1)
        }

        fn widened(&self, started: Instant) {
            self.widened.lock().push(started);
        }

        fn rounds_heard(&self) -> Option<u64> {
            *self.rounds.lock()
        }

        fn margin_in_use(&self, margin: f64) {
            self.margins.lock().push(margin);
        }

        fn widest_margin(&self) -> Option<f64> {
            self.widest
        }

        fn started(&self, at: Instant, _seq: Option<u64>) {
            self.told.lock().push(at);
            if let Some(takes) = self.telling_takes {
                std::thread::sleep(takes);
            }
        }

        fn started_elsewhere(&self) -> Option<Instant> {
            *self.elsewhere.lock()
        }
    }

    fn limiter(shared: &Arc<InMemory>) -> Limiter {
        let slots: Arc<dyn SharedSlots> = shared.clone();
        Limiter::new(Rate::per_second(10.0)).shared(SharedPacing::new(slots))
    }

    /// A limiter that had a reply without window headers (a leaky bucket
    /// such as nginx's): its starts keep their gap after others' too.
    fn counting_gaps(shared: &Arc<InMemory>) -> Limiter {
        let limiter = limiter(shared);
        let now = Now::system();
        let slot = limiter.reserve_at(now);
        limiter.accepted(&slot, None, now);
        limiter
    }

    /// A holder that has heard none of the others' starts yet (it just
    /// joined) cannot know whether the slot before its own started late:
    /// its start keeps a start-up allowance after its slot (a tenth of the
    /// gap it keeps, at most 5 ms), for its first few starts only (one that
    /// never hears the others must not pay it for ever). One that would
    /// have heard it does not.
    #[test]
    fn a_start_after_a_slot_it_could_not_hear_keeps_a_startup_allowance() {
        // The gap at 400/s: 2.5 ms and its margin.
        let us = Duration::from_micros;
        let paid_at_most = usize::try_from(super::super::wait::UNHEARD_ALLOWANCES).unwrap();
        let five_ms = Duration::from_millis(5);
        for (rate, unheard_through, allowance, paid) in [
            (20.0, u64::MAX, five_ms..=five_ms, paid_at_most),
            (400.0, u64::MAX, us(250)..=us(280), paid_at_most),
            (20.0, 0, Duration::ZERO..=Duration::ZERO, 0),
            // Slots 1-4 unheard: the starts of slots 2-5 keep it.
            (20.0, 4, five_ms..=five_ms, 4),
        ] {
            let shared = Arc::new(InMemory {
                next_seq: Mutex::new(Some(1)),
                unheard_through,
                ..InMemory::default()
            });
            let clock = FakeClock::starting_at(SystemTime::now());
            let slots: Arc<dyn SharedSlots> = shared.clone();
            let limiter = Limiter::with_clock(Rate::per_second(rate), clock.clone())
                .shared(SharedPacing::new(slots));
            // Slot 1 has no slot before it.
            let first = limiter.acquire(&Stop::new()).unwrap();
            assert_eq!(clock.now().instant, first.start);
            let mut after_slots = Vec::new();
            for seq in 2..14 {
                // Each slot far enough on that no gap of our own holds it.
                *shared.next.lock() = Some(clock.now().instant + Duration::from_secs(1));
                let slot = limiter.acquire(&Stop::new()).unwrap();
                assert_eq!(slot.seq, Some(seq));
                after_slots.push(clock.now().instant - slot.start);
            }
            let (first_few, later) = after_slots.split_at(paid);
            assert!(
                first_few.iter().all(|after| allowance.contains(after))
                    && later.iter().all(Duration::is_zero),
                "{rate}/s, unheard through {unheard_through}: {after_slots:?}"
            );
        }
    }

    /// Review: our own pause, read back from the shared store a few
    /// microseconds later than ours (its clock mapped onto ours), counted
    /// as a later pause heard: a new generation that voided the slots our
    /// other threads had booked after the pause (42 bookings for 40 starts
    /// after one 300 ms pause). A pause heard within the mapping's error of
    /// the one known is the same pause.
    #[test]
    fn our_own_pause_read_back_a_hair_later_voids_nothing() {
        let shared = Arc::new(InMemory::default());
        let limiter = limiter(&shared);
        let now = Now::system();
        let until = now.instant + Duration::from_millis(300);
        limiter.pause_until(until);
        let booked = limiter.reserve_at(now);
        assert!(booked.start >= until);
        *shared.pause.lock() = Some(until + Duration::from_micros(40));
        let next = limiter.reserve_at(now);
        assert!(
            !limiter.is_void(&booked),
            "the slot booked after our pause was voided"
        );
        assert!(!limiter.is_void(&next));
        // Another's pause a real stretch later is news, and voids it.
        *shared.pause.lock() = Some(until + Duration::from_millis(50));
        limiter.reserve_at(now);
        assert!(limiter.is_void(&booked));
    }

    #[test]
    fn starts_come_from_the_shared_schedule_and_pauses_go_to_it() {
        let shared = Arc::new(InMemory::default());
        let limiter = limiter(&shared);
        let now = Now::system();
        let first = limiter.reserve_at(now);
        let second = limiter.reserve_at(now);
        assert_eq!(first.start, now.instant);
        let gap = second.start - first.start;
        // One interval and the margin: no start-up allowance on a shared
        // schedule (each process paid it on everyone's schedule).
        assert!(gap >= Duration::from_millis(100) && gap < Duration::from_millis(101));
        assert_eq!(*shared.next.lock(), Some(second.start + gap));
        let until = now.instant + Duration::from_secs(2);
        limiter.pause_until(until);
        assert_eq!(
            *shared.paused.lock(),
            vec![until],
            "a local pause is everybody's"
        );
    }

    #[test]
    fn a_pause_set_elsewhere_voids_the_slots_booked_before_it() {
        let shared = Arc::new(InMemory::default());
        let limiter = limiter(&shared);
        let now = Now::system();
        let before = limiter.reserve_at(now);
        let until = now.instant + Duration::from_secs(1);
        *shared.pause.lock() = Some(until);
        let after = limiter.reserve_at(now);
        assert!(limiter.is_void(&before));
        assert!(!limiter.is_void(&after));
        assert!(after.start >= until);
    }

    #[test]
    fn window_headers_do_not_leave_even_pacing_on_a_shared_schedule() {
        let shared = Arc::new(InMemory::default());
        let limiter = limiter(&shared);
        let now = Now::system();
        let slot = limiter.reserve_at(now);
        let hint = GatewayHint {
            second: Some(WindowCount {
                limit: 10,
                remaining: 9,
            }),
            ..GatewayHint::default()
        };
        limiter.accepted(&slot, Some(&hint), now);
        assert!(matches!(
            limiter.pacing_model(),
            crate::limiter::PacingModel::Even { .. }
        ));
    }

    /// A review's finding: on a shared schedule, a Kong window allowing
    /// fewer a second than the rate drew a 429 and a pause in every
    /// window. The window's count sets the pace; one above the rate does
    /// not speed it up.
    #[test]
    fn a_window_below_the_rate_sets_the_shared_pace() {
        let shared = Arc::new(InMemory::default());
        let limiter = limiter(&shared);
        let now = Now::system();
        let window = |limit| GatewayHint {
            second: Some(WindowCount {
                limit,
                remaining: 1,
            }),
            ..GatewayHint::default()
        };
        let gap = || {
            let first = limiter.reserve_at(now);
            let second = limiter.reserve_at(now);
            second.start - first.start
        };
        let slot = limiter.reserve_at(now);
        limiter.accepted(&slot, Some(&window(20)), now);
        assert!(gap() < Duration::from_millis(105), "{:?}", gap());
        limiter.accepted(&slot, Some(&window(5)), now);
        let slower = gap();
        assert!(slower >= Duration::from_millis(200), "{slower:?}");
        assert!(slower < Duration::from_millis(205), "{slower:?}");
    }

    /// Each of 4 processes sharing 1000/s sized its pool for all 1000/s:
    /// 1200 threads each, the machine saturated, 42-65 % of the allotment.
    #[test]
    fn four_processes_sized_their_pools_for_the_whole_rate() {
        assert_eq!(Limiter::new(Rate::per_second(10.0)).share_of_rate(), 1.0);
        let four = Arc::new(InMemory {
            holders: Some(4),
            ..InMemory::default()
        });
        assert_eq!(limiter(&four).share_of_rate(), 0.25);
        let none = Arc::new(InMemory {
            holders: Some(0),
            ..InMemory::default()
        });
        assert_eq!(limiter(&none).share_of_rate(), 1.0, "never more than all");
    }

    /// A schedule whose answer takes as long as the test says (a Redis
    /// round trip on a loaded machine): to a reservation, and to a pause
    /// told if `pauses_held`.
    #[derive(Debug)]
    struct Held {
        asked: crossbeam_channel::Sender<()>,
        answer: crossbeam_channel::Receiver<()>,
        inner: InMemory,
        pauses_held: bool,
    }

    impl Held {
        /// A held schedule (pauses too if `pauses_held`), a limiter on it,
        /// the channel that says an answer is awaited, and the one that
        /// gives it.
        fn limiter(
            pauses_held: bool,
        ) -> (
            Arc<Held>,
            Limiter,
            crossbeam_channel::Receiver<()>,
            crossbeam_channel::Sender<()>,
        ) {
            let (asked_tx, asked) = crossbeam_channel::unbounded();
            let (answer, answer_rx) = crossbeam_channel::unbounded();
            let held = Arc::new(Held {
                asked: asked_tx,
                answer: answer_rx,
                inner: InMemory::default(),
                pauses_held,
            });
            let slots: Arc<dyn SharedSlots> = held.clone();
            let limiter = Limiter::new(Rate::per_second(10.0)).shared(SharedPacing::new(slots));
            (held, limiter, asked, answer)
        }

        fn hold(&self) {
            let _ = self.asked.send(());
            let _ = self.answer.recv_timeout(Duration::from_secs(10));
        }
    }

    impl SharedSlots for Held {
        fn reserve(&self, earliest: Instant, increment: Duration) -> SharedSlot {
            self.hold();
            self.inner.reserve(earliest, increment)
        }

        fn pause(&self, until: Instant, reason: &str) {
            if self.pauses_held {
                self.hold();
            }
            self.inner.pause(until, reason);
        }
    }

    /// Every thread of a process waited for the limiter's lock while one
    /// of them waited for Redis: starts bunched behind the round trip.
    #[test]
    fn a_slow_shared_answer_holds_no_other_thread_and_a_pause_meanwhile_voids_it() {
        let (held, limiter, asked, answer) = Held::limiter(false);
        let stop = Stop::new();
        std::thread::scope(|scope| {
            let booking = scope.spawn(|| limiter.acquire(&stop));
            asked.recv_timeout(Duration::from_secs(10)).unwrap();
            // The limiter's lock is free while the answer is awaited.
            let (done_tx, done) = crossbeam_channel::bounded(1);
            let limiter = &limiter;
            scope.spawn(move || done_tx.send(limiter.status()).unwrap());
            let status = done.recv_timeout(Duration::from_secs(5));
            let until = Instant::now() + Duration::from_millis(200);
            limiter.pause_until(until);
            answer.send(()).unwrap();
            answer.send(()).unwrap();
            assert!(status.is_ok(), "the lock was held during the round trip");
            let started = booking.join().unwrap().unwrap();
            assert!(
                started.start >= until,
                "the slot asked before the pause was void"
            );
        });
        assert_eq!(*held.inner.calls.lock(), 2, "booked again after the pause");
    }

    /// Telling the shared schedule of a pause takes a round trip too (up to
    /// the store's timeout if it went silent): the other threads go on
    /// meanwhile.
    #[test]
    fn a_pause_told_to_a_slow_shared_schedule_holds_no_other_thread() {
        let (held, limiter, asked, answer) = Held::limiter(true);
        let until = Instant::now() + Duration::from_secs(60);
        std::thread::scope(|scope| {
            let pausing = scope.spawn(|| limiter.pause_until(until));
            asked.recv_timeout(Duration::from_secs(10)).unwrap();
            let (done_tx, done) = crossbeam_channel::bounded(1);
            let limiter = &limiter;
            scope.spawn(move || done_tx.send(limiter.status()).unwrap());
            let status = done.recv_timeout(Duration::from_secs(5));
            answer.send(()).unwrap();
            assert!(status.is_ok(), "the lock was held while the pause was told");
            pausing.join().unwrap();
        });
        assert_eq!(*held.inner.paused.lock(), vec![until]);
    }

    /// Another process woke late for its slot and started just as ours
    /// came: a leaky bucket refuses whichever of two starts comes less
    /// than an interval after the other, whoever holds them. So too before
    /// any reply, while the gateway's kind is unknown (a joining process's
    /// first request, right after another's that left late, drew a 429).
    #[test]
    fn a_late_start_elsewhere_holds_ours_one_interval_and_ours_is_told() {
        for replied in [true, false] {
            let shared = Arc::new(InMemory::default());
            let limiter = if replied {
                counting_gaps(&shared)
            } else {
                limiter(&shared)
            };
            // Our next slot is one interval on: a start of another's now.
            *shared.next.lock() = Some(Instant::now());
            let other = Instant::now();
            *shared.elsewhere.lock() = Some(other);
            let started = limiter.acquire(&Stop::new()).unwrap();
            let at = Instant::now();
            assert!(
                started.start < other + Duration::from_millis(50),
                "our slot came sooner"
            );
            assert!(
                at >= other + Duration::from_millis(100),
                "replied: {replied}: started {:?} after the other",
                at.saturating_duration_since(other)
            );
            let told = shared.told.lock().clone();
            assert_eq!(told.len(), 1, "our start is told to the others");
            assert!(told[0] >= other + Duration::from_millis(100) && told[0] <= at);
        }
    }

    /// Ours was keeping its own gap (our previous start was late) when
    /// another's start was heard: ours keeps the whole gap after that one
    /// too. (It was capped at one gap from when ours began to wait, and
    /// went out 0.2-1 ms after the other's start: a 429 on a leaky bucket.)
    #[test]
    fn a_start_heard_while_ours_keeps_its_own_gap_holds_ours_a_full_gap() {
        let shared = Arc::new(InMemory::default());
        let limiter = counting_gaps(&shared);
        limiter.acquire(&Stop::new()).unwrap();
        // Our next slot is now: only our own gap holds it.
        *shared.next.lock() = Some(Instant::now());
        std::thread::scope(|scope| {
            let ours = scope.spawn(|| {
                limiter.acquire(&Stop::new()).unwrap();
                Instant::now()
            });
            std::thread::sleep(Duration::from_millis(40));
            let other = Instant::now();
            *shared.elsewhere.lock() = Some(other);
            let started = ours.join().unwrap();
            assert!(
                started >= other + Duration::from_millis(100),
                "started {:?} after the other",
                started.saturating_duration_since(other)
            );
        });
    }

    /// Our start ran far behind its slot (held a gap after another's):
    /// the slots we book next are spaced wider by a share of that, so the
    /// starts catch up with their slots; the gap kept after each start
    /// stays as it was.
    #[test]
    fn a_start_behind_its_slot_spaces_the_next_slots_wider_not_the_gap() {
        let shared = Arc::new(InMemory::default());
        let limiter = counting_gaps(&shared);
        let now = Instant::now();
        *shared.next.lock() = Some(now);
        *shared.elsewhere.lock() = Some(now);
        let behind = limiter.acquire(&Stop::new()).unwrap();
        let lateness = Instant::now() - behind.start;
        assert!(lateness >= Duration::from_millis(100), "{lateness:?}");
        let next = limiter.reserve_at(Now::system());
        let spacing = shared.next.lock().unwrap() - next.start;
        let gap = next.min_gap.expect("even pacing keeps a gap");
        let slack = spacing.saturating_sub(gap);
        // A 16th of the lateness (the start is recorded a moment before
        // we read the clock here).
        assert!(
            slack > lateness / 16 - Duration::from_millis(1) && slack <= lateness / 16,
            "slack {slack:?} for {lateness:?} behind"
        );
    }

    /// A gateway that reports one-second windows counts starts, not gaps:
    /// no start waits after another process's (it could crowd a window),
    /// and none is told.
    #[test]
    fn a_gateway_counting_windows_needs_no_gap_after_others() {
        let shared = Arc::new(InMemory::default());
        let limiter = limiter(&shared);
        let now = Now::system();
        let first = limiter.acquire(&Stop::new()).unwrap();
        let hint = GatewayHint {
            second: Some(WindowCount {
                limit: 10,
                remaining: 9,
            }),
            ..GatewayHint::default()
        };
        limiter.accepted(&first, Some(&hint), now);
        let told = shared.told.lock().len();
        // Another process started 60 ms after our first: without windows
        // our second slot would wait about that long for it.
        *shared.elsewhere.lock() = Some(Instant::now() + Duration::from_millis(60));
        let second = limiter.acquire(&Stop::new()).unwrap();
        assert!(
            Instant::now() < second.start + Duration::from_millis(50),
            "waited after another's start"
        );
        assert_eq!(shared.told.lock().len(), told, "told nobody");
    }

    /// Telling a start woke the store, which ran in our place: the request
    /// goes later than the start told, so it is told again as it stands
    /// (a bounded number of times).
    #[test]
    fn a_start_held_up_while_telling_is_told_again() {
        let shared = Arc::new(InMemory {
            telling_takes: Some(Duration::from_millis(2)),
            ..InMemory::default()
        });
        counting_gaps(&shared).acquire(&Stop::new()).unwrap();
        let told = shared.told.lock().clone();
        assert_eq!(told.len(), 3, "{told:?}");
        for pair in told.windows(2) {
            assert!(pair[1] >= pair[0] + Duration::from_millis(2));
        }
    }

    /// A start told of far ahead (a clock mapping gone wrong) holds ours
    /// one gap at most.
    #[test]
    fn a_start_told_of_far_ahead_holds_ours_one_gap_at_most() {
        let shared = Arc::new(InMemory::default());
        let limiter = counting_gaps(&shared);
        *shared.elsewhere.lock() = Some(Instant::now() + Duration::from_secs(30));
        let asked = Instant::now();
        limiter.acquire(&Stop::new()).unwrap();
        assert!(asked.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_turn_is_never_started_but_booked_again() {
        let shared = Arc::new(InMemory::default());
        let limiter = limiter(&shared);
        let turn_at = Instant::now() + Duration::from_millis(30);
        shared.turns.lock().push(turn_at);
        let turn = limiter.reserve_at(Now::system());
        assert!(turn.is_turn());
        shared.turns.lock().push(turn_at);
        let started = limiter.acquire(&Stop::new()).unwrap();
        assert!(!started.is_turn());
        assert!(Instant::now() >= turn_at, "waited for the turn");
        assert_eq!(*shared.calls.lock(), 3, "the turn, then a slot");
    }

    /// The moment a reply to `booked` came: 5 ms after it started.
    fn replied(booked: &crate::limiter::Reservation) -> Now {
        Now {
            instant: booked.start + Duration::from_millis(5),
            wall: std::time::SystemTime::now(),
        }
    }

    fn margin(limiter: &Limiter) -> f64 {
        match limiter.pacing_model() {
            crate::limiter::PacingModel::Even { margin } => margin,
            other => panic!("{other:?}"),
        }
    }

    /// What one holder learns of the jitter, all learn: each of 8
    /// processes used to draw its own 429s at the start of a run before its
    /// margin was wide enough.
    #[test]
    fn a_round_of_rejections_is_told_and_one_heard_widens_the_margin() {
        let shared = Arc::new(InMemory::default());
        let limiter = counting_gaps(&shared);
        let floor = margin(&limiter);
        let rejected = limiter.reserve_at(Now::system());
        let now = replied(&rejected);
        limiter.rejected(&rejected, None, None, now);
        assert_eq!(*shared.widened.lock(), vec![rejected.start], "told");
        let own = margin(&limiter);
        assert!(own > floor);
        limiter.rejected(&rejected, None, None, now);
        assert_eq!(shared.widened.lock().len(), 1, "the same round: told once");

        let other = Arc::new(InMemory::default());
        // At 100/s, where the margin's ceiling (1 ms) is far away.
        let slots: Arc<dyn SharedSlots> = other.clone();
        let hearing = Limiter::new(Rate::per_second(100.0)).shared(SharedPacing::new(slots));
        hearing.reserve_at(Now::system());
        assert_eq!(margin(&hearing), floor, "nothing heard yet");
        *other.rounds.lock() = Some(1);
        hearing.reserve_at(Now::system());
        assert!(
            (margin(&hearing) - own).abs() < 1e-12,
            "widened as for its own"
        );
        hearing.reserve_at(Now::system());
        assert!((margin(&hearing) - own).abs() < 1e-12, "once per round");
        *other.rounds.lock() = Some(10);
        hearing.reserve_at(Now::system());
        let after_burst = margin(&hearing);
        hearing.reserve_at(Now::system());
        let twice = (own * 1.5 + 0.001) * 1.5 + 0.001;
        assert!(
            (after_burst - twice).abs() < 1e-12,
            "nine at once widen twice"
        );
        assert_eq!(after_burst, margin(&hearing));
    }

    /// Every holder widens for every round on the schedule, so each gives
    /// back in proportion to all the acceptances, not only its own; only
    /// while it hears their rounds (otherwise its margin would settle at
    /// as many times the rejections as there are holders).
    #[test]
    fn each_acceptance_gives_back_as_much_as_the_holders_together() {
        let narrowed = |holders: u32, rounds: Option<u64>| {
            let shared = Arc::new(InMemory {
                holders: Some(holders),
                rounds: Mutex::new(rounds),
                ..InMemory::default()
            });
            let limiter = counting_gaps(&shared);
            let now = Now::system();
            let booked = limiter.reserve_at(now);
            limiter.rejected(&booked, None, None, now);
            let widened = margin(&limiter);
            for _ in 0..50 {
                limiter.accepted(&booked, None, now);
            }
            widened - margin(&limiter)
        };
        let (one, four) = (narrowed(1, Some(0)), narrowed(4, Some(0)));
        assert!(four > one * 3.0, "one holder gave back {one}, four {four}");
        let deaf = narrowed(4, None);
        assert!((deaf - one).abs() < 1e-15, "four unheard gave back {deaf}");
    }

    /// Another holder told of a round, and our own 429 of that round came
    /// back before our next booking: one round, widened once (the shared
    /// store does not tell ours again, and the margin must not count it
    /// twice either).
    #[test]
    fn a_round_heard_and_our_own_429_of_it_widen_once() {
        let shared = Arc::new(InMemory::default());
        let limiter = counting_gaps(&shared);
        let floor = margin(&limiter);
        let rejected = limiter.reserve_at(Now::system());
        *shared.rounds.lock() = Some(1);
        let now = replied(&rejected);
        limiter.rejected(&rejected, None, None, now);
        limiter.reserve_at(Now::system());
        assert!((margin(&limiter) - (floor * 1.5 + 0.001)).abs() < 1e-12);
        assert!(shared.widened.lock().is_empty(), "not told again");
    }

    /// A holder that joins a schedule starts from the widest margin the
    /// others pace with (the rounds that widened theirs were told before it
    /// listened), not from the floor; a narrower one leaves its own.
    #[test]
    fn a_holder_joining_starts_from_the_widest_margin_and_tells_its_own() {
        let joining = |widest: Option<f64>| {
            let shared = Arc::new(InMemory {
                widest,
                ..InMemory::default()
            });
            let slots: Arc<dyn SharedSlots> = shared.clone();
            let limiter = Limiter::new(Rate::per_second(100.0)).shared(SharedPacing::new(slots));
            (shared, limiter)
        };
        let (_, alone) = joining(None);
        let floor = margin(&alone);
        let (told, late) = joining(Some(0.012));
        assert!((margin(&late) - 0.012).abs() < 1e-12, "{}", margin(&late));
        late.reserve_at(Now::system());
        late.reserve_at(Now::system());
        assert_eq!(
            *told.margins.lock(),
            vec![0.012, 0.012],
            "told at each booking"
        );
        let (_, narrower) = joining(Some(floor / 2.0));
        assert_eq!(margin(&narrower), floor);
        let (_, wild) = joining(Some(5.0));
        assert!(
            margin(&wild) <= 0.1,
            "within the ceiling: {}",
            margin(&wild)
        );
    }
}

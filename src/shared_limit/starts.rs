//! Actual starts, told to every process on the schedule (Redis pub/sub).
//!
//! The shared schedule spaces the *booked* starts; a process that wakes late
//! for its slot (a busy machine: milliseconds) still starts, and the next
//! holder, another process, starts on time, less than one interval after
//! it: a leaky-bucket gateway refuses that request (measured: every 429 of
//! 2-8 processes on nginx `limit_req` came right after another process's
//! request). Inside one process the limiter keeps the gap after its own
//! previous actual start; this module lets it keep the gap after anyone's.
//! Each start is published (fire and forget: the publishing connection has
//! `CLIENT REPLY OFF`, so a start costs one small write, no round trip) in
//! Redis's time, by a thread of ours a moment after the start (`teller.rs`:
//! the request reaches the gateway first); a subscriber thread maps the
//! others' starts onto our clock and keeps the latest. A notice takes a
//! fraction of a millisecond; the next slot is a whole interval away.
//!
//! A start is told with its slot's number on the schedule, and each process
//! keeps the highest number known started: the holder of the next slot
//! waits (briefly) until it has heard that the slot before its own started.
//! Without that, a holder that woke late for its slot and started a moment
//! before the next on-time holder was not heard in time, and the two
//! requests reached the gateway together (measured with 2-4 processes at
//! 100/s: 28-42 % of the 429s left, after the full gap kept after every
//! start heard).

use super::background::{self, Background};
use super::client::Inner;
use super::rounds;
use crossbeam_channel::{Receiver, TryRecvError};
use parking_lot::Mutex;
use redis::Connection;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the subscriber looks at its stop signal while no start comes.
const POLL: Duration = Duration::from_millis(100);
/// A slot this many numbers below one known started: Redis's counter
/// started again.
pub(super) const RESTARTED: u64 = 64;
/// First wait before the subscriber reconnects; doubles up to a second.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// How often a subscriber with nothing to hear makes sure its connection
/// still answers, and how long it waits for the answer. A connection lost
/// without a word (a NAT's state dropped, a failover to another host)
/// reads as silence for ever: the subscriber would listen to nobody, and
/// the gap after the others' starts would be lost without a warning.
const PING_EVERY: Duration = Duration::from_secs(2);
const PING_WAIT: Duration = Duration::from_secs(1);
/// A notice of ours not heard back by our own subscriber within this long,
/// while it listens and hears other things (a notice, a ping's answer),
/// means the publishing connection passes nothing: the next heartbeat
/// reopens it (2-3 s after the notice, if the subscriber heard since).
/// Redis hands a notice to every subscriber in well under a millisecond; a
/// connection cut off without a word (a NAT's state dropped) takes writes
/// for minutes before one fails, and meanwhile the others hear none of our
/// starts.
const ECHO_WAIT: Duration = Duration::from_secs(2);

/// The publishing side and the latest start seen from the others.
pub(super) struct Starts {
    /// `None` until opened and while lost (the heartbeat reopens it).
    publishing: Mutex<Option<Connection>>,
    /// The latest start of another process, in nanoseconds since `epoch`
    /// plus one (0: none seen).
    latest: AtomicU64,
    epoch: Instant,
    /// The highest slot number known started, here or elsewhere (0: none).
    through: AtomicU64,
    /// Whether the subscriber is listening: while it is not, nothing can be
    /// heard, and nobody waits to hear (a joining start keeps a start-up
    /// allowance instead: see `slot_unheard`).
    listening: AtomicBool,
    /// The first slot number heard from another process since the
    /// subscriber (re)subscribed (0: none yet). Starts told before that
    /// were not heard: slots below it are not waited for (nor, unknown,
    /// are they known started: see `slot_unheard`).
    first_heard: AtomicU64,
    /// When the oldest notice sent since our subscriber last heard one of
    /// ours back was sent, in nanoseconds since `epoch` plus one (0: none
    /// waits). See [`ECHO_WAIT`].
    unechoed: AtomicU64,
    /// When our subscriber last heard a notice of ours, likewise.
    last_echo: AtomicU64,
    /// When our subscriber last heard anything (a notice, a ping's answer),
    /// likewise: only a subscriber that hears can tell that our notices do
    /// not come (one cut off too says nothing until its ping fails).
    heard_any: AtomicU64,
    /// Whether a reopening for want of echoes was warned of (later ones go
    /// to the debug log: a Redis that refuses our PUBLISH, an ACL say,
    /// would repeat it every few seconds).
    echo_warned: AtomicBool,
}

impl std::fmt::Debug for Starts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Starts")
            .field("publishing", &self.publishing.lock().is_some())
            .field("latest_elsewhere", &self.latest_elsewhere())
            .field("through", &self.through.load(Ordering::Acquire))
            .finish()
    }
}

impl Starts {
    pub(super) fn new() -> Starts {
        Starts {
            publishing: Mutex::new(None),
            latest: AtomicU64::new(0),
            epoch: Instant::now(),
            through: AtomicU64::new(0),
            listening: AtomicBool::new(false),
            first_heard: AtomicU64::new(0),
            unechoed: AtomicU64::new(0),
            last_echo: AtomicU64::new(0),
            heard_any: AtomicU64::new(0),
            echo_warned: AtomicBool::new(false),
        }
    }

    /// Whether slot `seq` or a later one is known started; `true` too for
    /// what cannot be heard: while the subscriber is not listening, and for
    /// slots before the first one heard from another process since it
    /// subscribed (measured: processes starting together waited a whole
    /// gap for a start told before they subscribed, then went out with the
    /// next holder's, which was not listening yet).
    pub(super) fn slot_started(&self, seq: u64) -> bool {
        !self.can_hear(seq) || self.known_started(seq)
    }

    /// Whether slot `seq` is not known started, and its start could not
    /// have been heard (see `slot_started`).
    pub(super) fn slot_unheard(&self, seq: u64) -> bool {
        !self.can_hear(seq) && !self.known_started(seq)
    }

    /// Whether a start of slot `seq` by another process would be heard.
    fn can_hear(&self, seq: u64) -> bool {
        let first = self.first_heard.load(Ordering::Acquire);
        self.listening.load(Ordering::Acquire) && first != 0 && seq >= first
    }

    fn known_started(&self, seq: u64) -> bool {
        self.through.load(Ordering::Acquire) >= seq
    }

    /// Sends `command` on the publishing connection (its replies off): a
    /// lost connection drops it, and the heartbeat reopens one.
    pub(super) fn send(&self, command: &[u8]) {
        let mut publishing = self.publishing.lock();
        let Some(con) = publishing.as_mut() else {
            return;
        };
        // Read before the write: its echo always comes after it.
        let sent = self.one_up(Instant::now());
        if con.send_packed_command(command).is_err() {
            *publishing = None;
        } else if self.listening() {
            // The oldest notice not heard back: this one, unless an older
            // one waits still.
            let waiting = self.unechoed.load(Ordering::Acquire);
            if waiting == 0 || self.last_echo.load(Ordering::Acquire) >= waiting {
                let _ = self.unechoed.compare_exchange(
                    waiting,
                    sent,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
            }
        }
    }

    /// Our subscriber heard something: it is alive.
    fn heard_anything(&self) {
        self.heard_any
            .fetch_max(self.one_up(Instant::now()), Ordering::AcqRel);
    }

    /// Our subscriber heard a notice of ours: the publishing side passed
    /// everything sent before now.
    fn echoed(&self) {
        self.last_echo
            .fetch_max(self.one_up(Instant::now()), Ordering::AcqRel);
    }

    /// Whether the subscriber is listening to the others.
    pub(super) fn listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// Slot `seq` started in another process, as heard.
    fn heard(&self, seq: u64) {
        self.slot(seq);
        let _ = self
            .first_heard
            .compare_exchange(0, seq, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Slot `seq` started (here, or heard from another process). The time
    /// of a start heard is stored first, so a caller that sees the number
    /// also sees the time.
    pub(super) fn slot(&self, seq: u64) {
        self.through.fetch_max(seq, Ordering::AcqRel);
    }

    /// Redis gave this process slot `seq`. Numbers only grow, so a slot
    /// known started far past it means Redis lost the counter (a restart,
    /// or the key expired): start counting again below it. (A little past
    /// it is a race: another thread's later slot, booked and started while
    /// this reply was on its way.)
    pub(super) fn booked(&self, seq: u64) {
        if self.through.load(Ordering::Acquire) >= seq.saturating_add(RESTARTED) {
            self.through.store(seq.saturating_sub(1), Ordering::Release);
            // The numbers heard so far were of the lost counter: the new
            // ones are heard from the next start told.
            self.first_heard.store(0, Ordering::Release);
        }
    }

    /// The latest start another process published, on our clock.
    pub(super) fn latest_elsewhere(&self) -> Option<Instant> {
        match self.latest.load(Ordering::Acquire) {
            0 => None,
            one_up => Some(self.epoch + Duration::from_nanos(one_up - 1)),
        }
    }

    fn saw(&self, at: Instant) {
        self.latest.fetch_max(self.one_up(at), Ordering::AcqRel);
    }

    /// `at` in nanoseconds since `epoch`, plus one (0 stands for none).
    fn one_up(&self, at: Instant) -> u64 {
        let nanos = at.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(nanos).unwrap_or(u64::MAX - 1) + 1
    }

    /// Whether the publishing connection must be (re)opened: it was lost,
    /// or our subscriber, listening and hearing, has not heard a notice of
    /// ours back for [`ECHO_WAIT`] (then it is dropped here).
    pub(super) fn needs_restore(&self) -> bool {
        let mut publishing = self.publishing.lock();
        let unechoed = self.unechoed.load(Ordering::Acquire);
        // One heard back since is no wait (the next notice takes its place).
        let waiting = unechoed != 0 && self.last_echo.load(Ordering::Acquire) < unechoed;
        let sent = self.epoch + Duration::from_nanos(unechoed.saturating_sub(1));
        let silent = publishing.is_some()
            && waiting
            && self.listening()
            && self.heard_any.load(Ordering::Acquire) > unechoed
            && sent.elapsed() >= ECHO_WAIT;
        if !silent {
            return publishing.is_none();
        }
        *publishing = None;
        self.unechoed.store(0, Ordering::Release);
        drop(publishing);
        let message = format!(
            "shared limit: our starts were not heard back for {} s: reopening the connection \
             that tells them",
            ECHO_WAIT.as_secs()
        );
        if self.echo_warned.swap(true, Ordering::AcqRel) {
            log::debug!("{message}");
        } else {
            log::warn!("{message}");
        }
        true
    }

    /// Puts `con` in place as the publishing connection, its replies off.
    pub(super) fn restore(&self, mut con: Connection) -> redis::RedisResult<()> {
        let off = redis::cmd("CLIENT")
            .arg("REPLY")
            .arg("OFF")
            .get_packed_command();
        con.send_packed_command(&off)?;
        let mut publishing = self.publishing.lock();
        *publishing = Some(con);
        // Sent on the connection before: a fresh one has its own echoes.
        self.unechoed.store(0, Ordering::Release);
        Ok(())
    }
}

/// The pub/sub channel of a schedule.
fn channel(inner: &Inner) -> String {
    inner.config.key.part("starts")
}

/// Tells the others that this process started a request at `at` (our
/// clock), in slot `seq` of the schedule if it was one (from the teller's
/// thread: `teller.rs`). Never waits for a reply: a lost connection drops
/// the notice.
pub(super) fn publish(inner: &Inner, at: Instant, seq: Option<u64>) {
    let Some(redis_us) = inner.redis_time(at) else {
        return;
    };
    let message = match seq {
        Some(seq) => format!("{} {redis_us} {seq}", inner.id),
        None => format!("{} {redis_us}", inner.id),
    };
    let command = redis::cmd("PUBLISH")
        .arg(channel(inner))
        .arg(message)
        .get_packed_command();
    inner.starts.send(&command);
}

/// Starts the subscriber.
pub(super) fn spawn(inner: Arc<Inner>) -> Background {
    background::spawn("restb-shared-starts", move |stopped| {
        let mut backoff = FIRST_BACKOFF;
        loop {
            if let Ok(mut con) = inner.open() {
                backoff = FIRST_BACKOFF;
                let stopped = listen(&inner, &mut con, &stopped);
                inner.starts.listening.store(false, Ordering::Release);
                if stopped {
                    return;
                }
            }
            match stopped.recv_timeout(backoff) {
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                _ => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    })
}

/// Takes in the others' starts until stopped (`true`) or the connection
/// fails (`false`).
fn listen(inner: &Inner, con: &mut Connection, stopped: &Receiver<()>) -> bool {
    let mut pubsub = con.as_pubsub();
    let rounds_channel = rounds::channel(inner);
    if pubsub.set_read_timeout(Some(POLL)).is_err()
        || pubsub.subscribe(channel(inner)).is_err()
        || pubsub.subscribe(&rounds_channel).is_err()
    {
        return false;
    }
    inner.starts.first_heard.store(0, Ordering::Release);
    // Notices sent while nobody listened cannot come back.
    inner.starts.unechoed.store(0, Ordering::Release);
    inner.starts.listening.store(true, Ordering::Release);
    let mut last_heard = Instant::now();
    loop {
        if !matches!(stopped.try_recv(), Err(TryRecvError::Empty)) {
            return true;
        }
        if last_heard.elapsed() >= PING_EVERY {
            // Messages that come meanwhile are kept for `get_message`.
            let answered = pubsub.set_read_timeout(Some(PING_WAIT)).is_ok()
                && pubsub.ping::<redis::Value>().is_ok()
                && pubsub.set_read_timeout(Some(POLL)).is_ok();
            if !answered {
                return false;
            }
            inner.starts.heard_anything();
            last_heard = Instant::now();
        }
        match pubsub.get_message() {
            Ok(message) => {
                inner.starts.heard_anything();
                last_heard = Instant::now();
                let Ok(text) = message.get_payload::<String>() else {
                    continue;
                };
                // Every message begins with its teller's id: ours are ours.
                let Some((id, told)) = text.split_once(' ') else {
                    continue;
                };
                if id == inner.id {
                    inner.starts.echoed();
                    continue;
                }
                if message.get_channel_name() == rounds_channel {
                    rounds::hear(inner, told);
                    continue;
                }
                let mut fields = told.split(' ');
                let Some(redis_us) = fields.next() else {
                    continue;
                };
                if let Ok(redis_us) = redis_us.parse::<i64>() {
                    let now = Instant::now();
                    inner.starts.saw(inner.local_time(redis_us, now));
                }
                if let Some(Ok(seq)) = fields.next().map(str::parse::<u64>) {
                    inner.starts.heard(seq);
                }
            }
            Err(error) if error.is_timeout() => {}
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_unheard_while_not_listening_or_nothing_heard() {
        let starts = Starts::new();
        assert!(starts.slot_unheard(5), "not listening yet");
        assert!(starts.slot_started(5), "nobody waits to hear it either");
        starts.listening.store(true, Ordering::Release);
        assert!(starts.slot_unheard(5), "listening, nothing heard yet");
        starts.heard(10);
        assert!(!starts.slot_unheard(11), "it would be heard");
        assert!(!starts.slot_started(11), "so its start is waited for");
        assert!(
            !starts.slot_unheard(9) && starts.slot_started(9),
            "a later one started"
        );
        starts.listening.store(false, Ordering::Release);
        assert!(starts.slot_unheard(11), "the subscriber lost");
        assert!(starts.slot_started(11), "nobody waits to hear it");
    }

    #[test]
    fn a_lost_counter_starts_the_hearing_afresh() {
        let starts = Starts::new();
        starts.listening.store(true, Ordering::Release);
        starts.heard(500);
        // Redis lost the counter: slot 3 is ours now, far below.
        starts.booked(3);
        assert!(starts.slot_unheard(3), "the old numbers say nothing");
        starts.heard(4);
        assert!(!starts.slot_unheard(5), "the new numbers are heard");
        assert!(!starts.slot_started(5), "so their starts are waited for");
    }
}

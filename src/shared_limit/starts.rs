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
//! Redis's time; a subscriber thread maps the others' starts onto our clock
//! and keeps the latest. A notice takes a fraction of a millisecond; the
//! next slot is a whole interval away.

use super::client::Inner;
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use parking_lot::Mutex;
use redis::Connection;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the subscriber looks at its stop signal while no start comes.
const POLL: Duration = Duration::from_millis(100);
/// First wait before the subscriber reconnects; doubles up to a second.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// The publishing side and the latest start seen from the others.
pub(super) struct Starts {
    /// `None` until opened and while lost (the heartbeat reopens it).
    publishing: Mutex<Option<Connection>>,
    /// The latest start of another process, in nanoseconds since `epoch`
    /// plus one (0: none seen).
    latest: AtomicU64,
    epoch: Instant,
}

impl std::fmt::Debug for Starts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Starts")
            .field("publishing", &self.publishing.lock().is_some())
            .field("latest_elsewhere", &self.latest_elsewhere())
            .finish()
    }
}

impl Starts {
    pub(super) fn new() -> Starts {
        Starts {
            publishing: Mutex::new(None),
            latest: AtomicU64::new(0),
            epoch: Instant::now(),
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
        let nanos = at.saturating_duration_since(self.epoch).as_nanos();
        let one_up = u64::try_from(nanos).unwrap_or(u64::MAX - 1) + 1;
        self.latest.fetch_max(one_up, Ordering::AcqRel);
    }

    pub(super) fn needs_restore(&self) -> bool {
        self.publishing.lock().is_none()
    }

    /// Puts `con` in place as the publishing connection, its replies off.
    pub(super) fn restore(&self, mut con: Connection) -> redis::RedisResult<()> {
        let off = redis::cmd("CLIENT")
            .arg("REPLY")
            .arg("OFF")
            .get_packed_command();
        con.send_packed_command(&off)?;
        *self.publishing.lock() = Some(con);
        Ok(())
    }
}

/// The pub/sub channel of a schedule.
fn channel(inner: &Inner) -> String {
    inner.config.key.part("starts")
}

/// Tells the others that this process started a request at `at` (our
/// clock). Never blocks on Redis: a lost connection drops the notice.
pub(super) fn publish(inner: &Inner, at: Instant) {
    let Some(redis_us) = inner.redis_time(at) else {
        return;
    };
    let mut publishing = inner.starts.publishing.lock();
    let Some(con) = publishing.as_mut() else {
        return;
    };
    let message = format!("{} {redis_us}", inner.id);
    let command = redis::cmd("PUBLISH")
        .arg(channel(inner))
        .arg(message)
        .get_packed_command();
    if con.send_packed_command(&command).is_err() {
        *publishing = None;
    }
}

/// Starts the subscriber; dropping the sender (or sending) ends it.
pub(super) fn spawn(inner: Arc<Inner>) -> (Sender<()>, JoinHandle<()>) {
    let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
    let thread = std::thread::Builder::new()
        .name("restb-shared-starts".into())
        .spawn(move || {
            let mut backoff = FIRST_BACKOFF;
            loop {
                if let Ok(mut con) = inner.open() {
                    backoff = FIRST_BACKOFF;
                    if listen(&inner, &mut con, &stopped) {
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
        .expect("spawning the shared-starts thread: the OS refused a thread");
    (stop, thread)
}

/// Takes in the others' starts until stopped (`true`) or the connection
/// fails (`false`).
fn listen(inner: &Inner, con: &mut Connection, stopped: &Receiver<()>) -> bool {
    let mut pubsub = con.as_pubsub();
    if pubsub.set_read_timeout(Some(POLL)).is_err() || pubsub.subscribe(channel(inner)).is_err() {
        return false;
    }
    loop {
        if !matches!(stopped.try_recv(), Err(TryRecvError::Empty)) {
            return true;
        }
        match pubsub.get_message() {
            Ok(message) => {
                let Ok(text) = message.get_payload::<String>() else {
                    continue;
                };
                let Some((id, redis_us)) = text.split_once(' ') else {
                    continue;
                };
                if id == inner.id {
                    continue;
                }
                if let Ok(redis_us) = redis_us.parse::<i64>() {
                    let now = Instant::now();
                    inner.starts.saw(inner.local_time(redis_us, now));
                }
            }
            Err(error) if error.is_timeout() => {}
            Err(_) => return false,
        }
    }
}

//! [`SharedLimit`]: one process's handle on a schedule held in Redis.

use super::background::{self, Background};
use super::beat;
use super::clock_map::ClockMap;
use super::error::SharedLimitError;
use super::key::ScheduleKey;
use super::rounds::{self, Rounds};
use super::script::{Beat, Registration, Scripts};
use super::starts::{self, Starts};
use super::teller::{self, Teller};
use super::url::RedisUrl;
use crate::limiter::Rate;
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use redis::io::tcp::TcpSettings;
use redis::{Connection, IntoConnectionInfo};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the schedule is, whose it is, and this process's allotted rate.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SharedLimitConfig {
    /// The Redis holding the schedule.
    pub url: RedisUrl,
    /// The schedule's name (from the client key and API address).
    pub key: ScheduleKey,
    /// This process's allotted rate (`--rps`); the schedule uses the
    /// smallest of all live processes'.
    pub rate: Rate,
    /// Heartbeat period; a process is forgotten three periods after its
    /// last one. Defaults to 1 s; at least [`SHORTEST_HEARTBEAT`] (a
    /// shorter one is taken as that: a period of 0 beat without a pause).
    pub heartbeat: Duration,
    /// Connect, read and write timeout of each Redis call. Defaults to 1 s.
    pub timeout: Duration,
    /// This process's budget of requests a month (`--shared-budget`),
    /// told to the others: the smallest of the live processes' holds
    /// (see [`Peers::smallest_budget`]). Defaults to none.
    pub budget: Option<u64>,
}

impl SharedLimitConfig {
    /// The defaults for `url`, `key` and `rate`.
    pub fn new(url: RedisUrl, key: ScheduleKey, rate: Rate) -> SharedLimitConfig {
        SharedLimitConfig {
            url,
            key,
            rate,
            heartbeat: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            budget: None,
        }
    }
}

/// The shortest heartbeat period [`SharedLimit::connect`] keeps.
pub const SHORTEST_HEARTBEAT: Duration = Duration::from_millis(10);

/// A start slot from the shared schedule, on this process's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// When the request may start.
    pub start: Instant,
    /// The interval the schedule moved on by (the slowest process's, if
    /// slower than ours).
    pub interval: Duration,
    /// The end of a pause some process set, if one holds.
    pub paused_until: Option<Instant>,
    /// The slot's number on the schedule: slots are numbered in the order
    /// of their starts, so the holder of slot `seq` waits to hear that slot
    /// `seq - 1` started (see [`SharedLimit::slot_started`]).
    pub seq: u64,
}

/// What the heartbeats said last.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Peers {
    /// Processes on the schedule, this one included.
    pub live: u32,
    /// The slowest interval among them.
    pub slowest: Duration,
    /// The widest pacing margin among them (0.01: 1 % slower than the
    /// rate), if any told one.
    pub widest_margin: Option<f64>,
    /// The smallest monthly budget among them, if any told one.
    pub smallest_budget: Option<u64>,
}

/// Margins go to Redis in parts per million.
const PPM: f64 = 1e6;

/// Redis round trips of reservations, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoundTrips {
    /// Reservations answered.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
}

/// One process's handle on a schedule in Redis: reserves start slots,
/// writes pauses, and keeps a heartbeat (a thread) that registers the
/// process and its rate and reconnects after a loss. Dropping it removes
/// the process from the schedule: at once with a Redis that answers; one
/// that hangs is not waited for past half a second (the heartbeat's thread
/// goes on trying to its timeout, and the others forget the process three
/// heartbeat periods after its last).
#[derive(Debug)]
pub struct SharedLimit {
    inner: Arc<Inner>,
    beat: Option<Background>,
    /// The subscriber to the others' actual starts (`starts.rs`).
    listen: Option<Background>,
    /// The thread that tells our starts (`teller.rs`).
    tell: Teller,
}

pub(super) struct Inner {
    pub(super) config: SharedLimitConfig,
    client: redis::Client,
    pub(super) id: String,
    pub(super) scripts: Scripts,
    /// The connection reservations and pauses use; `None` while lost.
    reserving: Mutex<Option<Connection>>,
    peers: Mutex<Peers>,
    round_trips: Mutex<Histogram<u64>>,
    clock: Mutex<ClockMap>,
    pub(super) starts: Starts,
    pub(super) rounds: Rounds,
    /// Our pacing margin as last noted, in parts per million (0: none yet),
    /// for the heartbeat to tell.
    margin_ppm: AtomicU64,
    /// Between a failed call and the reconnection: warned once per loss.
    pub(super) lost: AtomicBool,
    warned_slower: AtomicBool,
    warned_smaller_budget: AtomicBool,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("config", &self.config)
            .field("id", &self.id)
            .field("connected", &self.reserving.lock().is_some())
            .field("peers", &*self.peers.lock())
            .finish_non_exhaustive()
    }
}

impl SharedLimit {
    /// Connects, registers this process, and starts the heartbeat.
    ///
    /// # Errors
    /// [`SharedLimitError::Redis`] when Redis cannot be reached, refuses
    /// the password, or fails the first heartbeat.
    pub fn connect(mut config: SharedLimitConfig) -> Result<SharedLimit, SharedLimitError> {
        config.heartbeat = config.heartbeat.max(SHORTEST_HEARTBEAT);
        let url = config.url.clone();
        // No Nagle: a published start is one small write with no reply.
        let client = url
            .expose()
            .into_connection_info()
            .map(|info| info.set_tcp_settings(TcpSettings::default().set_nodelay(true)))
            .and_then(redis::Client::open)
            .map_err(|e| SharedLimitError::redis(&url, &e))?;
        let inner = Arc::new(Inner {
            id: format!("{}-{:016x}", std::process::id(), fastrand::u64(..)),
            config,
            client,
            scripts: Scripts::new(),
            reserving: Mutex::new(None),
            peers: Mutex::new(Peers {
                live: 1,
                slowest: Duration::ZERO,
                widest_margin: None,
                smallest_budget: None,
            }),
            margin_ppm: AtomicU64::new(0),
            round_trips: Mutex::new(
                Histogram::new_with_bounds(1, 60_000_000, 3)
                    .expect("bounds 1 us..60 s with 3 digits are valid for hdrhistogram"),
            ),
            clock: Mutex::new(ClockMap::new()),
            starts: Starts::new(),
            rounds: Rounds::new(),
            lost: AtomicBool::new(false),
            warned_slower: AtomicBool::new(false),
            warned_smaller_budget: AtomicBool::new(false),
        });
        let mut beating = inner
            .open()
            .map_err(|e| SharedLimitError::redis(&url, &e))?;
        // A short command first: a Redis that wants a password answers it
        // with NOAUTH, but drops the connection at a script's long
        // argument list with a bare "Protocol error: unauthenticated
        // multibulk length" (a review's finding).
        redis::cmd("PING")
            .query::<redis::Value>(&mut beating)
            .map_err(|e| SharedLimitError::redis(&url, &e))?;
        let first = inner
            .beat(&mut beating)
            .map_err(|e| SharedLimitError::redis(&url, &e))?;
        inner.learn(first);
        let reserving = inner
            .open()
            .map_err(|e| SharedLimitError::redis(&url, &e))?;
        *inner.reserving.lock() = Some(reserving);
        let publishing = inner.open().and_then(|con| inner.starts.restore(con));
        publishing.map_err(|e| SharedLimitError::redis(&url, &e))?;
        let listen = starts::spawn(Arc::clone(&inner));
        let beat = beat::spawn(Arc::clone(&inner), beating);
        let telling = Arc::clone(&inner);
        let tell = Teller::spawn(
            teller::delay_for(inner.config.rate.interval()),
            move |start| starts::publish(&telling, start.at, start.seq),
        );
        Ok(SharedLimit {
            inner,
            beat: Some(beat),
            listen: Some(listen),
            tell,
        })
    }

    /// The Redis URL (password hidden when printed).
    pub fn url(&self) -> &RedisUrl {
        &self.inner.config.url
    }

    /// This process's allotted rate.
    pub fn rate(&self) -> Rate {
        self.inner.config.rate
    }

    /// The longest a process can take to come back once Redis is back: it
    /// tries again at least once a heartbeat period, and a try under way
    /// may take the connect timeout to fail first (packets dropped, not
    /// refused: a partition, a failover).
    pub(crate) fn longest_return(&self) -> Duration {
        self.inner.config.heartbeat + self.inner.config.timeout
    }

    /// Books the next start slot: at least `interval` after the previous
    /// one of any process (longer when a live process is slower; `margin`
    /// scales that one's interval as it scales ours: 1.002 for 0.2 %).
    ///
    /// Redis answers in its own clock's time; the start is mapped onto our
    /// monotonic clock through the tightest recent round trip (see
    /// `clock_map.rs`): off by at most half of it, tens of microseconds on
    /// a LAN, whatever this call's own round trip was.
    ///
    /// # Errors
    /// [`SharedLimitError::Disconnected`] while the connection is lost (the
    /// heartbeat reconnects), [`SharedLimitError::Redis`] when this call
    /// lost it.
    pub fn reserve(&self, interval: Duration, margin: f64) -> Result<Grant, SharedLimitError> {
        self.reserve_after(interval, margin, None)
    }

    /// [`SharedLimit::reserve`], the slot no sooner than `not_before` (our
    /// clock; Redis gets the time left until it as the call goes out, so
    /// the hosts' clocks do not matter, and a wait for the connection
    /// behind another thread's call does not count twice): after a loss of
    /// Redis, this process's local slots still to come hold the shared
    /// schedule too, and a restarted Redis knows none of them.
    ///
    /// # Errors
    /// As [`SharedLimit::reserve`].
    pub fn reserve_after(
        &self,
        interval: Duration,
        margin: f64,
        not_before: Option<Instant>,
    ) -> Result<Grant, SharedLimitError> {
        let inner = &self.inner;
        let (reply, sent, received) = inner.call_reserving(|con, sent| {
            let hold = not_before.map_or(Duration::ZERO, |at| at.saturating_duration_since(sent));
            inner
                .scripts
                .reserve(con, &inner.config.key, interval, margin, hold)
        })?;
        let trip = received - sent;
        let micros = u64::try_from(trip.as_micros()).unwrap_or(u64::MAX);
        inner.round_trips.lock().saturating_record(micros.max(1));
        let mut clock = inner.clock.lock();
        clock.observe(sent, received, reply.now_us);
        let paused = reply.pause_us > reply.now_us;
        inner.starts.booked(reply.seq);
        Ok(Grant {
            start: clock.local(reply.start_us, received),
            interval: Duration::from_micros(reply.interval_us.unsigned_abs()),
            paused_until: paused.then(|| clock.local(reply.pause_us, received)),
            seq: reply.seq,
        })
    }

    /// Holds every process's starts until `until` (a longer pause already
    /// set stands). Returns the pause's end on our clock.
    ///
    /// # Errors
    /// As [`SharedLimit::reserve`].
    pub fn pause(&self, until: Instant, reason: &str) -> Result<Instant, SharedLimitError> {
        let inner = &self.inner;
        let mut length = Duration::ZERO;
        let ((end_us, now_us), sent, received) = inner.call_reserving(|con, sent| {
            length = until.saturating_duration_since(sent);
            inner.scripts.pause(con, &inner.config.key, length)
        })?;
        log::debug!(
            "shared pause for {length:?} on {}: {reason}",
            inner.config.key
        );
        let mut clock = inner.clock.lock();
        clock.observe(sent, received, now_us);
        Ok(clock.local(end_us, received))
    }

    /// Tells the other processes on the schedule that this one started a
    /// request at `at`, so that none starts less than an interval after
    /// it even when it started late for its slot (see `starts.rs`). Never
    /// waits: a thread of ours tells it a moment later (`teller.rs`).
    pub fn started(&self, at: Instant, seq: Option<u64>) {
        if let Some(seq) = seq {
            self.inner.starts.slot(seq);
        }
        self.tell.hand_over(at, seq);
    }

    /// A request of ours that started at `started` drew a new round of
    /// rejections: tells the others, unless one of them told of that round
    /// already. Never blocks on Redis.
    pub fn widened(&self, started: Instant) {
        rounds::publish(&self.inner, started);
    }

    /// Notes our pacing margin (0.01: 1 %), which the heartbeat tells the
    /// others: a process that joins the schedule later starts from the
    /// widest, not from the floor (see [`Peers::widest_margin`]).
    pub fn note_margin(&self, margin: f64) {
        // A float's cast saturates (and takes NaN to 0).
        let ppm = (margin * PPM).round() as u64;
        self.inner.margin_ppm.store(ppm, Ordering::Release);
    }

    /// How many rounds of rejections the other processes told of; `None`
    /// while they cannot be heard (Redis lost, or the subscriber not
    /// listening yet). Atomics only: the limiter asks at every reply, under
    /// its lock, and the reservation connection's lock is held through
    /// Redis round trips.
    pub fn rounds_heard(&self) -> Option<u64> {
        let lost = self.inner.lost.load(Ordering::Acquire);
        (!lost && self.inner.starts.listening()).then(|| self.inner.rounds.heard())
    }

    /// Whether slot `seq` of the schedule (or a later one) is known to have
    /// started, here or in another process: told by [`SharedLimit::started`]
    /// or heard from the others. `true` while the others' starts cannot be
    /// heard (no one waits for what it cannot hear; see
    /// [`SharedLimit::slot_unheard`]).
    pub fn slot_started(&self, seq: u64) -> bool {
        self.inner.starts.slot_started(seq)
    }

    /// Whether slot `seq` is not known to have started, and its start
    /// could not have been heard: the subscriber is not listening, has
    /// heard no other process yet, or subscribed after it.
    pub fn slot_unheard(&self, seq: u64) -> bool {
        self.inner.starts.slot_unheard(seq)
    }

    /// The latest start another process on the schedule told of, on our
    /// clock.
    pub fn started_elsewhere(&self) -> Option<Instant> {
        self.inner.starts.latest_elsewhere()
    }

    /// What the heartbeats said last: live processes and the slowest rate.
    pub fn peers(&self) -> Peers {
        *self.inner.peers.lock()
    }

    /// Whether reservations go to Redis now (not lost).
    pub fn is_connected(&self) -> bool {
        self.inner.reserving.lock().is_some()
    }

    /// Round trips of the reservations so far.
    pub fn round_trips(&self) -> RoundTrips {
        let histogram = self.inner.round_trips.lock();
        RoundTrips {
            count: histogram.len(),
            p50_us: histogram.value_at_quantile(0.5),
            p99_us: histogram.value_at_quantile(0.99),
        }
    }

    /// Records a failed call: warns the first time in a loss. A failure
    /// noted after the heartbeat already put a new connection in place is
    /// over: marked lost then, nothing would clear the mark again (the
    /// others' rounds unheard, the next loss unsaid). The reservation lock
    /// orders this against `Inner::restore`.
    pub(crate) fn note_lost(&self, error: &SharedLimitError, local_share: Rate) {
        let newly_lost = {
            let reserving = self.inner.reserving.lock();
            reserving.is_none() && !self.inner.lost.swap(true, Ordering::AcqRel)
        };
        if newly_lost {
            log::warn!(
                "{error}; pacing locally at {local_share} (the rate shared by {} live processes) until Redis is back",
                self.peers().live
            );
        }
    }
}

impl Inner {
    /// Our moment `at` on Redis's clock, in microseconds.
    pub(super) fn redis_time(&self, at: Instant) -> Option<i64> {
        self.clock.lock().redis_us(at, Instant::now())
    }

    /// The moment of ours at which Redis's clock shows `redis_us`.
    pub(super) fn local_time(&self, redis_us: i64, now: Instant) -> Instant {
        self.clock.lock().local(redis_us, now)
    }

    /// Makes `call` on the reservation connection; its answer, when it went
    /// out (also given to `call`) and when the answer came. A connection
    /// that Redis closed (an idle client past its `timeout` setting, a
    /// restart) is opened again and the call made once more: a command
    /// written to a closed connection never ran (measured: a run paused
    /// 8 s by the gateway, on a Redis with `timeout 5`, took the closed
    /// connection for a loss of Redis). Any other failure, or a second,
    /// loses the connection: its reply may still come, so it is out of
    /// step; the heartbeat reconnects.
    fn call_reserving<T>(
        &self,
        mut call: impl FnMut(&mut Connection, Instant) -> redis::RedisResult<T>,
    ) -> Result<(T, Instant, Instant), SharedLimitError> {
        let mut reserving = self.reserving.lock();
        let Some(con) = reserving.as_mut() else {
            return Err(SharedLimitError::Disconnected {
                url: self.config.url.to_string(),
            });
        };
        let sent = Instant::now();
        let mut error = match call(con, sent) {
            Ok(answer) => return Ok((answer, sent, Instant::now())),
            Err(error) => error,
        };
        *reserving = None;
        if error.is_connection_dropped() {
            match self.open() {
                Ok(mut fresh) => {
                    // A restart may have been a failover, to another clock.
                    self.clock.lock().forget();
                    let sent = Instant::now();
                    match call(&mut fresh, sent) {
                        Ok(answer) => {
                            let received = Instant::now();
                            *reserving = Some(fresh);
                            return Ok((answer, sent, received));
                        }
                        Err(again) => error = again,
                    }
                }
                Err(unreachable) => error = unreachable,
            }
        }
        Err(SharedLimitError::redis(&self.config.url, &error))
    }

    /// A new connection with the configured timeouts.
    pub(super) fn open(&self) -> redis::RedisResult<Connection> {
        let timeout = self.config.timeout;
        let con = self.client.get_connection_with_timeout(timeout)?;
        con.set_read_timeout(Some(timeout))?;
        con.set_write_timeout(Some(timeout))?;
        Ok(con)
    }

    pub(super) fn beat(&self, con: &mut Connection) -> redis::RedisResult<Beat> {
        let ttl = self.config.heartbeat.saturating_mul(3);
        let registration = Registration {
            interval: self.config.rate.interval(),
            margin_ppm: Some(self.margin_ppm.load(Ordering::Acquire)).filter(|ppm| *ppm > 0),
            budget: self.config.budget,
        };
        self.scripts
            .beat(con, &self.config.key, &self.id, Some(registration), ttl)
    }

    /// Takes in a heartbeat's answer; says once if another process is slower.
    pub(super) fn learn(&self, beat: Beat) {
        let slowest = Duration::from_micros(beat.slowest_us.unsigned_abs());
        *self.peers.lock() = Peers {
            live: beat.live.max(1),
            slowest,
            widest_margin: (beat.widest_margin_ppm > 0)
                .then(|| beat.widest_margin_ppm as f64 / PPM),
            smallest_budget: (beat.smallest_budget > 0).then_some(beat.smallest_budget),
        };
        if let Some((smallest, own)) = self.config.budget.and_then(|own| {
            (beat.smallest_budget > 0 && beat.smallest_budget < own)
                .then_some((beat.smallest_budget, own))
        }) {
            if !self.warned_smaller_budget.swap(true, Ordering::AcqRel) {
                log::warn!(
                    "another process on this client key has a budget of {smallest} requests a \
                     month, below our {own}: the smallest budget holds"
                );
            }
        }
        let own = self.config.rate.interval();
        // Whole microseconds in Redis: allow for the rounding.
        if slowest > own + Duration::from_micros(1)
            && !self.warned_slower.swap(true, Ordering::AcqRel)
        {
            let rate = 1.0 / slowest.as_secs_f64();
            log::warn!(
                "another process on this client key runs at {rate:.2}/s, below our {}: the shared schedule uses the smallest rate",
                self.config.rate
            );
        }
    }

    /// Puts a fresh reservation connection in place of a lost one.
    pub(super) fn restore(&self, con: Connection) {
        let mut reserving = self.reserving.lock();
        if reserving.is_none() {
            *reserving = Some(con);
            // It may be another host now (a failover), with its own clock.
            self.clock.lock().forget();
        }
        drop(reserving);
        if self.lost.swap(false, Ordering::AcqRel) {
            log::warn!(
                "shared limit at {}: reconnected, back on the shared schedule",
                self.config.url
            );
        }
    }

    pub(super) fn needs_restore(&self) -> bool {
        self.reserving.lock().is_none()
    }
}

impl Drop for SharedLimit {
    fn drop(&mut self) {
        let threads = [self.listen.take(), self.beat.take()];
        background::stop_all(threads.into_iter().flatten(), background::END_WAIT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared_limit::redis_server;
    use crate::shared_limit::RedisUrl;

    /// Regression (a review's finding): a worker whose reservation failed
    /// noted the loss after the heartbeat had already reconnected; marked
    /// lost for good, the process stopped hearing the others' rounds.
    #[test]
    fn a_loss_noted_after_the_reconnection_leaves_the_schedule_shared() {
        let redis = redis_server::Redis::start();
        let config = SharedLimitConfig::new(
            RedisUrl::parse(&redis.url()).unwrap(),
            crate::shared_limit::ScheduleKey::new(
                &crate::api::ClientKey::new("late-loss-key").unwrap(),
                "http://127.0.0.1:1",
            ),
            Rate::per_second(10.0).unwrap(),
        );
        let limit = SharedLimit::connect(config).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while limit.rounds_heard().is_none() {
            assert!(Instant::now() < deadline, "never listening");
            std::thread::sleep(Duration::from_millis(20));
        }
        let stale = SharedLimitError::Disconnected { url: redis.url() };
        limit.note_lost(&stale, Rate::per_second(5.0).unwrap());
        assert!(limit.is_connected());
        assert_eq!(limit.rounds_heard(), Some(0), "still hearing the others");
    }
}

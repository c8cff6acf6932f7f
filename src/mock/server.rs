//! The server: the accept loop, one thread per connection, the counters and the
//! arrival record, the request log, and a stop that wakes every sleeping request.

use super::config::MockConfig;
use super::conn;
use super::faults::Fault;
use super::gateway::Gateway;
use super::http::{self, Head};
use super::request_log::RequestLog;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::{Condvar, Mutex};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

/// Stack of a connection thread: parsing and JSON building need little, and a
/// thousand threads in flight then cost a thousand small stacks.
const CONNECTION_STACK: usize = 128 * 1024;
/// How long `stop` waits for connection threads to finish.
const STOP_GRACE: Duration = Duration::from_secs(1);
/// Arrivals kept for [`MockServer::arrivals`]; later ones are counted but not recorded,
/// so a long-running `restb mock` does not grow without bound.
pub const MAX_ARRIVALS: usize = 1_000_000;

/// A snapshot of the mock's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MockCounters {
    /// Requests read (including malformed ones and ones not yet answered).
    pub requests: u64,
    /// Answered 200 with a whole success body (with or without rate-limit headers):
    /// faults answered with status 200 count only under `faults`.
    pub ok: u64,
    /// Answered 429.
    pub rate_limited: u64,
    /// Answered another 4xx (401, 400, 404, 405, 411, 413, 431...).
    pub client_errors: u64,
    /// Read and not yet answered (sleeping their latency, mostly).
    pub in_flight: u64,
    /// The most requests ever in flight at once.
    pub max_in_flight: u64,
    /// Connections accepted.
    pub connections: u64,
    /// Requests answered (or closed unanswered) with an injected [`Fault`].
    pub faults: u64,
}

/// One request as the mock saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    /// When the whole request had arrived (the time the rate limit counted it at).
    pub at: SystemTime,
    /// The request path without its query (so without the client key); empty when
    /// the request line could not be read.
    pub path: String,
    /// The status answered; 0 when the request was dropped unanswered (the server
    /// stopped during its latency, or a [`Fault::Reset`] or [`Fault::Hang`]).
    pub status: u16,
    /// From arrival until the answer was ready to write (the latency, mostly), or
    /// until the connection was closed unanswered.
    pub answered_after: Duration,
    /// The fault injected into this request, if any.
    pub fault: Option<Fault>,
}

/// The running mock gateway. Stops on [`MockServer::stop`] or when dropped.
#[derive(Debug)]
pub struct MockServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Dropped to wake every latency sleep at once.
    stop_tx: Option<Sender<()>>,
    accept: Option<JoinHandle<()>>,
}

/// State shared by the accept thread and the connection threads.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) gateway: Gateway,
    /// The request log, if asked for.
    log: Option<RequestLog>,
    stopping: AtomicBool,
    /// Never sent on; disconnected when the server stops.
    stop_rx: Receiver<()>,
    stats: Mutex<Stats>,
    /// Connection threads alive (or about to be spawned).
    live: Mutex<usize>,
    live_changed: Condvar,
}

/// Counters and the arrival log, under one lock.
#[derive(Debug, Default)]
struct Stats {
    counters: MockCounters,
    arrivals: Vec<Arrival>,
}

impl MockServer {
    /// Start on an ephemeral port of 127.0.0.1.
    ///
    /// # Errors
    /// Binding fails, the accept thread cannot be spawned, the request log cannot
    /// be created, or the configuration is refused by [`MockConfig::validate`]
    /// (kind `InvalidInput`).
    pub fn start(config: MockConfig) -> io::Result<MockServer> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config)
    }

    /// Start on `addr` (port 0 picks a free port), for `restb mock --port`.
    ///
    /// # Errors
    /// As for [`MockServer::start`].
    pub fn start_on(addr: SocketAddr, config: MockConfig) -> io::Result<MockServer> {
        config
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let log = match &config.log {
            Some(path) => Some(RequestLog::create(path).map_err(|e| {
                io::Error::new(e.kind(), format!("mock log {}: {e}", path.display()))
            })?),
            None => None,
        };
        let listener = TcpListener::bind(addr)?;
        super::arrival::enable_stamps(&listener)?;
        let addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = crossbeam_channel::bounded(0);
        let shared = Arc::new(Shared {
            gateway: Gateway::new(&config),
            log,
            stopping: AtomicBool::new(false),
            stop_rx,
            stats: Mutex::new(Stats::default()),
            live: Mutex::new(0),
            live_changed: Condvar::new(),
        });
        let accept_shared = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name("restb-mock-accept".into())
            .spawn(move || accept_loop(&listener, &accept_shared))?;
        log::debug!("mock gateway listening on {addr}");
        Ok(MockServer {
            addr,
            shared,
            stop_tx: Some(stop_tx),
            accept: Some(accept),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`, to use as a client's base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> MockCounters {
        self.shared.stats.lock().counters
    }

    /// Every answered (or dropped) request so far, by arrival time; at most [`MAX_ARRIVALS`].
    pub fn arrivals(&self) -> Vec<Arrival> {
        let mut arrivals = self.shared.stats.lock().arrivals.clone();
        arrivals.sort_by_key(|a| a.at);
        arrivals
    }

    /// Stop: no new connections, idle connections closed, requests still sleeping
    /// their latency dropped unanswered. Connection threads look at the stop flag
    /// every 100 ms, so this typically returns within that; it waits a second at
    /// most, and a thread still stuck writing to a client that does not read ends
    /// on its own at its write timeout.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// The work of `stop` and `Drop`; idempotent.
    fn shutdown(&mut self) {
        let Some(accept) = self.accept.take() else {
            return;
        };
        self.shared.stopping.store(true, Ordering::SeqCst);
        drop(self.stop_tx.take());
        // The accept loop blocks in accept(): a connection of our own wakes it.
        match TcpStream::connect_timeout(&wake_addr(self.addr), Duration::from_millis(500)) {
            Ok(_) => {
                if accept.join().is_err() {
                    log::warn!("mock accept thread panicked");
                }
            }
            Err(e) => log::warn!("mock: cannot wake the accept thread ({e}); leaving it"),
        }
        let deadline = Instant::now() + STOP_GRACE;
        let mut live = self.shared.live.lock();
        while *live > 0 {
            if self
                .shared
                .live_changed
                .wait_until(&mut live, deadline)
                .timed_out()
            {
                log::debug!("mock: {} connection threads still busy at stop", *live);
                break;
            }
        }
        drop(live);
        if let Some(log) = &self.shared.log {
            log.flush();
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Where to connect to reach a listener bound to `addr` (an unspecified IP means loopback).
fn wake_addr(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, addr.port()))
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}

/// Accept connections, one thread each, until stopping.
fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping() {
            return;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                // Out of file descriptors or similar: back off instead of spinning.
                log::warn!("mock: accept failed: {e}");
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        shared.stats.lock().counters.connections += 1;
        let guard = LiveGuard::new(Arc::clone(shared));
        let spawned = thread::Builder::new()
            .name("restb-mock-conn".into())
            .stack_size(CONNECTION_STACK)
            .spawn(move || {
                conn::serve(stream, &guard.0);
                drop(guard);
            });
        if let Err(e) = spawned {
            // The closure, and with it the guard and the stream, is dropped: the
            // live count stays right and the client sees the connection close.
            log::warn!("mock: cannot spawn a connection thread: {e}");
        }
    }
}

/// Counts a connection thread as live from before its spawn until it ends.
struct LiveGuard(Arc<Shared>);

impl LiveGuard {
    fn new(shared: Arc<Shared>) -> Self {
        *shared.live.lock() += 1;
        LiveGuard(shared)
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        *self.0.live.lock() -= 1;
        self.0.live_changed.notify_all();
    }
}

impl Shared {
    /// Whether the server is stopping.
    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Sleep `delay`; `false` when woken early because the server is stopping.
    pub(crate) fn sleep(&self, delay: Duration) -> bool {
        if delay.is_zero() {
            return !self.stopping();
        }
        match self.stop_rx.recv_timeout(delay) {
            Err(RecvTimeoutError::Timeout) => !self.stopping(),
            // Nothing is ever sent: any other result means the sender was dropped.
            Ok(()) | Err(RecvTimeoutError::Disconnected) => false,
        }
    }

    /// A request has been read.
    pub(crate) fn begin(&self) {
        let mut stats = self.stats.lock();
        let c = &mut stats.counters;
        c.requests += 1;
        c.in_flight += 1;
        c.max_in_flight = c.max_in_flight.max(c.in_flight);
    }

    /// A request begun with [`Shared::begin`] was answered with `status`, or dropped
    /// (`None`); `head` is `None` when it could not be read; `fault` is the fault
    /// injected into it.
    pub(crate) fn end(
        &self,
        at: SystemTime,
        head: Option<&Head>,
        status: Option<u16>,
        answered_after: Duration,
        fault: Option<Fault>,
    ) {
        let path = head.map_or("", |h| h.path.as_str());
        if let Some(log) = &self.log {
            log.record(
                at,
                head.and_then(client_key).as_deref(),
                status.unwrap_or(0),
                path,
            );
        }
        let mut stats = self.stats.lock();
        let c = &mut stats.counters;
        c.in_flight -= 1;
        if fault.is_some() {
            c.faults += 1;
        }
        let whole_success = matches!(fault, None | Some(Fault::NoRateLimitHeaders));
        match status {
            Some(200) if whole_success => c.ok += 1,
            Some(429) => c.rate_limited += 1,
            Some(400..=499) => c.client_errors += 1,
            _ => {}
        }
        if stats.arrivals.len() < MAX_ARRIVALS {
            stats.arrivals.push(Arrival {
                at,
                path: path.chars().take(256).collect(),
                status: status.unwrap_or(0),
                answered_after,
                fault,
            });
        }
    }
}

/// The client key of a request, read as the gateway reads it (for the log's label only).
fn client_key(head: &Head) -> Option<String> {
    http::parse_form(head.query.as_bytes())
        .into_iter()
        .find(|(name, value)| name == "client_key" && !value.is_empty())
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_rps_is_refused() {
        let err = MockServer::start(MockConfig {
            rps: Some(0),
            ..MockConfig::default()
        })
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let err = MockServer::start(MockConfig {
            max_in_flight: Some(0),
            ..MockConfig::default()
        })
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn default_config_has_no_faults_and_no_concurrency_limit() {
        let config = MockConfig::default();
        assert!(config.faults.is_empty());
        assert_eq!(config.max_in_flight, None);
        assert_eq!(config.hang, super::super::DEFAULT_HANG);
        assert_eq!(
            MockConfig::tutorial().faults,
            super::super::FaultMix::none()
        );
    }

    #[test]
    fn wake_address_of_an_unspecified_bind_is_loopback() {
        let any: SocketAddr = "0.0.0.0:80".parse().unwrap();
        assert_eq!(wake_addr(any), "127.0.0.1:80".parse().unwrap());
        let any6: SocketAddr = "[::]:80".parse().unwrap();
        assert_eq!(wake_addr(any6), "[::1]:80".parse().unwrap());
        let local: SocketAddr = "127.0.0.2:80".parse().unwrap();
        assert_eq!(wake_addr(local), local);
    }

    #[test]
    fn start_and_stop_without_clients() {
        let server = MockServer::start(MockConfig::default()).unwrap();
        assert!(server.base_url().starts_with("http://127.0.0.1:"));
        let t = Instant::now();
        server.stop();
        assert!(t.elapsed() < Duration::from_millis(500));
    }
}

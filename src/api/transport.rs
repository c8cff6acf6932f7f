//! A TCP transport for ureq that spends two system calls a request on the
//! socket's upkeep instead of eight.
//!
//! ureq's own TCP transport probes a pooled connection twice per request
//! (when it goes back to the pool and when it is taken out), each probe three
//! calls (non-blocking on, `recv`, non-blocking off), and it sets the
//! socket's read and write timeouts before every request, because with one
//! deadline per request the time left differs every time: 8 of the 10 calls
//! a request made on loopback. This one probes with a single non-blocking
//! `recv(MSG_PEEK)`, and arms a socket timeout only when the one set is
//! longer than the time left (or far shorter): it is at most the time left,
//! and a wait it cuts short before the deadline is simply waited again, so
//! the deadline is kept exactly as before.
//!
//! Only direct connections take this path; through a proxy (from the
//! `ALL_PROXY`/`HTTPS_PROXY` variables ureq reads) the agent uses ureq's
//! default connector, unchanged. TLS is ureq's rustls layer on top, as in
//! the default chain.

use socket2::SockRef;
use std::io::{self, ErrorKind, Read, Write};
use std::mem::MaybeUninit;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, DefaultConnector, LazyBuffers, NextTimeout,
    RustlsConnector, ShutdownHandle, Transport,
};
use ureq::Timeout;

/// Direct connections through [`LeanTransport`], TLS through rustls, and
/// proxied ones through ureq's default chain.
#[derive(Debug, Default)]
pub(super) struct LeanConnector {
    tls: RustlsConnector,
    proxied: DefaultConnector,
}

impl Connector<()> for LeanConnector {
    type Out = Box<dyn Transport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<()>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        if details.config.proxy().is_some() {
            return self.proxied.connect(details, chained);
        }
        let stream = Arc::new(connect(details)?);
        (details.register_shutdown)(Arc::downgrade(&stream) as Weak<dyn ShutdownHandle>)?;
        let config = details.config;
        let transport = LeanTransport {
            stream,
            buffers: LazyBuffers::new(config.input_buffer_size(), config.output_buffer_size()),
            read_timeout: None,
            write_timeout: None,
            fresh: true,
        };
        let wrapped = self.tls.connect(details, Some(transport))?;
        Ok(wrapped.map(|transport| Box::new(transport) as Box<dyn Transport>))
    }
}

/// Connects to the first address that answers, sharing the connect budget
/// over the addresses as ureq does: halving from the first, at least 10 ms.
fn connect(details: &ConnectionDetails) -> Result<TcpStream, ureq::Error> {
    let deadline = Deadline::of(details.timeout);
    let count = details.addrs.len();
    let total_weight = 2.0 * (1.0 - 0.5_f64.powi(count as i32));
    let mut weight = 1.0_f64;
    let mut last_error = None;
    for addr in details.addrs.iter() {
        let left = deadline.left();
        if left == Some(Duration::ZERO) {
            return Err(ureq::Error::Timeout(details.timeout.reason));
        }
        let budget = left.map(|left| {
            left.mul_f64(weight / total_weight)
                .max(Duration::from_millis(10))
        });
        weight /= 2.0;
        match connect_one(*addr, budget, details.config.no_delay()) {
            Ok(stream) => return Ok(stream),
            // This address is refused, unreachable or slow: the next may not be.
            Err(error) if next_may_do(&error) => last_error = Some(error),
            Err(error) => return Err(error.into()),
        }
    }
    Err(match last_error {
        Some(error) if is_timeout(&error) => ureq::Error::Timeout(Timeout::Connect),
        Some(error) => error.into(),
        None => io::Error::new(ErrorKind::ConnectionRefused, "Connection refused").into(),
    })
}

fn connect_one(
    addr: SocketAddr,
    budget: Option<Duration>,
    no_delay: bool,
) -> io::Result<TcpStream> {
    let stream = match budget {
        Some(budget) => TcpStream::connect_timeout(&addr, budget)?,
        None => TcpStream::connect(addr)?,
    };
    if no_delay {
        stream.set_nodelay(true)?;
    }
    Ok(stream)
}

fn next_may_do(error: &io::Error) -> bool {
    is_timeout(error)
        || matches!(
            error.kind(),
            ErrorKind::ConnectionRefused
                | ErrorKind::HostUnreachable
                | ErrorKind::NetworkUnreachable
                | ErrorKind::NetworkDown
                | ErrorKind::AddrNotAvailable
        )
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(error.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock)
}

/// When a step of the request must be over, if ever.
#[derive(Clone, Copy)]
struct Deadline(Option<Instant>);

impl Deadline {
    fn of(timeout: NextTimeout) -> Deadline {
        let after = timeout.after;
        Deadline(if after.is_not_happening() {
            None
        } else {
            Instant::now().checked_add(*after)
        })
    }

    /// Time left: `None` without a deadline, zero once it passed.
    fn left(self) -> Option<Duration> {
        self.0
            .map(|at| at.saturating_duration_since(Instant::now()))
    }
}

/// A plain TCP connection, its buffers, and the timeouts its socket holds.
#[derive(Debug)]
struct LeanTransport {
    /// Shared (weakly) with the agent, which shuts it down to cut a
    /// blocked read short.
    stream: Arc<TcpStream>,
    buffers: LazyBuffers,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    /// Nothing was written on this connection yet.
    fresh: bool,
}

/// The socket timeout to arm for `left`, or `None` when `set` will do: no
/// longer than the time left (the deadline stays exact), and not so much
/// shorter that waits wake up for nothing. A quarter below the time left,
/// so the next requests (each with a fresh deadline) find it fits.
fn timeout_to_arm(set: Option<Duration>, left: Option<Duration>) -> Option<Option<Duration>> {
    match (set, left) {
        (None, None) => None,
        (Some(set), Some(left)) if set <= left && set >= left / 2 => None,
        (_, None) => Some(None),
        (_, Some(left)) => Some(Some(
            (left - left / 4).max(Duration::from_millis(1)).min(left),
        )),
    }
}

impl LeanTransport {
    /// Runs `io` (a read or a write) until it is done or the deadline has
    /// passed, re-arming the socket's read or write timeout as time runs out.
    fn until_deadline(
        &mut self,
        (deadline, reason): (Deadline, Timeout),
        write: bool,
        mut io: impl FnMut(&TcpStream, &mut LazyBuffers) -> io::Result<usize>,
    ) -> Result<usize, ureq::Error> {
        loop {
            let left = deadline.left();
            if left == Some(Duration::ZERO) {
                return Err(ureq::Error::Timeout(reason));
            }
            let set = if write {
                &mut self.write_timeout
            } else {
                &mut self.read_timeout
            };
            if let Some(arm) = timeout_to_arm(*set, left) {
                let applied = if write {
                    self.stream.set_write_timeout(arm)
                } else {
                    self.stream.set_read_timeout(arm)
                };
                applied?;
                *set = arm;
            }
            match io(&self.stream, &mut self.buffers) {
                // The socket timeout fired before the deadline, or a signal
                // came: wait again for what is left.
                Err(error) if is_timeout(&error) || error.kind() == ErrorKind::Interrupted => {
                    if left.is_none() && error.kind() == ErrorKind::Interrupted {
                        // No deadline: an interruption is the caller's to see.
                        return Err(error.into());
                    }
                }
                Err(error) => return Err(error.into()),
                Ok(amount) => return Ok(amount),
            }
        }
    }
}

impl Transport for LeanTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let timeout = timeout.for_write();
        let deadline = (Deadline::of(timeout), timeout.reason);
        let mut sent = 0;
        while sent < amount {
            let written = self.until_deadline(deadline, true, |mut stream, buffers| {
                stream.write(&buffers.output()[sent..amount])
            })?;
            if written == 0 {
                return Err(io::Error::from(ErrorKind::WriteZero).into());
            }
            sent += written;
        }
        // A request (or its part) is on its way: the limiter that cleared
        // it keeps the next start a gap after now.
        crate::limiter::request_sent(std::mem::take(&mut self.fresh));
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let timeout = timeout.for_read();
        let deadline = (Deadline::of(timeout), timeout.reason);
        let amount = self.until_deadline(deadline, false, |mut stream, buffers| {
            stream.read(buffers.input_append_buf())
        })?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    /// Open when nothing waits to be read and the peer has not closed: any
    /// byte here was never asked for, and the connection is not reused.
    fn is_open(&mut self) -> bool {
        let mut byte = [MaybeUninit::<u8>::uninit()];
        let peeked = SockRef::from(&*self.stream)
            .recv_with_flags(&mut byte, libc::MSG_PEEK | libc::MSG_DONTWAIT);
        matches!(peeked, Err(error) if error.kind() == ErrorKind::WouldBlock)
    }
}

#[cfg(test)]
mod tests {
    use super::{timeout_to_arm, LazyBuffers, LeanConnector, LeanTransport, Transport};
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    fn connected(listener: &TcpListener) -> (LeanTransport, TcpStream) {
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let transport = LeanTransport {
            stream: Arc::new(client),
            buffers: LazyBuffers::new(64, 64),
            read_timeout: None,
            write_timeout: None,
            fresh: true,
        };
        (transport, server)
    }

    /// Probes until the probe says closed, for at most 5 s.
    fn closes(transport: &mut LeanTransport) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while transport.is_open() {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    /// The pool's probe: a connection is reused only while nothing waits on
    /// it and its peer has not closed it.
    #[test]
    fn a_connection_with_unasked_bytes_or_closed_is_not_open() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (mut transport, mut server) = connected(&listener);
        assert!(transport.is_open(), "idle connection");
        assert!(transport.is_open(), "the probe consumes nothing");
        server.write_all(b"x").unwrap();
        assert!(closes(&mut transport), "a byte never asked for");

        let (mut transport, server) = connected(&listener);
        assert!(transport.is_open(), "idle connection");
        drop(server);
        assert!(closes(&mut transport), "closed by the peer");
    }

    /// A server that answers its first request `delay` after reading it.
    fn answering_after(delay: Duration) -> (String, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 2 {
                line.clear();
            }
            std::thread::sleep(delay);
            let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
            // The client may have given up already.
            let _ = reader.get_mut().write_all(reply);
            std::thread::sleep(Duration::from_millis(200));
        });
        (url, server)
    }

    fn agent(deadline: Duration) -> ureq::Agent {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(deadline))
            .build();
        ureq::Agent::with_parts(
            config,
            LeanConnector::default(),
            super::super::resolver::CallerThreadResolver::default(),
        )
    }

    /// The socket timeout is armed shorter than the deadline: when it fires
    /// first, the read goes on waiting until the deadline, no sooner.
    #[test]
    fn a_reply_after_most_of_the_deadline_still_arrives() {
        // Armed at 3/4 of 2 s = 1.5 s; the reply comes at 1.7 s.
        let (url, server) = answering_after(ms(1_700));
        let mut reply = agent(ms(2_000))
            .get(&url)
            .call()
            .expect("a reply within 2 s");
        assert_eq!(reply.body_mut().read_to_string().unwrap(), "ok");
        server.join().unwrap();
    }

    #[test]
    fn no_reply_by_the_deadline_is_a_timeout() {
        let (url, server) = answering_after(ms(3_000));
        let started = Instant::now();
        let error = agent(ms(1_000)).get(&url).call().unwrap_err();
        assert!(matches!(error, ureq::Error::Timeout(_)), "{error}");
        assert!(started.elapsed() >= ms(1_000), "not before the deadline");
        server.join().unwrap();
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_socket_timeout_is_never_longer_than_the_time_left() {
        // The first request arms three quarters of its time.
        assert_eq!(
            timeout_to_arm(None, Some(ms(30_000))),
            Some(Some(ms(22_500)))
        );
        // The next requests find it fits: no system call.
        assert_eq!(timeout_to_arm(Some(ms(22_500)), Some(ms(29_999))), None);
        assert_eq!(timeout_to_arm(Some(ms(22_500)), Some(ms(22_500))), None);
        // Less time left than armed: shortened.
        assert_eq!(
            timeout_to_arm(Some(ms(22_500)), Some(ms(100))),
            Some(Some(ms(75)))
        );
        // Far more time left than armed: lengthened, not woken for nothing.
        assert_eq!(
            timeout_to_arm(Some(ms(75)), Some(ms(30_000))),
            Some(Some(ms(22_500)))
        );
        // A last millisecond is armed whole.
        assert_eq!(timeout_to_arm(Some(ms(75)), Some(ms(1))), Some(Some(ms(1))));
        assert_eq!(
            timeout_to_arm(None, Some(Duration::from_micros(10))),
            Some(Some(Duration::from_micros(10)))
        );
        // No deadline: no timeout.
        assert_eq!(timeout_to_arm(None, None), None);
        assert_eq!(timeout_to_arm(Some(ms(5)), None), Some(None));
    }
}

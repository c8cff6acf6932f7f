//! One connection: read requests, carry out the gateway's [`Action`]s, write answers,
//! until the client closes, asks to close, goes idle too long, or the server stops.
//!
//! Every blocking read has a short timeout so the thread sees the stop flag within
//! [`POLL`]; latency sleeps wait on the stop channel, which wakes them all at once.

use super::arrival;
use super::gateway::{self, Action, Decision};
use super::http::{self, Head, HttpError, Response, MAX_HEAD};
use super::Shared;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant, SystemTime};

/// How often a blocked read wakes to look at the stop flag.
pub(crate) const POLL: Duration = Duration::from_millis(100);
/// A connection that sends nothing for this long is closed (Kong's keep-alive default is 60 s).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A client that takes this long to take a response is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 16 * 1024;
/// Buffers grown past this (by a large body) are shrunk back between requests.
const KEEP_CAPACITY: usize = 256 * 1024;
/// How long, and how many bytes, a closing connection discards from a client still sending.
const LINGER: (Duration, usize) = (Duration::from_millis(200), 1024 * 1024);

/// The result of reading one request.
enum Next {
    /// A whole request, and when its first bytes arrived.
    Request(Head, Vec<u8>, SystemTime),
    /// The client is gone, the connection idled out, or the server is stopping.
    Closed,
    /// A request that cannot be served; answer it and close.
    Failed(HttpError),
}

/// A client socket and the bytes read from it but not yet used.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// How far `buf` has been searched for the end of a head.
    scanned: usize,
    /// When the first bytes now in `buf` arrived.
    buf_arrived: Option<SystemTime>,
}

/// What to do with the connection after a request.
enum After {
    /// Read the next request.
    KeepAlive,
    /// Close gracefully (see [`Conn::close`]).
    Close,
    /// Drop the connection as it is.
    Drop,
}

/// Serve one accepted connection until it ends.
pub(crate) fn serve(stream: TcpStream, shared: &Shared) {
    if let Err(e) = configure(&stream) {
        log::debug!("mock: cannot configure connection: {e}");
        return;
    }
    let mut conn = Conn {
        stream,
        buf: Vec::new(),
        scanned: 0,
        buf_arrived: None,
    };
    loop {
        let after = match conn.read_request(shared) {
            Next::Request(head, body, arrived) => conn.answer(shared, &head, &body, arrived),
            Next::Closed => After::Drop,
            Next::Failed(err) => {
                let arrived = SystemTime::now();
                shared.begin();
                let response = gateway::http_error(err);
                shared.end(arrived, None, Some(response.status), Duration::ZERO, None);
                match conn.write(&response, false) {
                    Ok(()) => After::Close,
                    Err(_) => After::Drop,
                }
            }
        };
        match after {
            After::KeepAlive => {}
            After::Close => return conn.close(shared),
            After::Drop => return,
        }
    }
}

/// Timeouts and no Nagle delay (responses go out in one write, and keep-alive clients wait for them).
fn configure(stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    arrival::enable_stamps(stream)?;
    stream.set_read_timeout(Some(POLL))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))
}

impl Conn {
    /// Carry out the gateway's decision on one request and write the answer.
    fn answer(&mut self, shared: &Shared, head: &Head, body: &[u8], arrived: SystemTime) -> After {
        let started = Instant::now();
        shared.begin();
        let Decision {
            action,
            fault,
            slot,
        } = shared.gateway.handle(head, body, arrived);
        let (delay, response, truncated) = match action {
            Action::Respond(response) => (None, response, false),
            Action::Delayed(delay, response) => (Some(delay), response, false),
            Action::Truncated(delay, response) => (Some(delay), response, true),
            Action::Close(delay) => {
                // A reset or a hang: no answer at all, whether or not the server stops.
                let _ = shared.sleep(delay);
                drop(slot);
                shared.end(arrived, Some(head), None, started.elapsed(), fault);
                let _ = self.stream.shutdown(Shutdown::Both);
                return After::Drop;
            }
        };
        if delay.is_some_and(|delay| !shared.sleep(delay)) {
            // Stopping: the request is dropped unanswered.
            shared.end(arrived, Some(head), None, started.elapsed(), fault);
            return After::Drop;
        }
        let keep_alive = head.keep_alive() && !shared.stopping();
        // Counted (and the in-flight place freed) before the write, so a client that
        // has its answer sees it counted and may send the next request at once.
        drop(slot);
        let status = Some(response.status);
        shared.end(arrived, Some(head), status, started.elapsed(), fault);
        let written = if truncated {
            // Announce the whole body, send half, close: the client sees a short read.
            self.write_bytes(&response.to_truncated_bytes(!keep_alive))
        } else {
            self.write(&response, keep_alive)
        };
        match (written, keep_alive && !truncated) {
            (Err(_), _) => After::Drop,
            (Ok(()), true) => After::KeepAlive,
            (Ok(()), false) => After::Close,
        }
    }

    /// Read the next request: head, then exactly Content-Length body bytes.
    fn read_request(&mut self, shared: &Shared) -> Next {
        let head_end = loop {
            if let Some(end) = http::find_head_end(&self.buf, self.scanned) {
                break end;
            }
            if self.buf.len() > MAX_HEAD {
                return Next::Failed(HttpError::HeadTooLarge);
            }
            self.scanned = self.buf.len();
            match self.read_more(shared, READ_CHUNK) {
                Ok(true) => {}
                Ok(false) | Err(_) => return Next::Closed,
            }
        };
        if head_end > MAX_HEAD {
            return Next::Failed(HttpError::HeadTooLarge);
        }
        let arrived = self.buf_arrived.unwrap_or_else(SystemTime::now);
        let rest = self.buf.split_off(head_end);
        let head_bytes = std::mem::replace(&mut self.buf, rest);
        self.scanned = 0;
        let head = match http::parse_head(&head_bytes) {
            Ok(head) => head,
            Err(err) => return Next::Failed(err),
        };
        let length = match head.content_length() {
            Ok(length) => length,
            Err(err) => return Next::Failed(err),
        };
        if self.buf.len() < length && head.expects_continue() {
            let interim = format!("HTTP/1.1 100 {}\r\n\r\n", http::reason(100));
            if self.stream.write_all(interim.as_bytes()).is_err() {
                return Next::Closed;
            }
        }
        while self.buf.len() < length {
            let want = length - self.buf.len();
            match self.read_more(shared, want.min(4 * READ_CHUNK)) {
                Ok(true) => {}
                Ok(false) | Err(_) => return Next::Closed,
            }
        }
        let rest = self.buf.split_off(length);
        let body = std::mem::replace(&mut self.buf, rest);
        if self.buf.is_empty() {
            self.buf_arrived = None;
        }
        if self.buf.capacity() > KEEP_CAPACITY && self.buf.len() < KEEP_CAPACITY {
            self.buf.shrink_to(READ_CHUNK);
        }
        Next::Request(head, body, arrived)
    }

    /// Append up to `want` bytes to `buf`. `Ok(false)` is end of stream; `Err` is a
    /// socket error, the idle timeout, or the server stopping.
    fn read_more(&mut self, shared: &Shared, want: usize) -> io::Result<bool> {
        let idle_until = Instant::now() + IDLE_TIMEOUT;
        loop {
            if shared.stopping() {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let old = self.buf.len();
            self.buf.resize(old + want, 0);
            let read = arrival::read_arrival(&self.stream, &mut self.buf[old..]);
            self.buf
                .truncate(old + read.as_ref().map_or(0, |(n, _)| *n));
            match read {
                Ok((n, at)) => {
                    if old == 0 {
                        self.buf_arrived = Some(at);
                    }
                    return Ok(n > 0);
                }
                Err(e) if is_timeout(&e) => {
                    if Instant::now() >= idle_until {
                        return Err(io::ErrorKind::TimedOut.into());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Write a whole response.
    fn write(&mut self, response: &Response, keep_alive: bool) -> io::Result<()> {
        self.write_bytes(&response.to_bytes(!keep_alive))
    }

    /// Write raw bytes (a broken answer).
    fn write_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Close after the last response. Unless the server is stopping, first discard
    /// what the client may still be sending (bounded by [`LINGER`]): closing with
    /// unread bytes sends a reset that can destroy the response before it is read.
    fn close(mut self, shared: &Shared) {
        if shared.stopping() || self.stream.shutdown(Shutdown::Write).is_err() {
            return;
        }
        let (time, bytes) = LINGER;
        let until = Instant::now() + time;
        let mut scratch = [0u8; 4096];
        let mut discarded = 0;
        while Instant::now() < until && discarded < bytes {
            match self.stream.read(&mut scratch) {
                Ok(0) => return,
                Ok(n) => discarded += n,
                Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }
}

/// Whether a read error is the socket's read timeout (the kind differs by platform).
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

//! A raw HTTP/1.1 client for the mock gateway's own tests: it writes the
//! request bytes a test gives and reads back byte by byte what the server
//! sends, broken answers included (short bodies, closes, silence).

use serde_json::Value;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long [`Client::get`] and friends wait for a whole reply.
const REPLY_WAIT: Duration = Duration::from_secs(10);

/// What came back for one request.
#[derive(Debug)]
pub enum Outcome {
    /// A whole response.
    Reply(Reply),
    /// A head, then fewer body bytes than announced, then the end of the stream.
    Short { reply: Reply, announced: usize },
    /// The connection ended (end of stream or reset) before a single byte.
    Closed,
    /// Nothing (or not everything) within the wait.
    TimedOut { got: usize },
}

impl Outcome {
    /// The whole reply this must be.
    pub fn reply(self) -> Reply {
        match self {
            Outcome::Reply(reply) => reply,
            other => panic!("expected a whole reply, got {other:?}"),
        }
    }
}

/// A response as read off the wire (`body` is what arrived of it).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The first header called `name`, in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body, which must be UTF-8.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("a UTF-8 body")
    }

    /// The body, which must be JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }

    /// Whether any header tells of a rate limit (`*RateLimit*`, `Retry-After`).
    pub fn has_rate_limit_headers(&self) -> bool {
        self.headers.iter().any(|(n, _)| {
            let n = n.to_ascii_lowercase();
            n.contains("ratelimit") || n == "retry-after"
        })
    }
}

/// One keep-alive connection.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    /// A connection to `addr`, which must accept it.
    pub fn connect(addr: SocketAddr) -> Client {
        Client::try_connect(addr).expect("connect to the mock")
    }

    /// A connection to `addr`, if it accepts one.
    pub fn try_connect(addr: SocketAddr) -> std::io::Result<Client> {
        let stream = TcpStream::connect(addr)?;
        Ok(Client {
            stream,
            buf: Vec::new(),
        })
    }

    /// Writes `raw` as it is.
    pub fn send(&mut self, raw: &[u8]) {
        self.stream.write_all(raw).expect("send request");
    }

    /// A GET of `target`, and its whole reply.
    pub fn get(&mut self, target: &str) -> Reply {
        self.try_get(target, REPLY_WAIT).reply()
    }

    /// A GET of `target`, and its outcome within `wait`.
    pub fn try_get(&mut self, target: &str, wait: Duration) -> Outcome {
        self.send(format!("GET {target} HTTP/1.1\r\nHost: mock\r\n\r\n").as_bytes());
        self.read(wait)
    }

    /// A form POST of `body` to `target`, and its whole reply.
    pub fn post_form(&mut self, target: &str, body: &str) -> Reply {
        self.send(
            format!(
                "POST {target} HTTP/1.1\r\nHost: mock\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        self.read_reply()
    }

    /// The next whole reply.
    pub fn read_reply(&mut self) -> Reply {
        self.read(REPLY_WAIT).reply()
    }

    /// The next line the server sends, `\r\n` included (an interim head).
    pub fn read_line(&mut self) -> String {
        let deadline = Instant::now() + REPLY_WAIT;
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..end + 2).collect();
                return String::from_utf8(line).expect("an ASCII line");
            }
            match self.fill(deadline) {
                Some(true) => {}
                ended => panic!("no whole line ({ended:?}): {:?}", self.buf),
            }
        }
    }

    /// Whether the server ended the connection (end of stream or reset)
    /// within `wait`, sending nothing more.
    pub fn closed_within(&mut self, wait: Duration) -> bool {
        matches!(self.read(wait), Outcome::Closed)
    }

    /// Reads one response (or its absence) within `wait`.
    pub fn read(&mut self, wait: Duration) -> Outcome {
        let deadline = Instant::now() + wait;
        loop {
            if let Some((reply, announced, used)) = parse(&self.buf) {
                if reply.body.len() == announced {
                    self.buf.drain(..used);
                    return Outcome::Reply(reply);
                }
            }
            match self.fill(deadline) {
                None => {
                    return Outcome::TimedOut {
                        got: self.buf.len(),
                    }
                }
                Some(true) => continue,
                Some(false) => {}
            }
            return match parse(&self.buf) {
                None if self.buf.is_empty() => Outcome::Closed,
                None => panic!("a partial head: {:?}", String::from_utf8_lossy(&self.buf)),
                Some((reply, announced, _)) => Outcome::Short { reply, announced },
            };
        }
    }

    /// Reads what there is before `deadline` into the buffer: `Some(true)`
    /// while the stream is open, `Some(false)` once it ended (end of stream
    /// or reset), `None` at the deadline.
    fn fill(&mut self, deadline: Instant) -> Option<bool> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 4096];
            return match self.stream.read(&mut chunk) {
                Ok(0) => Some(false),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    Some(true)
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    continue
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => Some(true),
                Err(_) => Some(false),
            };
        }
    }
}

/// A response at the start of `buf`: the reply (with what is there of its body), the
/// announced Content-Length, and the bytes it takes; `None` while the head is incomplete.
fn parse(buf: &[u8]) -> Option<(Reply, usize, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..end]).expect("an ASCII head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').expect("header has a colon");
            (n.to_string(), v.trim().to_string())
        })
        .collect();
    let mut reply = Reply {
        status,
        headers,
        body: Vec::new(),
    };
    let announced: usize = reply
        .header("content-length")
        .expect("Content-Length is always sent")
        .parse()
        .unwrap();
    let body_end = buf.len().min(end + announced);
    reply.body = buf[end..body_end].to_vec();
    Some((reply, announced, body_end))
}

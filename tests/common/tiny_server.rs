//! A tiny HTTP/1.1 server on a loopback port (port 0), for tests that need
//! answers the mock gateway does not give, or to see exactly what arrived: a
//! gateway that echoes the request line, one that answers 429 with
//! `Retry-After` on cue, one that keeps each request's body. Each request
//! (head, body and arrival instant) goes to a handler that writes whatever
//! bytes it likes to the connection.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Largest request head read.
const MAX_HEAD: usize = 64 * 1024;

/// The head of one request.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET /vision/v2/predict?client_key=... HTTP/1.1`
    pub line: String,
    /// The request target as sent: `/vision/v2/predict?client_key=...`
    pub target: String,
    /// The body, whole (by `Content-Length`).
    pub body: Vec<u8>,
    /// When its head had arrived.
    pub arrived: Instant,
}

/// Writes the answer to `request`; returns whether the connection may serve
/// another request (keep-alive).
pub type Handler = dyn Fn(&Request, &mut TcpStream) -> bool + Send + Sync;

/// The server; stops (and stops accepting) when dropped.
pub struct TinyServer {
    port: u16,
    stopping: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl TinyServer {
    /// Listens on `127.0.0.1:0`; every connection gets its own thread.
    pub fn start(
        handler: impl Fn(&Request, &mut TcpStream) -> bool + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stopping = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let acceptor = {
            let stopping = stopping.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let handler = handler.clone();
                    std::thread::spawn(move || serve(stream, &*handler));
                }
            })
        };
        TinyServer {
            port,
            stopping,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for TinyServer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the acceptor so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Serves one connection: reads heads (and bodies by Content-Length) until the
/// client closes it, the handler says so, or it stays idle for 10 s.
fn serve(mut stream: TcpStream, handler: &Handler) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buffer = Vec::new();
    loop {
        let Some(end) = read_head(&mut stream, &mut buffer) else {
            return;
        };
        let arrived = Instant::now();
        let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
        let length = content_length(&head);
        buffer.drain(..end + 4);
        let mut chunk = vec![0u8; 8192];
        while buffer.len() < length {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buffer.drain(..length).collect();
        let line = head.lines().next().unwrap_or("").to_string();
        let target = line.split(' ').nth(1).unwrap_or("").to_string();
        let request = Request {
            line,
            target,
            body,
            arrived,
        };
        if !handler(&request, &mut stream) {
            return;
        }
    }
}

/// Reads until `buffer` holds a whole head; its length (before the blank line).
fn read_head(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<usize> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(end);
        }
        if buffer.len() > MAX_HEAD {
            return None;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

fn content_length(head: &str) -> usize {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0)
}

/// Writes a whole answer with `status`, `content_type` and `body`; keeps the
/// connection open.
pub fn answer(stream: &mut TcpStream, status: u16, content_type: &str, body: &str) -> bool {
    answer_with(stream, status, content_type, &[], body)
}

/// [`answer`] with extra header lines (`("Retry-After", "2")`).
pub fn answer_with(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> bool {
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).is_ok() && stream.write_all(body.as_bytes()).is_ok()
}

/// The API's answer to a `re_logo` request that found nothing.
pub fn answer_no_logo(stream: &mut TcpStream) -> bool {
    let body = r#"{"error":"false","response":{"solutions":{"re_logo":{"detections":[]}}}}"#;
    answer(stream, 200, "application/json", body)
}

/// Kong's 429, with `Retry-After: retry_after`.
pub fn answer_kong_429(stream: &mut TcpStream, retry_after: &str) -> bool {
    answer_with(
        stream,
        429,
        "application/json",
        &[("Retry-After", retry_after)],
        r#"{"message":"API rate limit exceeded"}"#,
    )
}

/// Percent-decodes `text` (`%XX` in either case; `+` left as it is).
pub fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

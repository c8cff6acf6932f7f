//! Just enough HTTP/1.1 for the mock: request heads, Content-Length bodies,
//! form/query decoding and whole responses.
//!
//! Parsing is pure (bytes in, [`Head`] or [`HttpError`] out) so malformed input is
//! unit-tested without sockets; the socket loop lives in `conn.rs`.

use std::fmt::Write as _;

/// Largest request line plus headers accepted; over it the answer is 431.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted; over it the answer is 413.
pub(crate) const MAX_BODY: usize = 64 * 1024 * 1024;

/// A request the connection cannot go on from: answered with `status()`, then closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HttpError {
    /// Unparsable request line, header or Content-Length.
    BadRequest,
    /// A body framed by Transfer-Encoding: only Content-Length is supported.
    LengthRequired,
    /// Content-Length over [`MAX_BODY`].
    PayloadTooLarge,
    /// Request line and headers over [`MAX_HEAD`].
    HeadTooLarge,
    /// Not HTTP/1.0 or HTTP/1.1.
    VersionNotSupported,
}

impl HttpError {
    /// The status code that reports this error.
    pub(crate) fn status(self) -> u16 {
        match self {
            HttpError::BadRequest => 400,
            HttpError::LengthRequired => 411,
            HttpError::PayloadTooLarge => 413,
            HttpError::HeadTooLarge => 431,
            HttpError::VersionNotSupported => 505,
        }
    }
}

/// The HTTP version of a request; decides the keep-alive default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// HTTP/1.0: close unless `Connection: keep-alive`.
    Http10,
    /// HTTP/1.1: keep alive unless `Connection: close`.
    Http11,
}

/// A parsed request line and header block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    /// Method, as sent (methods are case-sensitive).
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Raw query string after `?`, not decoded.
    pub query: String,
    /// Protocol version.
    pub version: Version,
    /// Header fields in order, names as sent, values trimmed.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first header named `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the `Connection` headers hold `token` (case-insensitive).
    fn connection_has(&self, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Whether the client lets the connection stay open after this request.
    pub(crate) fn keep_alive(&self) -> bool {
        match self.version {
            Version::Http11 => !self.connection_has("close"),
            Version::Http10 => self.connection_has("keep-alive"),
        }
    }

    /// Whether the client waits for `100 Continue` before sending its body.
    pub(crate) fn expects_continue(&self) -> bool {
        self.version == Version::Http11
            && self
                .header("expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    }

    /// The body length the headers announce (0 when absent).
    ///
    /// # Errors
    /// Transfer-Encoding is refused with 411 (the body's end could not be found);
    /// a malformed or conflicting Content-Length is a 400; over [`MAX_BODY`] a 413.
    pub(crate) fn content_length(&self) -> Result<usize, HttpError> {
        if self.header("transfer-encoding").is_some() {
            return Err(HttpError::LengthRequired);
        }
        let mut length = None;
        for (_, value) in self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        {
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HttpError::BadRequest);
            }
            // All digits: parsing fails only on overflow, which is "too large".
            let n: usize = value.parse().map_err(|_| HttpError::PayloadTooLarge)?;
            if length.is_some_and(|l| l != n) {
                return Err(HttpError::BadRequest);
            }
            length = Some(n);
        }
        match length.unwrap_or(0) {
            n if n > MAX_BODY => Err(HttpError::PayloadTooLarge),
            n => Ok(n),
        }
    }
}

/// Where the header block in `buf` ends (index just past the blank line), if it is complete.
///
/// Accepts CRLF and bare LF line ends. `from` is where the previous search stopped,
/// so a head arriving in many small reads is not rescanned from the start.
pub(crate) fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(3);
    let mut i = start;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some(i + 2);
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

/// Whether `s` is a non-empty RFC 9110 token (method names, header names).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Parse a complete head (request line and headers, up to and including the blank line).
///
/// # Errors
/// [`HttpError::BadRequest`] for anything malformed, [`HttpError::VersionNotSupported`]
/// for a version other than 1.0 / 1.1.
pub(crate) fn parse_head(bytes: &[u8]) -> Result<Head, HttpError> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    // RFC 9112 2.2: ignore at least one empty line before the request line.
    let line = lines
        .by_ref()
        .find(|l| !l.is_empty())
        .ok_or(HttpError::BadRequest)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::BadRequest);
    };
    if !is_token(method) || target.is_empty() {
        return Err(HttpError::BadRequest);
    }
    let version = match version {
        "HTTP/1.1" => Version::Http11,
        "HTTP/1.0" => Version::Http10,
        v if v.starts_with("HTTP/") => return Err(HttpError::VersionNotSupported),
        _ => return Err(HttpError::BadRequest),
    };
    let (path, query) = split_target(target)?;

    let mut headers = Vec::new();
    for line in lines.take_while(|l| !l.is_empty()) {
        // Obsolete line folding and "name :" are both rejected, as RFC 9112 asks.
        let (name, value) = line.split_once(':').ok_or(HttpError::BadRequest)?;
        if !is_token(name) {
            return Err(HttpError::BadRequest);
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    Ok(Head {
        method: method.to_string(),
        path,
        query,
        version,
        headers,
    })
}

/// Split a request target into path and raw query; absolute-form targets
/// (`http://host/path?q`, sent to proxies) lose their scheme and authority.
fn split_target(target: &str) -> Result<(String, String), HttpError> {
    let (origin, absolute) = match target.split_once("://") {
        Some((scheme, rest)) if is_token(scheme) => {
            (rest.find(['/', '?']).map_or("", |j| &rest[j..]), true)
        }
        _ => (target, false),
    };
    let (path, query) = origin.split_once('?').unwrap_or((origin, ""));
    let path = match path {
        "" if absolute => "/",
        p if p.starts_with('/') => p,
        _ => return Err(HttpError::BadRequest),
    };
    Ok((path.to_string(), query.to_string()))
}

/// Decode `application/x-www-form-urlencoded` pairs (also used for query strings):
/// `+` is a space, `%XX` a byte; a malformed escape is kept literally, as browsers do.
pub(crate) fn parse_form(input: &[u8]) -> Vec<(String, String)> {
    input
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            (form_decode(name), form_decode(value))
        })
        .collect()
}

/// Percent-decode one form component, `+` meaning space.
pub(crate) fn form_decode(input: &[u8]) -> String {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => match (input.get(i + 1), input.get(i + 2)) {
                (Some(&h), Some(&l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                    out.push(hex_value(h) << 4 | hex_value(l));
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of an ASCII hex digit (callers check `is_ascii_hexdigit` first).
fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

/// A whole response, written in one `write_all` so keep-alive clients never see half of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    /// Status code.
    pub status: u16,
    /// Extra header fields; Content-Length, Content-Type, Date and Connection are added on write.
    pub headers: Vec<(&'static str, String)>,
    /// The Content-Type: `application/json` but for injected faults.
    pub content_type: &'static str,
    /// The body, JSON but for injected faults.
    pub body: String,
}

impl Response {
    /// A response with a JSON body and no extra headers.
    pub(crate) fn json(status: u16, body: impl Into<String>) -> Self {
        Self::with_type(status, "application/json", body)
    }

    /// A response with another Content-Type (an HTML error page, plain text).
    pub(crate) fn with_type(
        status: u16,
        content_type: &'static str,
        body: impl Into<String>,
    ) -> Self {
        Response {
            status,
            headers: Vec::new(),
            content_type,
            body: body.into(),
        }
    }

    /// Add a header field.
    pub(crate) fn with_header(mut self, name: &'static str, value: impl ToString) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }

    /// The response as bytes on the wire; `close` adds `Connection: close`.
    pub(crate) fn to_bytes(&self, close: bool) -> Vec<u8> {
        let mut head = String::with_capacity(256);
        // Writing to a String cannot fail.
        let _ = write!(
            head,
            "HTTP/1.1 {} {}\r\nDate: {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            self.status,
            reason(self.status),
            httpdate::fmt_http_date(std::time::SystemTime::now()),
            self.content_type,
            self.body.len()
        );
        for (name, value) in &self.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        head.push_str(if close {
            "Connection: close\r\n\r\n"
        } else {
            "Connection: keep-alive\r\n\r\n"
        });
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(self.body.as_bytes());
        bytes
    }

    /// The bytes of a broken answer: the whole head (its Content-Length announcing
    /// the whole body) but only the first half of the body.
    pub(crate) fn to_truncated_bytes(&self, close: bool) -> Vec<u8> {
        let mut bytes = self.to_bytes(close);
        bytes.truncate(bytes.len() - self.body.len() + self.body.len() / 2);
        bytes
    }
}

/// The reason phrase for the status codes the mock sends.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests;

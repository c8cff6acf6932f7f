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
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Head, HttpError> {
        parse_head(text.as_bytes())
    }

    #[test]
    fn parses_a_get_with_query() {
        let h = head("GET /vision/v2/predict?client_key=k&model_id=re_logo HTTP/1.1\r\nHost: x\r\nX-A:  b \r\n\r\n")
            .unwrap();
        assert_eq!(h.method, "GET");
        assert_eq!(h.path, "/vision/v2/predict");
        assert_eq!(h.query, "client_key=k&model_id=re_logo");
        assert_eq!(h.version, Version::Http11);
        assert_eq!(h.header("x-a"), Some("b"));
        assert_eq!(h.header("HOST"), Some("x"));
        assert!(h.keep_alive());
        assert_eq!(h.content_length(), Ok(0));
    }

    #[test]
    fn accepts_bare_lf_and_leading_blank_line() {
        let h = head("\r\nPOST / HTTP/1.0\nContent-Length: 5\n\n").unwrap();
        assert_eq!(h.version, Version::Http10);
        assert!(!h.keep_alive());
        assert_eq!(h.content_length(), Ok(5));
    }

    #[test]
    fn absolute_form_target_keeps_path_and_query() {
        let h = head("GET http://127.0.0.1:9/vision/v2/predict?a=1 HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(h.path, "/vision/v2/predict");
        assert_eq!(h.query, "a=1");
        let h = head("GET http://host?a=1 HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!((h.path.as_str(), h.query.as_str()), ("/", "a=1"));
    }

    #[test]
    fn connection_header_decides_keep_alive() {
        assert!(
            !head("GET / HTTP/1.1\r\nConnection: Keep-Alive, close\r\n\r\n")
                .unwrap()
                .keep_alive()
        );
        assert!(head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap()
            .keep_alive());
    }

    #[test]
    fn malformed_request_lines_are_400() {
        for bad in [
            "\r\n\r\n",
            "GET\r\n\r\n",
            "GET /\r\n\r\n",
            "GET / HTTP/1.1 extra\r\n\r\n",
            "GET  / HTTP/1.1\r\n\r\n",
            "G(T / HTTP/1.1\r\n\r\n",
            "GET noslash HTTP/1.1\r\n\r\n",
            "GET / FTP/1.1\r\n\r\n",
        ] {
            assert_eq!(head(bad), Err(HttpError::BadRequest), "{bad:?}");
        }
        assert_eq!(
            head("PRI * HTTP/2.0\r\n\r\n"),
            Err(HttpError::VersionNotSupported)
        );
    }

    #[test]
    fn malformed_headers_are_400() {
        for bad in [
            "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
            "GET / HTTP/1.1\r\nName : v\r\n\r\n",
            "GET / HTTP/1.1\r\nA: b\r\n  folded\r\n\r\n",
            "GET / HTTP/1.1\r\n: empty\r\n\r\n",
        ] {
            assert_eq!(head(bad), Err(HttpError::BadRequest), "{bad:?}");
        }
    }

    #[test]
    fn content_length_rules() {
        let cl = |h: &str| {
            head(&format!("POST / HTTP/1.1\r\n{h}\r\n\r\n"))
                .unwrap()
                .content_length()
        };
        assert_eq!(cl("Content-Length: 12"), Ok(12));
        assert_eq!(cl("Content-Length: 3\r\ncontent-length: 3"), Ok(3));
        assert_eq!(
            cl("Content-Length: 3\r\nContent-Length: 4"),
            Err(HttpError::BadRequest)
        );
        assert_eq!(cl("Content-Length: -1"), Err(HttpError::BadRequest));
        assert_eq!(cl("Content-Length: 1e3"), Err(HttpError::BadRequest));
        assert_eq!(cl("Content-Length:"), Err(HttpError::BadRequest));
        assert_eq!(
            cl("Content-Length: 99999999999999999999999999"),
            Err(HttpError::PayloadTooLarge)
        );
        assert_eq!(
            cl(&format!("Content-Length: {}", MAX_BODY + 1)),
            Err(HttpError::PayloadTooLarge)
        );
        assert_eq!(
            cl("Transfer-Encoding: chunked"),
            Err(HttpError::LengthRequired)
        );
    }

    #[test]
    fn expect_continue_only_on_1_1() {
        assert!(head("POST / HTTP/1.1\r\nExpect: 100-Continue\r\n\r\n")
            .unwrap()
            .expects_continue());
        assert!(!head("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n")
            .unwrap()
            .expects_continue());
    }

    #[test]
    fn finds_the_end_of_a_head() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nrest", 0), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\nrest", 0), Some(16));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n", 0), None);
        // Resuming the scan just before the previous end still sees a split terminator.
        let buf = b"GET / HTTP/1.1\r\n\r\n";
        assert_eq!(find_head_end(buf, 16), Some(18));
    }

    #[test]
    fn form_decoding() {
        assert_eq!(
            parse_form(b"a=1+2&b=%41%2b&c&=x&&d=%zz%4"),
            vec![
                ("a".into(), "1 2".into()),
                ("b".into(), "A+".into()),
                ("c".into(), "".into()),
                ("".into(), "x".into()),
                ("d".into(), "%zz%4".into()),
            ]
        );
        assert_eq!(form_decode(b"%e2%9c%93"), "\u{2713}");
    }

    #[test]
    fn responses_carry_length_and_connection() {
        let bytes = Response::json(429, "{}")
            .with_header("Retry-After", 1)
            .to_bytes(true);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("HTTP/1.1 429 Too Many Requests\r\n"));
        assert!(text.contains("\r\nContent-Length: 2\r\n"));
        assert!(text.contains("\r\nRetry-After: 1\r\n"));
        assert!(text.ends_with("\r\nConnection: close\r\n\r\n{}"));
        assert!(text.contains("\r\nContent-Type: application/json\r\n"));
    }

    #[test]
    fn truncated_bytes_keep_the_head_and_half_the_body() {
        let r = Response::with_type(200, "text/plain", "0123456789");
        let whole = r.to_bytes(false);
        let cut = r.to_truncated_bytes(false);
        assert_eq!(cut.len(), whole.len() - 5);
        let text = String::from_utf8(cut).unwrap();
        assert!(text.contains("\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n"));
        assert!(text.ends_with("\r\n\r\n01234"));
    }
}

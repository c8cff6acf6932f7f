//! The blocking HTTP client: one `ureq::Agent` (one connection pool) shared
//! by every worker.

use super::headers::gateway_hint;
use super::key::ClientKey;
use super::quota::Quota;
use super::region::Region;
use super::reply::{classify, parse_retry_after, shorten, Verdict};
use super::resolver::CallerThreadResolver;
#[cfg(unix)]
use super::transport::LeanConnector as Connector;
use super::url::UrlPrefixes;
use super::ImageSource;
use crate::limiter::GatewayHint;
use base64::Engine as _;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use ureq::http::{HeaderMap, Uri};
#[cfg(not(unix))]
use ureq::unversioned::transport::DefaultConnector as Connector;

/// Settings of a [`Client`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Where the API is. Defaults to the US region.
    pub base_url: String,
    /// Deadline for each request (each try of a job has its own), from its
    /// start to the last byte of the reply: connecting, sending and reading
    /// the reply are cut short by it. The host name lookup is not (see
    /// `resolver`): it is bounded by the system resolver's own timeouts, its
    /// time counts against the deadline, and one that outlasts the deadline
    /// makes the request overrun it (ureq still gives the connection attempt
    /// at least a second). An IP address needs no lookup. Defaults to 30 s.
    pub timeout: Duration,
    /// Idle connections kept for reuse; set it to the thread count.
    /// Defaults to 64.
    pub max_idle_connections: usize,
    /// Permit plain `http://` to a host that is not loopback. Defaults to
    /// false: the key would travel in clear.
    pub allow_http: bool,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            base_url: Region::Us.base_url().to_string(),
            timeout: Duration::from_secs(30),
            max_idle_connections: 64,
            allow_http: false,
        }
    }
}

/// A bad client setting, found before any request is sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The base URL does not parse, lacks a scheme or host, or has a query
    /// or user info. It is quoted as `scheme://host[:port]/path` only: the
    /// query or user info left out may hold the client key.
    #[error("invalid base URL '{0}': expected http(s)://HOST[:PORT] with no query or user info")]
    BadBaseUrl(String),
    /// The base URL holds the API's own path (`/vision/...`), which restb
    /// adds: every request would go to `/vision/v2/vision/v2/predict`.
    #[error("base URL '{0}' ends in the API's path: give the host only (as https://api-us.restb.ai, or a gateway's prefix without /vision/...); restb adds /vision/v2/predict itself")]
    ApiPath(String),
    /// Plain HTTP to a host that is not loopback, without `allow_http`.
    #[error("refusing plain http:// to {0}: the client key would travel in clear (pass --allow-http to permit it)")]
    PlainHttp(String),
}

/// One reply, classified.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The HTTP status, when a reply came at all.
    pub http_status: Option<u16>,
    /// What the reply means.
    pub verdict: Verdict,
    /// What its rate-limit headers said (empty without a reply).
    pub hint: GatewayHint,
    /// What they said of the hour, day and month (empty without a reply).
    pub quota: Quota,
    /// The wait the reply asked for (`Retry-After`), whatever its status: a
    /// 503's is the service's own word on when to try again.
    pub retry_after: Option<Duration>,
}

/// A Restb.ai Vision API client. Cheap to clone: clones share one set of
/// connection pools.
#[derive(Clone)]
pub struct Client {
    /// ureq guards each agent's pool of idle connections with one mutex,
    /// taken twice a request: with 8 threads on one agent, its futex
    /// wake-ups were the client's largest cost after the sockets. Each
    /// thread sticks to one of these agents instead.
    agents: Arc<[ureq::Agent]>,
    base_url: String,
    key: ClientKey,
    /// The request URLs' fixed starts, key included.
    urls: UrlPrefixes,
    timeout: Duration,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Agents (connection pools) threads are spread over; beyond the thread
/// count they cost nothing but an empty pool each.
const AGENTS: usize = 16;

/// Per-connection buffer each way.
const IO_BUFFER: usize = 16 * 1024;
/// Largest reply head accepted (status line and headers).
const MAX_HEADER: usize = 8 * 1024;
/// Most a reply body may hold; the API's answers are a few kilobytes.
const MAX_BODY: u64 = 16 * 1024 * 1024;
/// Most of a body's buffer taken on the word of its `Content-Length`.
const MAX_PRESIZE: u64 = 1024 * 1024;

impl Client {
    /// A client for `key` with `config`.
    ///
    /// # Errors
    /// [`ConfigError`] when the base URL is malformed, or plain HTTP to a
    /// remote host without `allow_http`.
    pub fn new(key: ClientKey, config: &ClientConfig) -> Result<Client, ConfigError> {
        let base_url = validate_base_url(&config.base_url, config.allow_http)
            .map_err(|error| redact_config_error(&key, error))?;
        // One deadline for the request (connect, send, headers, body),
        // checked before every read and write, so a server that dribbles its
        // answer cannot hold a request past it. ureq would cut the name lookup
        // short with a thread per request; our resolver looks up on the
        // calling thread instead, unbounded by the deadline (see `resolver`).
        let agent_config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // The API does not redirect, and a followed redirect would carry
            // `?client_key=` wherever it points, plain `http://` included,
            // past the check of the base URL: a 3xx comes back as it is.
            .max_redirects(0)
            .timeout_global(Some(config.timeout))
            .max_idle_connections(config.max_idle_connections.max(1))
            .max_idle_connections_per_host(config.max_idle_connections.max(1))
            .user_agent(concat!("restb/", env!("CARGO_PKG_VERSION")))
            // ureq's 128 KiB per connection and direction, zeroed, would be
            // most of our memory with a thousand connections; the API's
            // replies are a few KiB and bodies stream through.
            .input_buffer_size(IO_BUFFER)
            .output_buffer_size(IO_BUFFER)
            .max_response_header_size(MAX_HEADER);
        // ureq takes a proxy from the environment (ALL_PROXY, HTTPS_PROXY,
        // HTTP_PROXY) for every target: a loopback one would go through it,
        // over plain http the key with it, on the word that loopback
        // traffic stays on the machine. As Go's and Python's clients do,
        // loopback is never proxied.
        let agent_config = if targets_loopback(&base_url) {
            agent_config.proxy(None)
        } else {
            agent_config
        }
        .build();
        let agents = (0..AGENTS)
            .map(|_| {
                ureq::Agent::with_parts(
                    agent_config.clone(),
                    Connector::default(),
                    CallerThreadResolver::default(),
                )
            })
            .collect();
        Ok(Client {
            agents,
            urls: UrlPrefixes::new(&base_url, key.expose()),
            base_url,
            key,
            timeout: config.timeout,
        })
    }

    /// The agent of the calling thread: threads take agents in turn, in
    /// the order they first call.
    fn agent(&self) -> &ureq::Agent {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static TURN: usize = NEXT.fetch_add(1, Ordering::Relaxed);
        }
        &self.agents[TURN.with(|turn| *turn) % self.agents.len()]
    }

    /// The validated base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Asks for `models` on `image`: `/vision/v2/predict` for one model,
    /// `/vision/v2/multipredict` for several (one request of the allotment).
    /// Never fails: network errors and local file errors come back as a
    /// [`Verdict`] too. Nothing in the reply quotes the client key: a server
    /// that echoes the request's URL in its answer gets it back as `***`.
    /// restb's own log records never hold it; ureq's trace records quote
    /// the URL whole: a tool logging at trace wraps its logger in
    /// [`KeySafeLog`](super::KeySafeLog).
    pub fn predict(&self, image: &ImageSource, models: &[String]) -> Reply {
        let reply = self.send(image, models);
        Reply {
            verdict: self.redact_verdict(reply.verdict),
            ..reply
        }
    }

    /// `text` with the client key hidden, as in every message the client
    /// gives: for texts that did not come through it (a panic's message).
    pub fn redact<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        self.key.redact(text)
    }

    /// The texts of `verdict` with the key redacted (messages then cut
    /// short), answers included: all of a JSON body that can reach an
    /// output, decoded (a body that is not JSON was redacted before it was
    /// quoted), and what came another way (transport errors).
    fn redact_verdict(&self, verdict: Verdict) -> Verdict {
        let redact = |text: String| {
            shorten(match self.key.redact(&text) {
                std::borrow::Cow::Borrowed(_) => text,
                std::borrow::Cow::Owned(clean) => clean,
            })
        };
        match verdict {
            Verdict::Permanent(text) => Verdict::Permanent(redact(text)),
            Verdict::Auth(text) => Verdict::Auth(redact(text)),
            Verdict::Fatal(text) => Verdict::Fatal(redact(text)),
            Verdict::Transient(text) => Verdict::Transient(redact(text)),
            Verdict::Ok(mut answers) => {
                redact_json(&self.key, &mut answers);
                Verdict::Ok(answers)
            }
            rate_limited => rate_limited,
        }
    }

    fn send(&self, image: &ImageSource, models: &[String]) -> Reply {
        let sent = match image {
            ImageSource::Url(image_url) => self
                .agent()
                .get(self.urls.for_image_url(models, image_url))
                .call(),
            ImageSource::File(path) => {
                let bytes = match std::fs::read(path) {
                    Ok(bytes) => bytes,
                    Err(error) => {
                        return Reply {
                            http_status: None,
                            verdict: Verdict::Permanent(format!(
                                "cannot read {}: {error}",
                                path.display()
                            )),
                            hint: GatewayHint::default(),
                            quota: Quota::default(),
                            retry_after: None,
                        }
                    }
                };
                let encoded = base64::engine::general_purpose::URL_SAFE.encode(bytes);
                self.agent()
                    .post(self.urls.endpoint(models))
                    .send_form([("model_id", &models.join(",")), ("image_base64", &encoded)])
            }
        };
        match sent {
            Ok(response) => self.read_reply(response),
            Err(error) => Reply {
                http_status: None,
                verdict: self.transport_failure(&error),
                hint: GatewayHint::default(),
                quota: Quota::default(),
                retry_after: None,
            },
        }
    }

    /// Reads and classifies a reply that came.
    fn read_reply(&self, mut response: ureq::http::Response<ureq::Body>) -> Reply {
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers(), status);
        let hint = gateway_hint(response.headers(), SystemTime::now());
        let quota = Quota::from_headers(response.headers());
        // Read every body to the end, errors included, or the connection is
        // not reused.
        let body = read_body(response.body_mut());
        let verdict = match body {
            // A redirect is the endpoint's, never the image's: every request
            // of the run would draw it, so the run stops (as for a refused
            // certificate) instead of failing the whole batch one by one.
            Ok(_) if (300..400).contains(&status) => Verdict::Fatal(format!(
                "HTTP {status}: the API answered with a redirect, which restb does not follow (it would carry the client key); check --base-url"
            )),
            // A JSON body is redacted once parsed, its texts and answers
            // (`redact_verdict`); any other body before a snippet of it is
            // quoted.
            Ok(body) => classify(status, retry_after, &body, |body| {
                self.key.redact_bytes(body)
            }),
            Err(error) => self.transport_failure(&error),
        };
        Reply {
            http_status: Some(status),
            verdict,
            hint,
            quota,
            retry_after,
        }
    }

    fn transport_failure(&self, error: &ureq::Error) -> Verdict {
        let message = self.key.redact(&error.to_string()).into_owned();
        match error {
            ureq::Error::BadUri(_) => Verdict::Permanent(message),
            ureq::Error::Timeout(_) => Verdict::Transient(format!(
                "timed out: no whole reply within {:?} ({message})",
                self.timeout
            )),
            _ if is_certificate_refusal(error) => Verdict::Fatal(format!(
                "TLS certificate of {} refused: {message}",
                self.base_url
            )),
            _ => Verdict::Transient(message),
        }
    }
}

/// The whole body, at most [`MAX_BODY`]: ureq's `read_to_vec`, with the
/// buffer sized from `Content-Length` up front rather than grown from 32
/// bytes through a read per doubling.
fn read_body(body: &mut ureq::Body) -> Result<Vec<u8>, ureq::Error> {
    use std::io::Read;
    let announced = body.content_length().unwrap_or(0).min(MAX_PRESIZE);
    // A body of exactly the announced size is read to its end with one
    // byte to spare, so the final read (which finds the end) needs no growth.
    let mut buffer = Vec::with_capacity(announced as usize + 1);
    let mut reader = body.with_config().limit(MAX_BODY).reader();
    reader.read_to_end(&mut buffer)?;
    Ok(buffer)
}

/// Whether rustls refused the server's certificate; ureq wraps that error
/// in an I/O error.
fn is_certificate_refusal(error: &ureq::Error) -> bool {
    let rustls_error = match error {
        ureq::Error::Rustls(inner) => Some(inner),
        ureq::Error::Io(io) => io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()),
        _ => None,
    };
    matches!(
        rustls_error,
        Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)
    )
}

/// How long a reply asks us to wait: `Retry-After`; on a 429 also
/// `RateLimit-Reset`. On any other status that header only tells when the
/// rate-limit window ends (Kong sends it on every reply it passes on, a
/// 502 included), which says nothing of when to try again: taken, a 5xx
/// under a per-hour limit would hold its retry for up to an hour.
fn retry_after(headers: &HeaderMap, status: u16) -> Option<Duration> {
    let now = SystemTime::now();
    let names: &[&str] = if status == 429 {
        &["retry-after", "ratelimit-reset"]
    } else {
        &["retry-after"]
    };
    names.iter().find_map(|name| {
        headers
            .get(*name)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, now))
    })
}

/// Checks a base URL once, at start-up (ureq would quote a bad one, key and
/// all, in its error), and returns it without a trailing slash.
pub fn validate_base_url(text: &str, allow_http: bool) -> Result<String, ConfigError> {
    let trimmed = text.trim().trim_end_matches('/');
    let bad = || ConfigError::BadBaseUrl(quotable(trimmed));
    let uri = Uri::from_str(trimmed).map_err(|_| bad())?;
    let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(bad)?;
    let has_user_info = uri.authority().is_some_and(|a| a.as_str().contains('@'));
    if uri.query().is_some() || has_user_info || trimmed.contains('#') {
        return Err(bad());
    }
    if uri.path().split('/').any(|segment| segment == "vision") {
        return Err(ConfigError::ApiPath(quotable(trimmed)));
    }
    match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("https") => {}
        Some("http") if allow_http || is_loopback(host) => {}
        Some("http") => return Err(ConfigError::PlainHttp(host.to_string())),
        _ => return Err(bad()),
    }
    Ok(trimmed.to_string())
}

/// Hides the key in every string of `value`, and in its field names.
fn redact_json(key: &ClientKey, value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(text) => {
            if let std::borrow::Cow::Owned(clean) = key.redact(text) {
                *text = clean;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| redact_json(key, item)),
        Value::Object(fields) => {
            if fields
                .keys()
                .any(|name| matches!(key.redact(name), std::borrow::Cow::Owned(_)))
            {
                *fields = std::mem::take(fields)
                    .into_iter()
                    .map(|(name, value)| (key.redact(&name).into_owned(), value))
                    .collect();
            }
            fields
                .values_mut()
                .for_each(|field| redact_json(key, field));
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// `error` with the key, wherever in the text it was, shown as `***`.
fn redact_config_error(key: &ClientKey, error: ConfigError) -> ConfigError {
    let redact = |text: String| key.redact(&text).into_owned();
    match error {
        ConfigError::BadBaseUrl(text) => ConfigError::BadBaseUrl(redact(text)),
        ConfigError::PlainHttp(host) => ConfigError::PlainHttp(redact(host)),
        ConfigError::ApiPath(text) => ConfigError::ApiPath(redact(text)),
    }
}

/// `text` as an error may quote it: `scheme://host[:port]/path`, without
/// the query, fragment or user info, where a client key may have been put.
fn quotable(text: &str) -> String {
    let end = text.find(['?', '#']).unwrap_or(text.len());
    let text = &text[..end];
    let (scheme, rest) = match text.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, text),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let rest = match rest[..authority_end].rfind('@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    match scheme {
        Some(scheme) => format!("{scheme}://{rest}"),
        None => rest.to_string(),
    }
}

/// Whether `base_url` (checked by [`validate_base_url`]) names a loopback host.
fn targets_loopback(base_url: &str) -> bool {
    Uri::from_str(base_url)
        .ok()
        .and_then(|uri| uri.host().map(is_loopback))
        .unwrap_or(false)
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_url_with_the_apis_path_is_refused() {
        for url in [
            "https://api-us.restb.ai/vision/v2",
            "https://api-us.restb.ai/vision/v2/predict",
            "http://127.0.0.1:8080/vision",
        ] {
            let error = validate_base_url(url, false).unwrap_err();
            assert!(matches!(error, ConfigError::ApiPath(_)), "{url}: {error}");
            assert!(error.to_string().contains("host only"), "{error}");
        }
        assert_eq!(
            validate_base_url("https://gw.example.com/restb/", false).unwrap(),
            "https://gw.example.com/restb",
            "a gateway's own prefix stays allowed"
        );
    }

    #[test]
    fn base_urls_are_checked_up_front() {
        assert_eq!(
            validate_base_url("https://api-eu.restb.ai/", false).unwrap(),
            "https://api-eu.restb.ai"
        );
        assert!(validate_base_url("http://127.0.0.1:8080", false).is_ok());
        assert!(validate_base_url("http://localhost:1", false).is_ok());
        assert!(validate_base_url("http://[::1]:1", false).is_ok());
        assert_eq!(
            validate_base_url("http://api.example.com", false),
            Err(ConfigError::PlainHttp("api.example.com".into()))
        );
        assert!(validate_base_url("http://api.example.com", true).is_ok());
        for bad in [
            "api-us.restb.ai",
            "ftp://x",
            "https://",
            "",
            "https://x?client_key=1",
        ] {
            assert!(validate_base_url(bad, false).is_err(), "{bad}");
        }
    }

    /// Regression: a bad base URL was quoted whole in the error, client key
    /// (in its query or user info) included.
    #[test]
    fn bad_base_url_error_quotes_no_query_or_user_info() {
        for (bad, quoted) in [
            (
                "https://api-us.restb.ai/vision/v2/predict?client_key=SECRETKEY123",
                "https://api-us.restb.ai/vision/v2/predict",
            ),
            (
                "https://SECRETKEY123@api-us.restb.ai",
                "https://api-us.restb.ai",
            ),
            ("https://u:SECRETKEY123@h/p#SECRETKEY123", "https://h/p"),
            ("ftp://x?client_key=SECRETKEY123", "ftp://x"),
            ("nonsense?SECRETKEY123", "nonsense"),
        ] {
            let error = validate_base_url(bad, false).unwrap_err();
            assert_eq!(error, ConfigError::BadBaseUrl(quoted.into()), "{bad}");
        }
        let config = ClientConfig {
            base_url: "https://h/SECRETKEY123?client_key=SECRETKEY123".into(),
            ..ClientConfig::default()
        };
        let key = ClientKey::new("SECRETKEY123").unwrap();
        let error = Client::new(key, &config).unwrap_err().to_string();
        assert!(!error.contains("SECRETKEY123"), "{error}");
        assert!(error.contains("https://h/"), "{error}");
    }

    #[test]
    fn regions_parse() {
        assert_eq!("EU".parse::<Region>(), Ok(Region::Eu));
        assert!("asia".parse::<Region>().is_err());
        assert_eq!(Region::default().base_url(), "https://api-us.restb.ai");
    }
}

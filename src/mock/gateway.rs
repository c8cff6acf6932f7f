//! What the gateway and the API behind it answer to one request, decided without I/O:
//! route, key check, concurrency limit, rate limit, fault injection, validation,
//! then a (delayed) success.
//!
//! # Faults
//! Every request that passes the rate limit draws a per-request `fastrand::Rng`
//! seeded from `MockConfig::seed` and the request's sequence number; a [`Fault`] is
//! drawn from it (when the mix is not empty) right after the correlation id, so the
//! same seed and request order give the same faults. The fault is mapped onto an
//! [`Action`] that the connection loop carries out: a replacement answer, a
//! truncated one, or a connection closed without an answer.

use super::answers::{self, ImageRef};
use super::faults::{Fault, FaultMix};
use super::http::{self, Head, HttpError, Response};
use super::window::{FixedWindow, Verdict};
use super::{HeaderStyle, MockConfig};
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use parking_lot::Mutex;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// The single-model endpoint.
pub(crate) const PREDICT: &str = "/vision/v2/predict";
/// The several-models endpoint.
pub(crate) const MULTIPREDICT: &str = "/vision/v2/multipredict";
/// Kong's 429 body.
pub(crate) const RATE_LIMITED_BODY: &str = r#"{"message":"API rate limit exceeded"}"#;
/// The API's 500 body ([`Fault::Status500`]).
pub(crate) const INTERNAL_ERROR_BODY: &str =
    r#"{"error":"true","error_id":"500","message":"internal server error"}"#;
/// A gateway's 503 body ([`Fault::Status503`]).
pub(crate) const UNAVAILABLE_BODY: &str = r#"{"message":"service unavailable"}"#;
/// nginx's 502 page ([`Fault::Html502`]).
pub(crate) const BAD_GATEWAY_PAGE: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
/// A body that is not JSON ([`Fault::NotJson`]).
pub(crate) const NOT_JSON_BODY: &str = "upstream said: OK";
/// A permanent error answered with status 200 ([`Fault::Error200`]).
pub(crate) const ERROR_200_BODY: &str =
    r#"{"error":"true","error_id":"003","message":"image could not be processed"}"#;
/// The legacy rate-limit error in a 200 body ([`Fault::Legacy005`]).
pub(crate) const LEGACY_005_BODY: &str =
    r#"{"error":"true","error_id":"005","message":"API rate limit exceeded"}"#;
/// Longest piece of user input echoed in an error message.
const ECHO_MAX: usize = 100;

/// Base64 decoding that accepts missing or present padding and stray trailing bits.
const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
/// Standard alphabet (`+/`).
const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
/// URL-safe alphabet (`-_`), what the SDK sends.
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// What the connection loop does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Answer at once.
    Respond(Response),
    /// Wait (the upstream's latency), then answer.
    Delayed(Duration, Response),
    /// Wait, then send the head and half the body of the response, then close.
    Truncated(Duration, Response),
    /// Wait (unless the server stops first), then close without answering.
    Close(Duration),
}

/// The gateway's decision on one request.
#[derive(Debug)]
pub(crate) struct Decision<'g> {
    /// What to do.
    pub action: Action,
    /// The injected fault, if any.
    pub fault: Option<Fault>,
    /// The request's place under `max_in_flight`; to be dropped once it is answered.
    pub slot: Option<Slot<'g>>,
}

impl Decision<'_> {
    /// A decision with no fault and no slot.
    fn plain(action: Action) -> Self {
        Decision {
            action,
            fault: None,
            slot: None,
        }
    }
}

/// One request counted in its key's in-flight total; uncounted when dropped.
#[derive(Debug)]
pub(crate) struct Slot<'g> {
    limiter: &'g Mutex<HashMap<String, u32>>,
    key: String,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut counts = self.limiter.lock();
        if let Some(n) = counts.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// The two endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    /// Exactly one model.
    Predict,
    /// A comma-separated list of models.
    Multipredict,
}

/// The decision maker shared by all connections.
#[derive(Debug)]
pub(crate) struct Gateway {
    /// Accepted keys; `None` accepts any non-empty key.
    valid_keys: Option<HashSet<String>>,
    /// The rate limit; `None` is unlimited.
    window: Option<Mutex<FixedWindow>>,
    /// Which rate-limit headers to send.
    style: HeaderStyle,
    /// Upstream latency.
    latency: Duration,
    /// +- jitter on the latency.
    jitter: Duration,
    /// Seed of the per-request rngs.
    seed: u64,
    /// Requests past the rate limit so far: the per-request rng's stream number.
    seq: AtomicU64,
    /// Most requests of one key in flight at once; `None` is unlimited.
    max_in_flight: Option<NonZeroU32>,
    /// Requests in flight per key (only kept with `max_in_flight`).
    in_flight: Mutex<HashMap<String, u32>>,
    /// How likely each injected fault is.
    faults: FaultMix,
    /// How long a [`Fault::Hang`] holds the connection after the latency.
    hang: Duration,
}

impl Gateway {
    /// A gateway for `config`; `rps` must already be known non-zero.
    pub(crate) fn new(config: &MockConfig, rps: Option<NonZeroU32>) -> Self {
        Gateway {
            valid_keys: config
                .valid_keys
                .as_ref()
                .map(|keys| keys.iter().cloned().collect()),
            window: rps.map(|limit| Mutex::new(FixedWindow::new(limit))),
            style: config.header_style,
            latency: config.latency,
            jitter: config.jitter,
            seed: config.seed,
            seq: AtomicU64::new(0),
            max_in_flight: config.max_in_flight.and_then(NonZeroU32::new),
            in_flight: Mutex::new(HashMap::new()),
            faults: config.faults,
            hang: config.hang,
        }
    }

    /// Decide the answer to a request that arrived at `now`.
    pub(crate) fn handle(&self, head: &Head, body: &[u8], now: SystemTime) -> Decision<'_> {
        let endpoint = match route(head) {
            Ok(endpoint) => endpoint,
            Err(response) => return Decision::plain(Action::Respond(response)),
        };
        let mut params = http::parse_form(head.query.as_bytes());
        let (rate, slot) = match self.authorize(&params).and_then(|key| self.admit(key, now)) {
            Ok(admitted) => admitted,
            Err(response) => return Decision::plain(Action::Respond(response)),
        };

        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let mut rng = fastrand::Rng::with_seed(self.seed ^ seq.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let correlation_id = answers::correlation_id(&mut rng);
        // An empty mix draws nothing, so without faults the rest of the rng is unchanged.
        let fault = self.faults.draw(&mut rng);
        let decided = |action| Decision {
            action,
            fault,
            slot,
        };
        // Faults that replace the upstream's answer: it never got to look at the request.
        let replaced = match fault {
            Some(Fault::Status500) => Some(Response::json(500, INTERNAL_ERROR_BODY)),
            Some(Fault::Status503) => Some(Response::json(503, UNAVAILABLE_BODY)),
            Some(Fault::NotJson) => Some(Response::with_type(200, "text/plain", NOT_JSON_BODY)),
            Some(Fault::Error200) => Some(Response::json(200, ERROR_200_BODY)),
            Some(Fault::Legacy005) => Some(Response::json(200, LEGACY_005_BODY)),
            _ => None,
        };
        if let Some(response) = replaced {
            let response = self.with_rate(rate, response);
            return decided(Action::Delayed(self.delay(&mut rng), response));
        }
        match fault {
            // From a load balancer in front of the gateway: no rate-limit headers.
            Some(Fault::Html502) => {
                let response = Response::with_type(502, "text/html", BAD_GATEWAY_PAGE)
                    .with_header("Server", "nginx");
                return decided(Action::Delayed(self.delay(&mut rng), response));
            }
            Some(Fault::Reset) => return decided(Action::Close(self.delay(&mut rng))),
            Some(Fault::Hang) => {
                let delay = self.delay(&mut rng).saturating_add(self.hang);
                return decided(Action::Close(delay));
            }
            _ => {}
        }
        let rate = if fault == Some(Fault::NoRateLimitHeaders) {
            None
        } else {
            rate
        };

        if accepts_form(head) {
            params.extend(http::parse_form(body));
        }
        let (delay, response) = match validate(endpoint, &params) {
            Ok((models, image)) => {
                let delay = self.delay(&mut rng);
                let solutions = answers::solutions(image.hash(), &models);
                let body = answers::success_body(&correlation_id, now + delay, solutions);
                (Some(delay), Response::json(200, body))
            }
            Err((error_id, message)) => {
                let body = json!({
                    "error": "true",
                    "error_id": error_id,
                    "message": message,
                    "correlation_id": correlation_id,
                });
                // The API rejects it at once: no latency.
                (None, Response::json(400, body.to_string()))
            }
        };
        let response = self.with_rate(rate, response);
        // A truncated answer breaks whatever the real answer was (a 400 too).
        decided(match (fault, delay) {
            (Some(Fault::Truncated), delay) => {
                Action::Truncated(delay.unwrap_or_default(), response)
            }
            (_, Some(delay)) => Action::Delayed(delay, response),
            (_, None) => Action::Respond(response),
        })
    }

    /// Let a request of `key` in, counting it against the concurrency limit and then
    /// the rate limit, or answer 429. A request refused by either is not counted by
    /// the other (Kong does not count rejected requests).
    fn admit(
        &self,
        key: &str,
        now: SystemTime,
    ) -> Result<(Option<Accepted>, Option<Slot<'_>>), Response> {
        let Some(max) = self.max_in_flight else {
            return Ok((self.count(key, now)?, None));
        };
        // The in-flight lock is held across the window check, so two requests
        // cannot both take the last place.
        let mut counts = self.in_flight.lock();
        if counts.get(key).is_some_and(|&n| n >= max.get()) {
            // The "older concurrent threads" limit: Kong's body, no rate-limit headers.
            return Err(Response::json(429, RATE_LIMITED_BODY));
        }
        let rate = self.count(key, now)?;
        *counts.entry(key.to_string()).or_insert(0) += 1;
        let slot = Slot {
            limiter: &self.in_flight,
            key: key.to_string(),
        };
        Ok((rate, Some(slot)))
    }

    /// The client key of a request, or its 401. "API-GW limitations": the key is
    /// only ever read from the query string, also on POST.
    fn authorize<'q>(&self, query: &'q [(String, String)]) -> Result<&'q str, Response> {
        let key =
            lookup(query, "client_key").ok_or_else(|| error(401, "001", "missing client_key"))?;
        match &self.valid_keys {
            Some(keys) if !keys.contains(key) => Err(error(401, "002", "invalid client_key")),
            _ => Ok(key),
        }
    }

    /// Count the request in its key's window (Kong counts on arrival, before the
    /// upstream sees it), or answer 429.
    fn count(&self, key: &str, now: SystemTime) -> Result<Option<Accepted>, Response> {
        let Some(window) = &self.window else {
            return Ok(None);
        };
        match window.lock().check(key, now) {
            Verdict::Accepted {
                limit,
                remaining,
                reset,
            } => Ok(Some(Accepted {
                limit,
                remaining,
                reset,
            })),
            Verdict::Limited { limit, retry_after } => {
                let response = Response::json(429, RATE_LIMITED_BODY);
                Err(self.style.limited(response, limit, retry_after))
            }
        }
    }

    /// Add the rate-limit headers of an accepted request, if there is a limit.
    fn with_rate(&self, rate: Option<Accepted>, response: Response) -> Response {
        match rate {
            Some(a) => self.style.accepted(response, a.limit, a.remaining, a.reset),
            None => response,
        }
    }

    /// The latency plus a uniform draw from `[-jitter, +jitter]`, never below zero.
    fn delay(&self, rng: &mut fastrand::Rng) -> Duration {
        if self.jitter.is_zero() {
            return self.latency;
        }
        let jitter = u64::try_from(self.jitter.as_nanos()).unwrap_or(u64::MAX / 2);
        let offset = Duration::from_nanos(rng.u64(0..=jitter.saturating_mul(2)));
        self.latency
            .checked_add(offset)
            .unwrap_or(Duration::MAX)
            .saturating_sub(Duration::from_nanos(jitter))
    }
}

impl HeaderStyle {
    /// Add the headers of an accepted request.
    fn accepted(self, r: Response, limit: u32, remaining: u32, reset: u64) -> Response {
        match self {
            HeaderStyle::KongLegacy => r
                .with_header("X-RateLimit-Limit-second", limit)
                .with_header("X-RateLimit-Remaining-second", remaining),
            HeaderStyle::Kong2 => r
                .with_header("X-RateLimit-Limit-Second", limit)
                .with_header("X-RateLimit-Remaining-Second", remaining)
                .with_header("RateLimit-Limit", limit)
                .with_header("RateLimit-Remaining", remaining)
                .with_header("RateLimit-Reset", reset),
            HeaderStyle::None => r,
        }
    }

    /// Add the headers of a 429 (Kong before 2.0 sent no Retry-After).
    fn limited(self, r: Response, limit: u32, retry_after: u64) -> Response {
        match self {
            HeaderStyle::Kong2 => self
                .accepted(r, limit, 0, retry_after)
                .with_header("Retry-After", retry_after),
            _ => self.accepted(r, limit, 0, retry_after),
        }
    }
}

/// The numbers of an accepted request's rate-limit headers.
#[derive(Debug, Clone, Copy)]
struct Accepted {
    limit: u32,
    remaining: u32,
    reset: u64,
}

/// The endpoint a request is for, or its 404 / 405.
fn route(head: &Head) -> Result<Endpoint, Response> {
    let endpoint = match head.path.as_str() {
        PREDICT => Endpoint::Predict,
        MULTIPREDICT => Endpoint::Multipredict,
        _ => return Err(error(404, "404", "not found")),
    };
    if head.method != "GET" && head.method != "POST" {
        return Err(error(405, "405", "method not allowed").with_header("Allow", "GET, POST"));
    }
    Ok(endpoint)
}

/// The image of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Image {
    /// `image_url`.
    Url(String),
    /// Decoded `image_base64`.
    Bytes(Vec<u8>),
}

impl Image {
    /// The stable hash the fake solutions are drawn from.
    fn hash(&self) -> u64 {
        match self {
            Image::Url(url) => answers::image_hash(ImageRef::Url(url)),
            Image::Bytes(bytes) => answers::image_hash(ImageRef::Bytes(bytes)),
        }
    }
}

/// The first non-empty value of `name`.
fn lookup<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, v)| n == name && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

/// Whether the body is to be read as a form: it says so, or says nothing.
fn accepts_form(head: &Head) -> bool {
    head.header("content-type").is_none_or(|ct| {
        ct.split(';').next().is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    })
}

/// The models and the image of a request, or `(error_id, message)` for a 400.
fn validate(
    endpoint: Endpoint,
    params: &[(String, String)],
) -> Result<(Vec<&str>, Image), (&'static str, String)> {
    let raw = lookup(params, "model_id").ok_or(("003", "missing model_id".to_string()))?;
    let models: Vec<&str> = raw
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .collect();
    if models.is_empty() {
        return Err(("003", "missing model_id".to_string()));
    }
    if endpoint == Endpoint::Predict && models.len() > 1 {
        return Err((
            "003",
            format!(
                "invalid model_id: {} (predict takes one model; use multipredict)",
                echo(raw)
            ),
        ));
    }
    if let Some(unknown) = models.iter().find(|m| !crate::models::is_known(m)) {
        return Err(("003", format!("invalid model_id: {}", echo(unknown))));
    }
    let image = if let Some(url) = lookup(params, "image_url") {
        Image::Url(url.to_string())
    } else if let Some(encoded) = lookup(params, "image_base64") {
        match decode_base64(encoded) {
            Some(bytes) if !bytes.is_empty() => Image::Bytes(bytes),
            _ => return Err(("004", "invalid image_base64".to_string())),
        }
    } else {
        return Err(("004", "missing image_url or image_base64".to_string()));
    };
    Ok((models, image))
}

/// Decode URL-safe or standard base64, padded or not; line breaks are ignored, and
/// spaces are read as `+` (an unescaped `+` in a form decodes to a space).
fn decode_base64(encoded: &str) -> Option<Vec<u8>> {
    let cleaned: String = encoded
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n'))
        .map(|c| if c == ' ' { '+' } else { c })
        .collect();
    if cleaned.contains(['-', '_']) {
        URL_SAFE.decode(cleaned).ok()
    } else {
        STANDARD.decode(cleaned).ok()
    }
}

/// User input cut to [`ECHO_MAX`] characters for an error message.
fn echo(input: &str) -> String {
    match input.char_indices().nth(ECHO_MAX) {
        Some((i, _)) => format!("{}...", &input[..i]),
        None => input.to_string(),
    }
}

/// An API-style error reply (`error` is the string "true", as the API sends it).
fn error(status: u16, error_id: &str, message: &str) -> Response {
    let body = json!({"error": "true", "error_id": error_id, "message": message});
    Response::json(status, body.to_string())
}

/// The reply to a request the HTTP layer could not read.
pub(crate) fn http_error(err: HttpError) -> Response {
    let status = err.status();
    error(status, &status.to_string(), http::reason(status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::FaultMix;
    use serde_json::Value;
    use std::time::UNIX_EPOCH;

    fn gateway(config: MockConfig) -> Gateway {
        let rps = config.rps.and_then(NonZeroU32::new);
        Gateway::new(&config, rps)
    }

    fn get(target: &str) -> Head {
        http::parse_head(format!("GET {target} HTTP/1.1\r\n\r\n").as_bytes()).unwrap()
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_700_000_000_100)
    }

    fn respond(decision: Decision) -> Response {
        match decision.action {
            Action::Respond(r) | Action::Delayed(_, r) | Action::Truncated(_, r) => r,
            Action::Close(d) => panic!("closed after {d:?} without an answer"),
        }
    }

    fn body(r: &Response) -> Value {
        serde_json::from_str(&r.body).unwrap()
    }

    fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    const OK: &str =
        "/vision/v2/predict?client_key=k&model_id=re_logo&image_url=http%3A%2F%2Fx%2F1.jpg";

    #[test]
    fn success_is_delayed_by_the_latency() {
        let g = gateway(MockConfig {
            latency: Duration::from_millis(300),
            ..MockConfig::default()
        });
        match g.handle(&get(OK), b"", now()).action {
            Action::Delayed(d, r) => {
                assert_eq!(d, Duration::from_millis(300));
                assert_eq!(r.status, 200);
                let b = body(&r);
                assert_eq!(b["error"], "false");
                assert!(b["response"]["solutions"]["re_logo"]["detections"].is_array());
            }
            other => panic!("{other:?}"),
        };
    }

    #[test]
    fn jitter_stays_in_range_and_follows_the_seed() {
        let config = MockConfig {
            latency: Duration::from_millis(100),
            jitter: Duration::from_millis(50),
            seed: 42,
            ..MockConfig::default()
        };
        let delays = |g: &Gateway| -> Vec<Duration> {
            (0..50)
                .map(|_| match g.handle(&get(OK), b"", now()).action {
                    Action::Delayed(d, _) => d,
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        let a = delays(&gateway(config.clone()));
        assert_eq!(a, delays(&gateway(config.clone())));
        assert!(a.iter().all(|d| (50..=150).contains(&d.as_millis())));
        assert!(a.iter().any(|d| *d != a[0]));
        let b = delays(&gateway(MockConfig { seed: 43, ..config }));
        assert_ne!(a, b);
    }

    #[test]
    fn jitter_larger_than_latency_floors_at_zero() {
        let g = gateway(MockConfig {
            jitter: Duration::from_secs(1),
            ..MockConfig::default()
        });
        let mut rng = fastrand::Rng::with_seed(1);
        for _ in 0..100 {
            assert!(g.delay(&mut rng) <= Duration::from_secs(1));
        }
    }

    #[test]
    fn auth_comes_before_the_rate_limit() {
        let g = gateway(MockConfig {
            rps: Some(1),
            valid_keys: Some(vec!["good".into()]),
            ..MockConfig::default()
        });
        let missing = respond(g.handle(&get("/vision/v2/predict?model_id=re_logo"), b"", now()));
        assert_eq!(
            (missing.status, body(&missing)["error_id"].as_str()),
            (401, Some("001"))
        );
        let bad = respond(g.handle(&get("/vision/v2/predict?client_key=secret"), b"", now()));
        assert_eq!(
            (bad.status, body(&bad)["error_id"].as_str()),
            (401, Some("002"))
        );
        assert!(!bad.body.contains("secret"));
        // Neither 401 used up the one request of this second.
        let ok = OK.replace("client_key=k", "client_key=good");
        assert_eq!(respond(g.handle(&get(&ok), b"", now())).status, 200);
        assert_eq!(respond(g.handle(&get(&ok), b"", now())).status, 429);
    }

    #[test]
    fn validation_errors_count_against_the_window() {
        let g = gateway(MockConfig {
            rps: Some(2),
            ..MockConfig::default()
        });
        let bad = respond(g.handle(
            &get("/vision/v2/predict?client_key=k&model_id=nope"),
            b"",
            now(),
        ));
        assert_eq!(bad.status, 400);
        assert_eq!(header(&bad, "X-RateLimit-Remaining-Second"), Some("1"));
        assert_eq!(respond(g.handle(&get(OK), b"", now())).status, 200);
        let limited = respond(g.handle(&get(OK), b"", now()));
        assert_eq!(limited.status, 429);
        assert_eq!(limited.body, RATE_LIMITED_BODY);
        assert_eq!(header(&limited, "Retry-After"), Some("1"));
    }

    #[test]
    fn header_styles() {
        let names = |style| {
            let g = gateway(MockConfig {
                rps: Some(1),
                header_style: style,
                ..MockConfig::default()
            });
            let ok = respond(g.handle(&get(OK), b"", now()));
            let limited = respond(g.handle(&get(OK), b"", now()));
            let names = |r: &Response| {
                r.headers
                    .iter()
                    .map(|(n, v)| format!("{n}={v}"))
                    .collect::<Vec<_>>()
            };
            (names(&ok), names(&limited))
        };
        let (ok, limited) = names(HeaderStyle::KongLegacy);
        assert_eq!(
            ok,
            [
                "X-RateLimit-Limit-second=1",
                "X-RateLimit-Remaining-second=0"
            ]
        );
        assert_eq!(limited, ok);
        let (ok, limited) = names(HeaderStyle::Kong2);
        assert_eq!(
            ok,
            [
                "X-RateLimit-Limit-Second=1",
                "X-RateLimit-Remaining-Second=0",
                "RateLimit-Limit=1",
                "RateLimit-Remaining=0",
                "RateLimit-Reset=1"
            ]
        );
        assert_eq!(limited.last().map(String::as_str), Some("Retry-After=1"));
        let (ok, limited) = names(HeaderStyle::None);
        assert!(ok.is_empty() && limited.is_empty());
    }

    #[test]
    fn model_id_rules() {
        let g = gateway(MockConfig::default());
        let status_and_message = |target: &str| {
            let r = respond(g.handle(&get(target), b"", now()));
            (
                r.status,
                body(&r)["message"].as_str().unwrap_or_default().to_string(),
            )
        };
        let img = "&image_url=u";
        assert_eq!(
            status_and_message(&format!("/vision/v2/predict?client_key=k{img}")),
            (400, "missing model_id".into())
        );
        assert_eq!(
            status_and_message(&format!(
                "/vision/v2/predict?client_key=k&model_id=re_logo,caption{img}"
            ))
            .0,
            400
        );
        assert_eq!(
            status_and_message(&format!(
                "/vision/v2/multipredict?client_key=k&model_id=re_logo,re_foo{img}"
            )),
            (400, "invalid model_id: re_foo".into())
        );
        let r = respond(g.handle(
            &get(&format!(
                "/vision/v2/multipredict?client_key=k&model_id=re_logo%2C+caption{img}"
            )),
            b"",
            now(),
        ));
        assert_eq!(r.status, 200);
        let solutions = body(&r)["response"]["solutions"].as_object().unwrap().len();
        assert_eq!(solutions, 2);
        assert_eq!(
            status_and_message("/vision/v2/predict?client_key=k&model_id=re_logo"),
            (400, "missing image_url or image_base64".into())
        );
        let long = "x".repeat(500);
        let (_, message) = status_and_message(&format!(
            "/vision/v2/predict?client_key=k&model_id={long}{img}"
        ));
        assert!(message.len() < 130);
    }

    #[test]
    fn post_form_with_base64() {
        let g = gateway(MockConfig::default());
        let post = |body: &str, ct: &str| {
            let head = http::parse_head(
                format!("POST /vision/v2/multipredict?client_key=k HTTP/1.1\r\n{ct}Content-Length: {}\r\n\r\n", body.len())
                    .as_bytes(),
            )
            .unwrap();
            respond(g.handle(&head, body.as_bytes(), now())).status
        };
        let form = "Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n";
        // "\xfb\xff" is "-_8=" URL-safe and "+/8=" standard.
        assert_eq!(post("model_id=re_logo&image_base64=-_8", form), 200);
        assert_eq!(post("model_id=re_logo&image_base64=%2B%2F8%3D", form), 200);
        assert_eq!(post("model_id=re_logo&image_base64=+/8=", form), 200);
        assert_eq!(post("model_id=re_logo&image_base64=-_8", ""), 200);
        assert_eq!(
            post(
                "model_id=re_logo&image_base64=-_8",
                "Content-Type: text/plain\r\n"
            ),
            400
        );
        assert_eq!(post("model_id=re_logo&image_base64=%%%", form), 400);
        assert_eq!(post("model_id=re_logo&image_base64==", form), 400);
        assert_eq!(post("image_base64=-_8", form), 400);
    }

    #[test]
    fn same_image_bytes_same_solutions_whichever_alphabet() {
        assert_eq!(decode_base64("-_8"), Some(vec![0xfb, 0xff]));
        assert_eq!(decode_base64("+/8="), Some(vec![0xfb, 0xff]));
        assert_eq!(decode_base64("+/\n8"), Some(vec![0xfb, 0xff]));
        assert_eq!(decode_base64("a"), None);
    }

    #[test]
    fn routes_and_methods() {
        let g = gateway(MockConfig::default());
        let r = respond(g.handle(&get("/vision/v2/other?client_key=k"), b"", now()));
        assert_eq!(r.status, 404);
        assert_eq!(
            r.body,
            r#"{"error":"true","error_id":"404","message":"not found"}"#
        );
        let put = http::parse_head(b"PUT /vision/v2/predict HTTP/1.1\r\n\r\n").unwrap();
        let r = respond(g.handle(&put, b"", now()));
        assert_eq!((r.status, header(&r, "Allow")), (405, Some("GET, POST")));
    }

    fn faulty(fault: Fault) -> Gateway {
        gateway(MockConfig {
            rps: Some(100),
            latency: Duration::from_millis(300),
            faults: FaultMix::none().with(fault, 1.0),
            hang: Duration::from_secs(2),
            ..MockConfig::default()
        })
    }

    #[test]
    fn replacing_faults_answer_after_the_latency() {
        let cases = [
            (Fault::Status500, 500, INTERNAL_ERROR_BODY, true),
            (Fault::Status503, 503, UNAVAILABLE_BODY, true),
            (Fault::Html502, 502, BAD_GATEWAY_PAGE, false),
            (Fault::NotJson, 200, NOT_JSON_BODY, true),
            (Fault::Error200, 200, ERROR_200_BODY, true),
            (Fault::Legacy005, 200, LEGACY_005_BODY, true),
        ];
        for (fault, status, body, rate_headers) in cases {
            let g = faulty(fault);
            let decision = g.handle(&get(OK), b"", now());
            assert_eq!(decision.fault, Some(fault));
            match decision.action {
                Action::Delayed(d, r) => {
                    assert_eq!(d, Duration::from_millis(300), "{fault:?}");
                    assert_eq!((r.status, r.body.as_str()), (status, body), "{fault:?}");
                    assert_eq!(
                        header(&r, "RateLimit-Limit").is_some(),
                        rate_headers,
                        "{fault:?}"
                    );
                }
                other => panic!("{fault:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn faults_come_after_auth_and_the_rate_limit() {
        let g = gateway(MockConfig {
            rps: Some(1),
            faults: FaultMix::none().with(Fault::Status500, 1.0),
            ..MockConfig::default()
        });
        let d = g.handle(&get("/vision/v2/predict?model_id=re_logo"), b"", now());
        assert_eq!((d.fault, respond(d).status), (None, 401));
        let d = g.handle(&get("/vision/v2/other?client_key=k"), b"", now());
        assert_eq!((d.fault, respond(d).status), (None, 404));
        let d = g.handle(&get(OK), b"", now());
        assert_eq!((d.fault, respond(d).status), (Some(Fault::Status500), 500));
        // The 500 used up the window.
        let d = g.handle(&get(OK), b"", now());
        assert_eq!((d.fault, respond(d).status), (None, 429));
    }

    #[test]
    fn reset_and_hang_close_without_an_answer() {
        let action = |fault| faulty(fault).handle(&get(OK), b"", now()).action;
        assert_eq!(
            action(Fault::Reset),
            Action::Close(Duration::from_millis(300))
        );
        assert_eq!(
            action(Fault::Hang),
            Action::Close(Duration::from_millis(2300))
        );
    }

    #[test]
    fn truncated_and_no_headers_change_the_real_answer() {
        match faulty(Fault::Truncated).handle(&get(OK), b"", now()).action {
            Action::Truncated(d, r) => {
                assert_eq!((d, r.status), (Duration::from_millis(300), 200));
                assert_eq!(body(&r)["error"], "false");
                assert!(header(&r, "RateLimit-Limit").is_some());
            }
            other => panic!("{other:?}"),
        }
        let bad = "/vision/v2/predict?client_key=k&model_id=nope&image_url=u";
        match faulty(Fault::Truncated)
            .handle(&get(bad), b"", now())
            .action
        {
            Action::Truncated(d, r) => assert_eq!((d, r.status), (Duration::ZERO, 400)),
            other => panic!("{other:?}"),
        }
        let g = faulty(Fault::NoRateLimitHeaders);
        let d = g.handle(&get(OK), b"", now());
        assert_eq!(d.fault, Some(Fault::NoRateLimitHeaders));
        match d.action {
            Action::Delayed(_, r) => {
                assert_eq!(r.status, 200);
                assert!(r.headers.is_empty(), "{:?}", r.headers);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_fault_mix_follows_the_seed() {
        let config = MockConfig {
            seed: 9,
            faults: "500=0.3,reset=0.3".parse().unwrap(),
            ..MockConfig::default()
        };
        let faults = |g: Gateway| -> Vec<Option<Fault>> {
            (0..60)
                .map(|_| g.handle(&get(OK), b"", now()).fault)
                .collect()
        };
        let a = faults(gateway(config.clone()));
        assert_eq!(a, faults(gateway(config.clone())));
        assert!(a.contains(&None) && a.contains(&Some(Fault::Status500)));
        assert!(a.contains(&Some(Fault::Reset)));
        assert_ne!(a, faults(gateway(MockConfig { seed: 10, ..config })));
    }

    #[test]
    fn no_faults_leave_the_answers_as_they_were() {
        // Same correlation ids and jitter with an empty mix as before faults existed.
        let config = MockConfig {
            jitter: Duration::from_millis(50),
            latency: Duration::from_millis(100),
            seed: 5,
            ..MockConfig::default()
        };
        let g = gateway(config.clone());
        let with_zero = gateway(MockConfig {
            faults: "500=0".parse().unwrap(),
            ..config
        });
        for _ in 0..10 {
            let a = g.handle(&get(OK), b"", now()).action;
            assert_eq!(a, with_zero.handle(&get(OK), b"", now()).action);
        }
    }

    #[test]
    fn max_in_flight_refuses_until_a_slot_is_freed() {
        let g = gateway(MockConfig {
            max_in_flight: Some(2),
            ..MockConfig::default()
        });
        let first = g.handle(&get(OK), b"", now());
        let second = g.handle(&get(OK), b"", now());
        assert!(first.slot.is_some() && second.slot.is_some());
        let other_key = OK.replace("client_key=k", "client_key=other");
        let other = g.handle(&get(&other_key), b"", now());
        assert_eq!(respond(other).status, 200);
        let refused = respond(g.handle(&get(OK), b"", now()));
        assert_eq!(refused.status, 429);
        assert_eq!(refused.body, RATE_LIMITED_BODY);
        assert!(refused.headers.is_empty());
        drop(first);
        let third = g.handle(&get(OK), b"", now());
        assert!(third.slot.is_some());
        drop((second, third));
        assert!(g.in_flight.lock().is_empty());
    }

    #[test]
    fn max_in_flight_and_rps_do_not_count_each_others_refusals() {
        let g = gateway(MockConfig {
            rps: Some(2),
            max_in_flight: Some(1),
            ..MockConfig::default()
        });
        let held = g.handle(&get(OK), b"", now());
        for _ in 0..3 {
            let r = respond(g.handle(&get(OK), b"", now()));
            assert_eq!((r.status, r.headers.len()), (429, 0));
        }
        drop(held);
        // The refusals above were not counted in the window: one request is left.
        let r = respond(g.handle(&get(OK), b"", now()));
        assert_eq!(r.status, 200);
        let r = respond(g.handle(&get(OK), b"", now()));
        assert_eq!(r.status, 429);
        assert_eq!(header(&r, "Retry-After"), Some("1"));
        // An rps refusal holds no place.
        assert!(g.in_flight.lock().is_empty());
    }

    #[test]
    fn http_errors_have_api_bodies() {
        let r = http_error(HttpError::HeadTooLarge);
        assert_eq!(r.status, 431);
        assert_eq!(body(&r)["error"], "true");
    }
}

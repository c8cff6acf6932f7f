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

mod request;

use super::answers;
use super::faults::{Fault, FaultMix};
use super::http::{self, Head, Response};
use super::limit::LimitHeaders;
use super::limit::RateLimit;
use super::MockConfig;
use parking_lot::Mutex;
use request::{accepts_form, error, lookup, route, validate};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

pub(crate) use super::limit::reply::RATE_LIMITED_BODY;
#[cfg(test)]
use request::decode_base64;
pub(crate) use request::http_error;

/// The single-model endpoint.
pub(crate) const PREDICT: &str = "/vision/v2/predict";
/// The several-models endpoint.
pub(crate) const MULTIPREDICT: &str = "/vision/v2/multipredict";
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

/// The decision maker shared by all connections.
#[derive(Debug)]
pub(crate) struct Gateway {
    /// Accepted keys; `None` accepts any non-empty key.
    valid_keys: Option<HashSet<String>>,
    /// The rate limits and the headers they send.
    rate: RateLimit,
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
    /// A gateway for `config`, which must have passed [`MockConfig::validate`].
    pub(crate) fn new(config: &MockConfig) -> Self {
        Gateway {
            valid_keys: config
                .valid_keys
                .as_ref()
                .map(|keys| keys.iter().cloned().collect()),
            rate: RateLimit::new(config),
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
        if let Some(action) = self.fault_action(fault, rate, &mut rng) {
            return decided(action);
        }
        let rate = if fault == Some(Fault::NoRateLimitHeaders) {
            None
        } else {
            rate
        };
        if accepts_form(head) {
            params.extend(http::parse_form(body));
        }
        let (delay, response) = self.api_answer(endpoint, &params, &correlation_id, now, &mut rng);
        let response = Self::with_rate(rate, response);
        // A truncated answer breaks whatever the real answer was (a 400 too).
        decided(match (fault, delay) {
            (Some(Fault::Truncated), delay) => {
                Action::Truncated(delay.unwrap_or_default(), response)
            }
            (_, Some(delay)) => Action::Delayed(delay, response),
            (_, None) => Action::Respond(response),
        })
    }

    /// The action of a fault that replaces the API's answer or the connection's,
    /// if `fault` is one.
    fn fault_action(
        &self,
        fault: Option<Fault>,
        rate: Option<LimitHeaders>,
        rng: &mut fastrand::Rng,
    ) -> Option<Action> {
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
            let response = Self::with_rate(rate, response);
            return Some(Action::Delayed(self.delay(rng), response));
        }
        match fault {
            // From a load balancer in front of the gateway: no rate-limit headers.
            Some(Fault::Html502) => {
                let response = Response::with_type(502, "text/html", BAD_GATEWAY_PAGE)
                    .with_header("Server", "nginx");
                Some(Action::Delayed(self.delay(rng), response))
            }
            Some(Fault::Reset) => Some(Action::Close(self.delay(rng))),
            Some(Fault::Hang) => Some(Action::Close(self.delay(rng).saturating_add(self.hang))),
            _ => None,
        }
    }

    /// The API's own answer: a success after the latency, or an immediate 400.
    fn api_answer(
        &self,
        endpoint: request::Endpoint,
        params: &[(String, String)],
        correlation_id: &str,
        now: SystemTime,
        rng: &mut fastrand::Rng,
    ) -> (Option<Duration>, Response) {
        match validate(endpoint, params) {
            Ok((models, image)) => {
                let delay = self.delay(rng);
                let solutions = answers::solutions(image.hash(), &models);
                let body = answers::success_body(correlation_id, now + delay, solutions);
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
        }
    }

    /// Let a request of `key` in, counting it against the concurrency limit and then
    /// the rate limit, or answer 429. A request refused by either is not counted by
    /// the other (Kong does not count rejected requests).
    fn admit(
        &self,
        key: &str,
        now: SystemTime,
    ) -> Result<(Option<LimitHeaders>, Option<Slot<'_>>), Response> {
        let Some(max) = self.max_in_flight else {
            return Ok((self.rate.check(key, now)?, None));
        };
        // The in-flight lock is held across the window check, so two requests
        // cannot both take the last place.
        let mut counts = self.in_flight.lock();
        if counts.get(key).is_some_and(|&n| n >= max.get()) {
            // The "older concurrent threads" limit: Kong's body, no rate-limit headers.
            return Err(Response::json(429, RATE_LIMITED_BODY));
        }
        let rate = self.rate.check(key, now)?;
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

    /// Add the rate-limit headers of an accepted request, if any.
    fn with_rate(rate: Option<LimitHeaders>, response: Response) -> Response {
        match rate {
            Some(headers) => headers.apply(response),
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

#[cfg(test)]
mod tests;

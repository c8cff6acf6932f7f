//! What the mock gateway imitates: its limiter kind, rate, headers, latency, faults
//! and request log, as one [`MockConfig`], and the checks that refuse a bad one.

use super::faults::FaultMix;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// How long a [`Fault::Hang`](super::Fault::Hang) holds a request by default (a
/// client's timeout should fire first).
pub const DEFAULT_HANG: Duration = Duration::from_secs(60);
/// The bucket size of [`LimiterKind::Token`] when [`MockConfig::burst`] is `None`.
pub const DEFAULT_BURST: u32 = 5;

/// Which rate-limit headers the gateway sends (RESTB_API.md, "The gateway's rate limiting").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderStyle {
    /// Kong before 2.0: `X-RateLimit-Limit-second`, `X-RateLimit-Remaining-second`;
    /// a 429 has no `Retry-After`.
    KongLegacy,
    /// Kong 2.0 and later: `X-RateLimit-Limit-Second`, `X-RateLimit-Remaining-Second`,
    /// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`, and `Retry-After` on 429.
    #[default]
    Kong2,
    /// No rate-limit headers at all: a client must cope when they are missing.
    None,
}

impl HeaderStyle {
    /// The name `restb mock --headers` takes.
    pub fn name(self) -> &'static str {
        match self {
            HeaderStyle::KongLegacy => "kong-legacy",
            HeaderStyle::Kong2 => "kong2",
            HeaderStyle::None => "none",
        }
    }
}

impl fmt::Display for HeaderStyle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HeaderStyle {
    type Err = String;
    fn from_str(text: &str) -> Result<HeaderStyle, String> {
        [
            HeaderStyle::Kong2,
            HeaderStyle::KongLegacy,
            HeaderStyle::None,
        ]
        .into_iter()
        .find(|style| text.eq_ignore_ascii_case(style.name()))
        .ok_or_else(|| {
            format!("unknown header style '{text}' (expected kong2, kong-legacy or none)")
        })
    }
}

/// Which limiter rejects requests over [`MockConfig::rps`] (RESTB_API.md, "Other
/// gateways"). Every kind counts per client key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimiterKind {
    /// Kong's fixed window: at most `rps` requests per wall-clock second; rejected
    /// requests are not counted. Headers as [`MockConfig::header_style`] says;
    /// 429 body `{"message":"API rate limit exceeded"}`.
    #[default]
    Fixed,
    /// A sliding window that counts rejected requests too: the count over the last
    /// second is estimated as `previous x (1 - elapsed fraction) + current` of two
    /// wall-clock windows, and a request is rejected when it would bring that to more
    /// than `rps`. A client that keeps retrying while blocked stays blocked. Headers as
    /// for `Fixed`, `Remaining` from the estimate.
    Sliding,
    /// nginx `limit_req` with no burst: a request less than `1/rps` after the key's
    /// previous accepted one is rejected. No rate-limit headers on accepted replies;
    /// a 429 carries nginx's HTML page, `Retry-After: 1` (see
    /// [`MockConfig::retry_after`]) and, unless the header style is `None`,
    /// `X-RateLimit-Remaining-Second: 0`.
    Leaky,
    /// A token bucket (cloud API gateway style): [`MockConfig::burst`] tokens, refilled
    /// at `rps` per second; a request takes one or is rejected (rejections take
    /// none). No rate-limit headers; 429 body `{"message":"Too Many Requests"}`.
    Token,
}

impl LimiterKind {
    /// Every kind, in the order `restb mock --help` lists them.
    pub const ALL: [LimiterKind; 4] = [
        LimiterKind::Fixed,
        LimiterKind::Sliding,
        LimiterKind::Leaky,
        LimiterKind::Token,
    ];

    /// The name `restb mock --limiter` takes.
    pub fn name(self) -> &'static str {
        match self {
            LimiterKind::Fixed => "fixed",
            LimiterKind::Sliding => "sliding",
            LimiterKind::Leaky => "leaky",
            LimiterKind::Token => "token",
        }
    }
}

impl fmt::Display for LimiterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for LimiterKind {
    type Err = String;
    fn from_str(text: &str) -> Result<LimiterKind, String> {
        LimiterKind::ALL
            .into_iter()
            .find(|kind| text.eq_ignore_ascii_case(kind.name()))
            .ok_or_else(|| {
                format!("unknown limiter '{text}' (expected fixed, sliding, leaky or token)")
            })
    }
}

/// How the mock behaves. Start from [`MockConfig::default`] (or
/// [`MockConfig::tutorial`]) and set fields: it is `#[non_exhaustive]`, so
/// fields added later keep the code compiling.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MockConfig {
    /// Requests allowed per client key per second by the [`limiter`](Self::limiter);
    /// `None` is unlimited. `Some(0)` is refused by [`MockServer::start`](super::MockServer::start).
    pub rps: Option<u32>,
    /// Which limiter enforces `rps`. Defaults to Kong's fixed window.
    pub limiter: LimiterKind,
    /// Bucket size of [`LimiterKind::Token`]; `None` is [`DEFAULT_BURST`]. Refused
    /// with any other kind, and when zero.
    pub burst: Option<u32>,
    /// `Retry-After` on the limiter's 429s, in seconds, replacing the kind's own
    /// (Kong 2: seconds to the next window; leaky: 1; Kong legacy, token: none);
    /// `Some(0)` sends none. Defaults to `None`: the kind's own.
    pub retry_after: Option<u64>,
    /// Rate-limit headers from another layer: an upstream Kong fixed window allowing
    /// this many requests per second counts the requests the limiter let through,
    /// and only its headers (in `header_style`) are sent. The limiter's 429s then
    /// carry no rate-limit headers, only a `Retry-After` set by `retry_after`.
    /// Defaults to `None` (the headers describe the limiter itself).
    pub headers_rps: Option<u32>,
    /// Time the upstream takes before a successful answer. Defaults to 0.
    pub latency: Duration,
    /// Uniform jitter, `+-jitter`, on `latency` (never below zero); deterministic
    /// under `seed` for a given request order. Defaults to 0.
    pub jitter: Duration,
    /// Seed of all randomness (jitter, correlation ids, faults): the same seed and the
    /// same request order give the same answers. Defaults to 0.
    pub seed: u64,
    /// Rate-limit headers. Defaults to [`HeaderStyle::Kong2`].
    pub header_style: HeaderStyle,
    /// Accepted client keys; `None` (the default) accepts any non-empty key,
    /// `Some` answers 401 to every other key.
    pub valid_keys: Option<Vec<String>>,
    /// Failures injected into requests that passed auth and the limits (they still
    /// count against the window), each with its probability per request. Defaults to
    /// [`FaultMix::none`].
    pub faults: FaultMix,
    /// The "older concurrent threads" account limit: a request arriving while this
    /// many of its key's requests are in flight (accepted, not yet answered) gets an
    /// immediate 429 `{"message":"API rate limit exceeded"}` without rate-limit
    /// headers or `Retry-After`, and is not counted by `rps`. Combinable with `rps`;
    /// `None` (the default) is unlimited; `Some(0)` is refused.
    pub max_in_flight: Option<u32>,
    /// How long a [`Fault::Hang`](super::Fault::Hang) holds a request, after its
    /// latency, before closing the connection without an answer. Defaults to [`DEFAULT_HANG`].
    pub hang: Duration,
    /// Write one line per request, as it is answered, to this file (created or
    /// truncated): arrival time in Unix seconds with microseconds, a label of the key
    /// (a hash, never the key), status (0 when dropped unanswered), path. Buffered;
    /// flushed when the server stops. Defaults to `None`.
    pub log: Option<PathBuf>,
    /// Requests per key per calendar day (UTC), counted when accepted and
    /// reported on every reply (`X-RateLimit-Limit-Day`,
    /// `X-RateLimit-Remaining-Day`, in `header_style`); over it, a 429 until
    /// midnight. `None` (the default): no daily quota; `Some(0)` is refused.
    pub quota_day: Option<u32>,
    /// The same per calendar month (UTC), as `X-RateLimit-*-Month`. `None`
    /// (the default): no monthly quota; `Some(0)` is refused.
    pub quota_month: Option<u32>,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            rps: None,
            limiter: LimiterKind::Fixed,
            burst: None,
            retry_after: None,
            headers_rps: None,
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            seed: 0,
            header_style: HeaderStyle::Kong2,
            valid_keys: None,
            faults: FaultMix::none(),
            max_in_flight: None,
            hang: DEFAULT_HANG,
            log: None,
            quota_day: None,
            quota_month: None,
        }
    }
}

impl MockConfig {
    /// The tutorial's conditions: 4 requests per second, about 1.16 s latency
    /// (+-100 ms), Kong before 2.0. What `restb demo` runs against.
    pub fn tutorial() -> Self {
        MockConfig {
            rps: Some(4),
            latency: Duration::from_millis(1160),
            jitter: Duration::from_millis(100),
            header_style: HeaderStyle::KongLegacy,
            ..MockConfig::default()
        }
    }

    /// Check the fields that can contradict each other.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the field: a zero `rps`, `headers_rps`, `burst` or
    /// `max_in_flight`; a `burst` on a limiter other than `Token`; a limiter kind
    /// other than `Fixed` without `rps`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let zero = |field, value: Option<u32>| match value {
            Some(0) => Err(ConfigError::new(field, "must be at least 1 (or unset)")),
            _ => Ok(()),
        };
        zero("rps", self.rps)?;
        zero("headers_rps", self.headers_rps)?;
        zero("burst", self.burst)?;
        zero("max_in_flight", self.max_in_flight)?;
        zero("quota_day", self.quota_day)?;
        zero("quota_month", self.quota_month)?;
        if self.burst.is_some() && self.limiter != LimiterKind::Token {
            return Err(ConfigError::new(
                "burst",
                format!("only the token limiter has a burst, not {}", self.limiter),
            ));
        }
        if self.rps.is_none() && self.limiter != LimiterKind::Fixed {
            return Err(ConfigError::new(
                "limiter",
                format!("the {} limiter needs a rate (rps)", self.limiter),
            ));
        }
        Ok(())
    }
}

/// A [`MockConfig`] that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigError {
    /// The field at fault (`rps`, `burst`, `headers_rps`...).
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        ConfigError {
            field,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mock {}: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for kind in LimiterKind::ALL {
            assert_eq!(kind.name().parse::<LimiterKind>(), Ok(kind));
        }
        for style in [
            HeaderStyle::Kong2,
            HeaderStyle::KongLegacy,
            HeaderStyle::None,
        ] {
            assert_eq!(style.to_string().parse::<HeaderStyle>(), Ok(style));
        }
        let err = "kong3".parse::<HeaderStyle>().unwrap_err();
        assert!(
            err.contains("'kong3'") && err.contains("kong-legacy"),
            "{err}"
        );
        assert!("gcra"
            .parse::<LimiterKind>()
            .unwrap_err()
            .contains("'gcra'"));
    }

    #[test]
    fn contradictions_are_refused_naming_the_field() {
        let check = |config: MockConfig| config.validate().map_err(|e| e.field);
        assert_eq!(check(MockConfig::default()), Ok(()));
        assert_eq!(check(MockConfig::tutorial()), Ok(()));
        let token = MockConfig {
            rps: Some(4),
            limiter: LimiterKind::Token,
            burst: Some(2),
            ..MockConfig::default()
        };
        assert_eq!(check(token.clone()), Ok(()));
        assert_eq!(
            check(MockConfig {
                limiter: LimiterKind::Leaky,
                ..token.clone()
            }),
            Err("burst")
        );
        assert_eq!(
            check(MockConfig {
                burst: Some(0),
                ..token.clone()
            }),
            Err("burst")
        );
        assert_eq!(check(MockConfig { rps: None, ..token }), Err("limiter"));
        assert_eq!(
            check(MockConfig {
                headers_rps: Some(0),
                ..MockConfig::default()
            }),
            Err("headers_rps")
        );
    }
}

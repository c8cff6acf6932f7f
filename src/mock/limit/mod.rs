//! The gateway's rate limiting: the limiter that judges each request (one kind per
//! file: Kong's fixed window, a sliding window, nginx's leaky bucket, a token
//! bucket), the optional upstream layer whose headers the replies carry instead,
//! the day and month quota ([`quota`]), and what a refusal looks like ([`reply`]).
//!
//! Every limiter takes the arrival time as a parameter, so tests need no sleeping.

mod fixed;
mod keys;
mod leaky;
mod quota;
pub(crate) mod reply;
mod sliding;
mod token;

use super::config::{LimiterKind, MockConfig, DEFAULT_BURST};
use super::http::Response;
use fixed::FixedWindow;
use leaky::LeakyBucket;
use parking_lot::Mutex;
use quota::{PolicyWindow, Quota, QuotaHeaders};
use reply::RateHeaders;
use sliding::SlidingWindow;
use std::num::NonZeroU32;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use token::TokenBucket;

/// A limiter's verdict on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Let through.
    Accepted {
        /// Requests allowed per second.
        limit: u32,
        /// Requests left after this one (in the window, or tokens in the bucket).
        remaining: u32,
        /// Whole seconds until the next window (at least 1).
        reset: u64,
    },
    /// Refused.
    Limited {
        /// Requests allowed per second.
        limit: u32,
        /// Whole seconds the limiter suggests waiting (at least 1).
        retry_after: u64,
    },
}

/// One limiter of any kind.
#[derive(Debug)]
enum Limiter {
    Fixed(FixedWindow),
    Sliding(SlidingWindow),
    Leaky(LeakyBucket),
    Token(TokenBucket),
}

impl Limiter {
    /// A limiter of `kind` at `rate`; `burst` is the token bucket's size.
    fn new(kind: LimiterKind, rate: NonZeroU32, burst: NonZeroU32) -> Self {
        match kind {
            LimiterKind::Fixed => Limiter::Fixed(FixedWindow::new(rate)),
            LimiterKind::Sliding => Limiter::Sliding(SlidingWindow::new(rate)),
            LimiterKind::Leaky => Limiter::Leaky(LeakyBucket::new(rate)),
            LimiterKind::Token => Limiter::Token(TokenBucket::new(rate, burst)),
        }
    }

    /// Judge a request of `key` arriving at `now`.
    fn check(&mut self, key: &str, now: SystemTime) -> Verdict {
        match self {
            Limiter::Fixed(l) => l.check(key, now),
            Limiter::Sliding(l) => l.check(key, now),
            Limiter::Leaky(l) => l.check(key, now),
            Limiter::Token(l) => l.check(key, now),
        }
    }
}

/// The rate limiting of the whole gateway, shared by all connections.
#[derive(Debug)]
pub(crate) struct RateLimit {
    /// The limiter that rejects; `None` without a rate.
    front: Option<Mutex<Limiter>>,
    /// How its answers look.
    reply: reply::Dialect,
    /// The upstream layer whose headers the replies carry, if any.
    upstream: Option<Mutex<FixedWindow>>,
    /// The day and month quota, if any.
    quota: Option<Mutex<Quota>>,
}

/// The limit headers of an accepted request: its rate window's (or the
/// upstream layer's), and the quota's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LimitHeaders {
    rate: Option<RateHeaders>,
    quota: Option<QuotaHeaders>,
}

impl LimitHeaders {
    /// Both, or `None` when there are none.
    fn of(rate: Option<RateHeaders>, quota: Option<QuotaHeaders>) -> Option<Self> {
        (rate.is_some() || quota.is_some()).then_some(LimitHeaders { rate, quota })
    }

    /// Add these headers to `response`: each window's counts, and Kong 2's
    /// `RateLimit-*` for the window with the least remaining (a spent day
    /// says so there, with the day's reset, not the second's).
    pub(crate) fn apply(self, response: Response) -> Response {
        let Some(quota) = self.quota else {
            return match self.rate {
                Some(rate) => rate.apply(response),
                None => response,
            };
        };
        let second = self.rate.map(|rate| {
            let (limit, remaining, reset) = rate.window();
            PolicyWindow {
                limit,
                remaining,
                reset,
                length: 1,
            }
        });
        let response = match self.rate {
            Some(rate) => rate.apply_counts(response),
            None => response,
        };
        let response = quota.apply(response);
        match PolicyWindow::kongs_choice(second.into_iter().chain(quota.policy_windows())) {
            Some(w) => quota
                .style()
                .policy(response, w.limit, w.remaining, w.reset),
            None => response,
        }
    }
}

impl RateLimit {
    /// The rate limiting `config` asks for; `config` must have passed `validate`.
    pub(crate) fn new(config: &MockConfig) -> Self {
        let burst = config.burst.unwrap_or(DEFAULT_BURST);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let front = config
            .rps
            .and_then(NonZeroU32::new)
            .map(|rate| Mutex::new(Limiter::new(config.limiter, rate, burst)));
        let upstream = config
            .headers_rps
            .and_then(NonZeroU32::new)
            .map(|rate| Mutex::new(FixedWindow::new(rate)));
        RateLimit {
            front,
            reply: reply::Dialect {
                kind: config.limiter,
                style: config.header_style,
                retry_after: config.retry_after,
                layered: upstream.is_some(),
            },
            upstream,
            quota: Quota::new(config.quota_day, config.quota_month).map(Mutex::new),
        }
    }

    /// Count a request of `key` arriving at `now` against the quota and the
    /// rate: the headers for its answer (`None`: no limit headers), or its
    /// 429. A request either refuses is counted by neither (Kong counts
    /// accepted requests only); the quota's lock is held throughout, so two
    /// requests cannot both take its last place.
    pub(crate) fn check(
        &self,
        key: &str,
        now: SystemTime,
    ) -> Result<Option<LimitHeaders>, Response> {
        let style = self.reply.style;
        let mut quota = self.quota.as_ref().map(|quota| quota.lock());
        if let Some(quota) = quota.as_mut() {
            quota.check(key, now, style)?;
        }
        let rate = self.check_rate(key, now)?;
        let quota = quota.map(|mut quota| quota.count(key, now, style));
        Ok(LimitHeaders::of(rate, quota))
    }

    /// Count a request of `key` arriving at `now` against the rate: the
    /// headers for its answer (`None`: no rate-limit headers), or its 429. The
    /// upstream layer only sees what the front limiter let through.
    fn check_rate(&self, key: &str, now: SystemTime) -> Result<Option<RateHeaders>, Response> {
        let mut headers = None;
        if let Some(front) = &self.front {
            let verdict = front.lock().check(key, now);
            match verdict {
                Verdict::Limited { limit, retry_after } => {
                    return Err(self.reply.refusal(limit, retry_after))
                }
                Verdict::Accepted {
                    limit,
                    remaining,
                    reset,
                } => headers = self.reply.accepted(limit, remaining, reset),
            }
        }
        let Some(upstream) = &self.upstream else {
            return Ok(headers);
        };
        let verdict = upstream.lock().check(key, now);
        match verdict {
            Verdict::Limited { limit, retry_after } => {
                Err(self.reply.upstream_refusal(limit, retry_after))
            }
            Verdict::Accepted {
                limit,
                remaining,
                reset,
            } => Ok(Some(self.reply.upstream_accepted(limit, remaining, reset))),
        }
    }
}

/// `now` as time since the epoch; a clock before 1970 is read as the epoch, so
/// the limiters still work.
fn since_epoch(now: SystemTime) -> Duration {
    now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO)
}

/// Whole seconds, rounded up and at least 1, from `since_epoch` to the next second boundary.
fn secs_until_next_window(since_epoch: Duration) -> u64 {
    let next = Duration::from_secs(since_epoch.as_secs() + 1);
    let left = next - since_epoch;
    let whole = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    whole.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::DAY;
    use crate::mock::config::HeaderStyle;
    use std::time::UNIX_EPOCH;

    /// `RateLimit-*` of the reply to a request of "k" at `now`.
    fn policy(limits: &RateLimit, now: SystemTime) -> Vec<String> {
        let headers = limits.check("k", now).unwrap().unwrap();
        let reply = headers.apply(Response::json(200, "{}"));
        reply
            .headers
            .iter()
            .filter(|(name, _)| name.starts_with("RateLimit-"))
            .map(|(name, value)| format!("{name}={value}"))
            .collect()
    }

    /// As Kong's rate-limiting plugin: `RateLimit-*` describe the window
    /// with the least remaining, so a day nearly spent shows there with
    /// its own reset, not the second's. (Regression: the mock always showed
    /// the second's, and a client pausing for a spent day read 1 s.)
    #[test]
    fn ratelimit_headers_describe_the_window_with_the_least_left() {
        let mut config = MockConfig {
            rps: Some(20),
            header_style: HeaderStyle::Kong2,
            quota_day: Some(3),
            ..MockConfig::default()
        };
        let limits = RateLimit::new(&config);
        let noon = UNIX_EPOCH + Duration::from_secs(20_785 * DAY + 12 * 3600);
        let day = |left: u32| {
            vec![
                "RateLimit-Limit=3".to_string(),
                format!("RateLimit-Remaining={left}"),
                "RateLimit-Reset=43200".to_string(),
            ]
        };
        assert_eq!(policy(&limits, noon), day(2));
        assert_eq!(policy(&limits, noon), day(1));
        assert_eq!(policy(&limits, noon), day(0));
        config.quota_day = Some(1000);
        let limits = RateLimit::new(&config);
        let second = policy(&limits, noon);
        assert!(
            second.contains(&"RateLimit-Limit=20".to_string()),
            "{second:?}"
        );
        assert!(
            second.contains(&"RateLimit-Remaining=19".to_string()),
            "{second:?}"
        );
    }

    #[test]
    fn reset_is_whole_seconds_at_least_one() {
        assert_eq!(secs_until_next_window(Duration::from_millis(1_000)), 1);
        assert_eq!(secs_until_next_window(Duration::from_millis(1_999)), 1);
        assert_eq!(
            secs_until_next_window(Duration::from_nanos(1_999_999_999)),
            1
        );
    }
}

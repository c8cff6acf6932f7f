//! What a limiter's answers look like: the rate-limit headers of an accepted
//! request, and the status, body and headers of a refusal, for each limiter kind
//! and header style (RESTB_API.md, "The gateway's rate limiting" and "Other gateways").

use crate::mock::config::{HeaderStyle, LimiterKind};
use crate::mock::http::Response;

/// Kong's 429 body (fixed and sliding windows, and the in-flight limit).
pub(crate) const RATE_LIMITED_BODY: &str = r#"{"message":"API rate limit exceeded"}"#;
/// A cloud API gateway's 429 body (token bucket).
pub(crate) const TOO_MANY_REQUESTS_BODY: &str = r#"{"message":"Too Many Requests"}"#;
/// nginx's 429 page (leaky bucket).
pub(crate) const NGINX_429_PAGE: &str = "<html>\r\n<head><title>429 Too Many Requests</title></head>\r\n<body>\r\n<center><h1>429 Too Many Requests</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

/// The rate-limit headers of an accepted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateHeaders {
    style: HeaderStyle,
    limit: u32,
    remaining: u32,
    reset: u64,
}

impl RateHeaders {
    /// Add these headers to `response`.
    pub(crate) fn apply(self, response: Response) -> Response {
        self.style
            .accepted(response, self.limit, self.remaining, self.reset)
    }

    /// The one-second window's counts alone, without `RateLimit-*`.
    pub(crate) fn apply_counts(self, response: Response) -> Response {
        self.style.counts(response, self.limit, self.remaining)
    }

    /// The window: (limit, remaining, seconds to its reset).
    pub(crate) fn window(self) -> (u32, u32, u64) {
        (self.limit, self.remaining, self.reset)
    }
}

/// How one gateway's limiter answers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dialect {
    /// The limiter that rejects.
    pub kind: LimiterKind,
    /// The header style of whichever layer sends headers.
    pub style: HeaderStyle,
    /// `Retry-After` override (`Some(0)`: none).
    pub retry_after: Option<u64>,
    /// Whether an upstream layer, not the limiter, sends the rate-limit headers.
    pub layered: bool,
}

impl Dialect {
    /// The headers of a request the limiter let through: Kong's window kinds send
    /// theirs; nginx and token buckets send none, nor does a limiter whose replies
    /// carry another layer's headers.
    pub(crate) fn accepted(self, limit: u32, remaining: u32, reset: u64) -> Option<RateHeaders> {
        let sends = matches!(self.kind, LimiterKind::Fixed | LimiterKind::Sliding);
        (sends && !self.layered).then_some(RateHeaders {
            style: self.style,
            limit,
            remaining,
            reset,
        })
    }

    /// The headers of a request the upstream layer let through.
    pub(crate) fn upstream_accepted(self, limit: u32, remaining: u32, reset: u64) -> RateHeaders {
        RateHeaders {
            style: self.style,
            limit,
            remaining,
            reset,
        }
    }

    /// The upstream layer's own 429 (a Kong fixed window).
    pub(crate) fn upstream_refusal(self, limit: u32, reset: u64) -> Response {
        let response = Response::json(429, RATE_LIMITED_BODY);
        self.style.limited(response, limit, reset)
    }

    /// The limiter's 429. `natural` is the wait the limiter itself would suggest.
    pub(crate) fn refusal(self, limit: u32, natural: u64) -> Response {
        let response = match self.kind {
            LimiterKind::Fixed | LimiterKind::Sliding => Response::json(429, RATE_LIMITED_BODY),
            LimiterKind::Leaky => {
                Response::with_type(429, "text/html", NGINX_429_PAGE).with_header("Server", "nginx")
            }
            LimiterKind::Token => Response::json(429, TOO_MANY_REQUESTS_BODY),
        };
        let response = match (self.layered, self.kind, self.style) {
            (true, _, _) | (_, _, HeaderStyle::None) => response,
            (_, LimiterKind::Fixed | LimiterKind::Sliding, style) => {
                style.accepted(response, limit, 0, natural)
            }
            // The combination issue 10 measured: nginx plus a header saying "spent".
            (_, LimiterKind::Leaky, HeaderStyle::KongLegacy) => {
                response.with_header("X-RateLimit-Remaining-second", 0)
            }
            (_, LimiterKind::Leaky, _) => response.with_header("X-RateLimit-Remaining-Second", 0),
            (_, LimiterKind::Token, _) => response,
        };
        match self.retry_after(natural) {
            Some(seconds) => response.with_header("Retry-After", seconds),
            None => response,
        }
    }

    /// The `Retry-After` of a refusal: the override, else the kind's own.
    fn retry_after(self, natural: u64) -> Option<u64> {
        match (self.retry_after, self.kind, self.style) {
            (Some(0), _, _) => None,
            (Some(seconds), _, _) => Some(seconds),
            (None, LimiterKind::Fixed | LimiterKind::Sliding, HeaderStyle::Kong2) => Some(natural),
            // The common nginx operator setting: `add_header Retry-After 1 always`.
            (None, LimiterKind::Leaky, _) => Some(1),
            (None, _, _) => None,
        }
    }
}

impl HeaderStyle {
    /// Add the headers of an accepted request.
    pub(crate) fn accepted(self, r: Response, limit: u32, remaining: u32, reset: u64) -> Response {
        let r = self.counts(r, limit, remaining);
        self.policy(r, limit, remaining, reset)
    }

    /// Kong 2's `RateLimit-*`: one window's, the one with the least
    /// remaining when several are configured (ties: the longer). Kong
    /// before 2.0 sent none.
    pub(crate) fn policy(self, r: Response, limit: u32, remaining: u32, reset: u64) -> Response {
        match self {
            HeaderStyle::Kong2 => r
                .with_header("RateLimit-Limit", limit)
                .with_header("RateLimit-Remaining", remaining)
                .with_header("RateLimit-Reset", reset),
            _ => r,
        }
    }

    /// The one-second window's own counts.
    fn counts(self, r: Response, limit: u32, remaining: u32) -> Response {
        match self {
            HeaderStyle::KongLegacy => r
                .with_header("X-RateLimit-Limit-second", limit)
                .with_header("X-RateLimit-Remaining-second", remaining),
            HeaderStyle::Kong2 => r
                .with_header("X-RateLimit-Limit-Second", limit)
                .with_header("X-RateLimit-Remaining-Second", remaining),
            HeaderStyle::None => r,
        }
    }

    /// Add the headers of a Kong 429 (Kong before 2.0 sent no Retry-After).
    pub(crate) fn limited(self, r: Response, limit: u32, retry_after: u64) -> Response {
        match self {
            HeaderStyle::Kong2 => self
                .accepted(r, limit, 0, retry_after)
                .with_header("Retry-After", retry_after),
            _ => self.accepted(r, limit, 0, retry_after),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dialect(kind: LimiterKind, style: HeaderStyle) -> Dialect {
        Dialect {
            kind,
            style,
            retry_after: None,
            layered: false,
        }
    }

    fn names(r: &Response) -> Vec<String> {
        r.headers.iter().map(|(n, v)| format!("{n}={v}")).collect()
    }

    #[test]
    fn kong_window_refusals_keep_their_headers() {
        let fixed = dialect(LimiterKind::Fixed, HeaderStyle::Kong2);
        let r = fixed.refusal(4, 1);
        assert_eq!((r.status, r.body.as_str()), (429, RATE_LIMITED_BODY));
        assert_eq!(
            names(&r),
            [
                "X-RateLimit-Limit-Second=4",
                "X-RateLimit-Remaining-Second=0",
                "RateLimit-Limit=4",
                "RateLimit-Remaining=0",
                "RateLimit-Reset=1",
                "Retry-After=1"
            ]
        );
        // The same as Kong's own 429 of a fixed window.
        assert_eq!(r, fixed.upstream_refusal(4, 1));
        let legacy = dialect(LimiterKind::Sliding, HeaderStyle::KongLegacy).refusal(4, 1);
        assert!(names(&legacy).iter().all(|h| !h.starts_with("Retry-After")));
    }

    #[test]
    fn leaky_refusals_are_nginx_pages_with_retry_after_one() {
        let r = dialect(LimiterKind::Leaky, HeaderStyle::Kong2).refusal(20, 1);
        assert_eq!((r.status, r.body.as_str()), (429, NGINX_429_PAGE));
        assert_eq!(r.content_type, "text/html");
        assert_eq!(
            names(&r),
            [
                "Server=nginx",
                "X-RateLimit-Remaining-Second=0",
                "Retry-After=1"
            ]
        );
        let bare = dialect(LimiterKind::Leaky, HeaderStyle::None).refusal(20, 1);
        assert_eq!(names(&bare), ["Server=nginx", "Retry-After=1"]);
        let without = Dialect {
            retry_after: Some(0),
            ..dialect(LimiterKind::Leaky, HeaderStyle::None)
        };
        assert_eq!(names(&without.refusal(20, 1)), ["Server=nginx"]);
        assert_eq!(
            dialect(LimiterKind::Leaky, HeaderStyle::Kong2).accepted(20, 0, 1),
            None
        );
    }

    #[test]
    fn a_layered_limiter_sends_no_rate_limit_headers_of_its_own() {
        let layered = Dialect {
            layered: true,
            ..dialect(LimiterKind::Sliding, HeaderStyle::Kong2)
        };
        assert_eq!(layered.accepted(4, 3, 1), None);
        assert_eq!(names(&layered.refusal(4, 1)), ["Retry-After=1"]);
        let upstream = layered.upstream_accepted(100, 99, 1);
        let r = upstream.apply(Response::json(200, "{}"));
        assert!(names(&r).contains(&"X-RateLimit-Limit-Second=100".to_string()));
    }

    #[test]
    fn token_refusals_carry_no_headers_unless_asked() {
        let token = dialect(LimiterKind::Token, HeaderStyle::Kong2);
        let r = token.refusal(4, 1);
        assert_eq!((r.status, r.body.as_str()), (429, TOO_MANY_REQUESTS_BODY));
        assert!(r.headers.is_empty(), "{:?}", r.headers);
        assert_eq!(token.accepted(4, 2, 1), None);
        let asked = Dialect {
            retry_after: Some(2),
            ..token
        };
        assert_eq!(names(&asked.refusal(4, 1)), ["Retry-After=2"]);
    }
}

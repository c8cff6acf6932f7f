//! Reading a gateway's rate-limit headers (Kong before and after 2.0).
//!
//! Names are case-insensitive (`X-RateLimit-Remaining-second` and
//! `-Second` alike); a reply without them gives an empty hint.

use crate::limiter::{GatewayHint, WindowCount};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use ureq::http::HeaderMap;

/// Window units Kong reports beyond the second (by the header of what is
/// left of them), with their length where a wall-clock boundary is well
/// defined.
const LONGER_WINDOWS: [(&str, Option<u64>); 5] = [
    ("x-ratelimit-remaining-minute", Some(60)),
    ("x-ratelimit-remaining-hour", Some(3600)),
    ("x-ratelimit-remaining-day", Some(86_400)),
    ("x-ratelimit-remaining-month", None),
    ("x-ratelimit-remaining-year", None),
];

/// The latest a quota can reset: a year's window, and some. A reset later
/// than that is a wrong header (a timestamp for a count of seconds). The
/// limiter waits at most an hour before it asks again anyway; this is what
/// a run that stops for a spent quota says about when to resume.
pub(super) const LONGEST_RESET: Duration = Duration::from_secs(400 * 86_400);
/// Used when a month or year quota is spent and no header says when it resets.
const UNKNOWN_RESET: Duration = Duration::from_secs(3600);

/// Whether any header is a rate-limit one (`X-RateLimit-*`, `RateLimit-*`):
/// a reply without one (a gateway that reports none) skips the lookups.
pub(super) fn has_rate_limit_headers(headers: &HeaderMap) -> bool {
    headers
        .keys()
        .any(|name| name.as_str().contains("ratelimit"))
}

fn number(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// The rate-limit facts in `headers`, for a reply that arrived at `now`.
pub fn gateway_hint(headers: &HeaderMap, now: SystemTime) -> GatewayHint {
    if !has_rate_limit_headers(headers) {
        return GatewayHint {
            second: None,
            exhausted_for: None,
            reset: None,
        };
    }
    let second = match (
        number(headers, "x-ratelimit-limit-second"),
        number(headers, "x-ratelimit-remaining-second"),
    ) {
        (Some(limit), Some(remaining)) => Some(WindowCount {
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
            remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
        }),
        _ => None,
    };
    // The length (if known) of each window with nothing left; no allocation:
    // this runs for every reply that carries rate-limit headers.
    let spent =
        LONGER_WINDOWS.map(|(name, length)| (number(headers, name) == Some(0)).then_some(length));
    // A spent minute, hour or day resets within its length: a reset of 0,
    // or beyond that (a Unix timestamp for a count of seconds), is a wrong
    // header, and our clock's boundary is used instead. `None` when nothing
    // is spent or a month or year is.
    let longest_known = spent
        .iter()
        .flatten()
        .try_fold(0, |longest, length| {
            length.map(|length| longest.max(length))
        })
        .filter(|longest| *longest > 0);
    let reset = number(headers, "ratelimit-reset")
        .filter(|secs| longest_known.is_none_or(|length| (1..=length).contains(secs)))
        .map(Duration::from_secs);
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let exhausted_for = spent
        .iter()
        .flatten()
        .map(|length| match length {
            Some(length) => {
                let into = since_epoch.as_secs() % length;
                Duration::from_secs(length - into)
                    - Duration::from_nanos(u64::from(since_epoch.subsec_nanos()))
            }
            None => reset.unwrap_or(UNKNOWN_RESET),
        })
        .max()
        .map(|wait| wait.min(LONGEST_RESET));
    GatewayHint {
        second,
        exhausted_for,
        reset: reset.map(|wait| wait.min(LONGEST_RESET)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn at(seconds: f64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs_f64(seconds)
    }

    #[test]
    fn both_kong_spellings_give_the_second_window() {
        let legacy = headers(&[
            ("X-RateLimit-Limit-second", "4"),
            ("X-RateLimit-Remaining-second", "3"),
        ]);
        let kong2 = headers(&[
            ("X-RateLimit-Limit-Second", "4"),
            ("X-RateLimit-Remaining-Second", "3"),
        ]);
        for map in [legacy, kong2] {
            let hint = gateway_hint(&map, at(1_700_000_000.0));
            assert_eq!(
                hint.second,
                Some(WindowCount {
                    limit: 4,
                    remaining: 3
                })
            );
            assert_eq!(hint.exhausted_for, None);
        }
    }

    #[test]
    fn no_headers_no_hint() {
        assert!(gateway_hint(&HeaderMap::new(), at(0.0)).is_empty());
        let half = headers(&[("X-RateLimit-Limit-Second", "4")]);
        assert!(gateway_hint(&half, at(0.0)).is_empty());
        let garbage = headers(&[
            ("X-RateLimit-Limit-Second", "four"),
            ("X-RateLimit-Remaining-Second", "3"),
        ]);
        assert!(gateway_hint(&garbage, at(0.0)).is_empty());
    }

    #[test]
    fn a_spent_longer_window_waits_for_its_wall_clock_end() {
        let minute = headers(&[
            ("X-RateLimit-Remaining-Minute", "0"),
            ("X-RateLimit-Remaining-Second", "2"),
        ]);
        let hint = gateway_hint(&minute, at(1_700_000_015.5));
        // 1_700_000_015.5 is 35.5 s into its minute.
        assert_eq!(hint.exhausted_for, Some(Duration::from_millis(24_500)));
        let month = headers(&[
            ("X-RateLimit-Remaining-Month", "0"),
            ("RateLimit-Reset", "86400"),
        ]);
        // A spent month lasts until the gateway's reset.
        assert_eq!(
            gateway_hint(&month, at(5.0)).exhausted_for,
            Some(Duration::from_secs(86_400))
        );
        let absurd = headers(&[
            ("X-RateLimit-Remaining-Year", "0"),
            ("RateLimit-Reset", "1700000000"),
        ]);
        assert_eq!(
            gateway_hint(&absurd, at(5.0)).exhausted_for,
            Some(LONGEST_RESET)
        );
        // A spent minute or day whose reset is a timestamp, or 0: our
        // clock's boundary.
        for wrong in ["1700000000", "0"] {
            let minute = headers(&[
                ("X-RateLimit-Remaining-Minute", "0"),
                ("RateLimit-Reset", wrong),
            ]);
            let hint = gateway_hint(&minute, at(1_700_000_015.5));
            assert_eq!(hint.reset, None, "{wrong}");
            assert_eq!(hint.exhausted_for, Some(Duration::from_millis(24_500)));
        }
        let day = headers(&[
            ("X-RateLimit-Remaining-Day", "0"),
            ("RateLimit-Reset", "65887"),
        ]);
        assert_eq!(
            gateway_hint(&day, at(5.0)).reset,
            Some(Duration::from_secs(65_887))
        );
        let fine = headers(&[("X-RateLimit-Remaining-Minute", "10")]);
        assert_eq!(gateway_hint(&fine, at(5.0)).exhausted_for, None);
    }
}

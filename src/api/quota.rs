//! The account's longer windows (hour, day, month) as the gateway's replies
//! report them, and the latest report seen over a run ([`QuotaWatch`]).
//!
//! Kong names each window in its headers (`X-RateLimit-Remaining-Month`,
//! `X-RateLimit-Limit-Month`, any case). The IETF draft's `RateLimit-Limit`
//! and `RateLimit-Remaining` name no window: they are read as one only when
//! `RateLimit-Policy` gives its length (`10000;w=2592000`). The per-second
//! window is the limiter's business ([`gateway_hint`](super::gateway_hint)).

use parking_lot::Mutex;
use serde::Serialize;
use std::fmt;
use ureq::http::HeaderMap;

/// One window of the quota: what is left of it, and its size when reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QuotaWindow {
    /// Requests left in the window, as of the reply.
    pub remaining: u64,
    /// Requests the window allows, when the gateway says.
    pub limit: Option<u64>,
}

/// What one reply (or the latest replies) said of the longer windows; all
/// `None` when nothing was said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Quota {
    /// The hour's window.
    pub hour: Option<QuotaWindow>,
    /// The day's window.
    pub day: Option<QuotaWindow>,
    /// The month's window (a calendar month for Kong).
    pub month: Option<QuotaWindow>,
}

/// Window lengths `RateLimit-Policy` may give, in seconds, for each unit; a
/// month is 28 to 31 days.
const POLICY_UNITS: [(&str, u64, u64); 3] = [
    ("hour", 3600, 3600),
    ("day", 86_400, 86_400),
    ("month", 28 * 86_400, 31 * 86_400),
];

impl Quota {
    /// The windows `headers` report.
    pub fn from_headers(headers: &HeaderMap) -> Quota {
        if !super::headers::has_rate_limit_headers(headers) {
            return Quota::default();
        }
        let number =
            |name: &str| -> Option<u64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
        let named = |unit: &str| {
            number(&format!("x-ratelimit-remaining-{unit}")).map(|remaining| QuotaWindow {
                remaining,
                limit: number(&format!("x-ratelimit-limit-{unit}")),
            })
        };
        let policy_unit = policy_window(headers).and_then(|seconds| {
            POLICY_UNITS
                .iter()
                .find(|(_, shortest, longest)| (*shortest..=*longest).contains(&seconds))
                .map(|(unit, _, _)| *unit)
        });
        let unnamed = |unit: &str| {
            (policy_unit == Some(unit))
                .then(|| number("ratelimit-remaining"))
                .flatten()
                .map(|remaining| QuotaWindow {
                    remaining,
                    limit: number("ratelimit-limit"),
                })
        };
        let window = |unit: &str| named(unit).or_else(|| unnamed(unit));
        Quota {
            hour: window("hour"),
            day: window("day"),
            month: window("month"),
        }
    }

    /// Whether no window was reported.
    pub fn is_empty(&self) -> bool {
        self.hour.is_none() && self.day.is_none() && self.month.is_none()
    }

    /// The windows of `newer`, and those of `self` it does not report.
    fn updated(self, newer: &Quota) -> Quota {
        Quota {
            hour: newer.hour.or(self.hour),
            day: newer.day.or(self.day),
            month: newer.month.or(self.month),
        }
    }
}

/// The window length of the first policy in `RateLimit-Policy`, in seconds.
fn policy_window(headers: &HeaderMap) -> Option<u64> {
    let policy = headers.get("ratelimit-policy")?.to_str().ok()?;
    let first = policy.split(',').next()?;
    first
        .split(';')
        .filter_map(|part| part.trim().strip_prefix("w="))
        .find_map(|seconds| seconds.trim().parse().ok())
}

impl fmt::Display for Quota {
    /// `month 9870 of 10000 left, day 870 of 1000 left` (longest first).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let windows = [
            ("month", self.month),
            ("day", self.day),
            ("hour", self.hour),
        ];
        let mut first = true;
        for (unit, window) in windows {
            let Some(window) = window else { continue };
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            match window.limit {
                Some(limit) => write!(f, "{unit} {} of {limit} left", window.remaining)?,
                None => write!(f, "{unit} {} left", window.remaining)?,
            }
        }
        Ok(())
    }
}

/// The quota over a run: the latest figure of each window, and one warning
/// when the month holds fewer requests than the jobs still to send.
#[derive(Debug, Default)]
pub struct QuotaWatch {
    state: Mutex<WatchState>,
}

#[derive(Debug, Default)]
struct WatchState {
    latest: Quota,
    /// Jobs of the run not yet answered; `None`: no warning wanted.
    jobs_left: Option<u64>,
    /// Whether a month figure has been checked against them.
    checked: bool,
}

impl QuotaWatch {
    /// A watch that warns once if the first month figure seen is below the
    /// `jobs` of the run still unanswered (each reply counts one off).
    pub fn warning_below(jobs: u64) -> QuotaWatch {
        QuotaWatch {
            state: Mutex::new(WatchState {
                jobs_left: Some(jobs),
                ..WatchState::default()
            }),
        }
    }

    /// Takes in one reply's `quota`; logs the warning if it is due.
    pub fn observe(&self, quota: &Quota) {
        let mut state = self.state.lock();
        state.latest = state.latest.updated(quota);
        if let Some(jobs) = state.jobs_left.as_mut() {
            // This reply's job is answered (a retry may count it twice:
            // the warning errs on the side of silence).
            *jobs = jobs.saturating_sub(1);
        }
        let Some(month) = quota.month.filter(|_| !state.checked) else {
            return;
        };
        state.checked = true;
        if let Some(jobs) = state.jobs_left.filter(|jobs| *jobs > month.remaining) {
            log::warn!(
                "the month's quota is short: {jobs} jobs still to send, {} requests left this month (the gateway says); the run goes on",
                month.remaining
            );
        }
    }

    /// The latest figure of each window seen so far.
    pub fn latest(&self) -> Quota {
        self.state.lock().latest
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

    #[test]
    fn kong_names_each_window() {
        let quota = Quota::from_headers(&headers(&[
            ("X-RateLimit-Limit-Month", "10000"),
            ("X-RateLimit-Remaining-Month", "9870"),
            ("x-ratelimit-remaining-day", "870"),
            ("X-RateLimit-Remaining-Second", "3"),
        ]));
        let window = |remaining, limit| Some(QuotaWindow { remaining, limit });
        assert_eq!(quota.month, window(9870, Some(10_000)));
        assert_eq!(quota.day, window(870, None));
        assert_eq!(quota.hour, None);
        assert_eq!(quota.to_string(), "month 9870 of 10000 left, day 870 left");
    }

    #[test]
    fn unnamed_ratelimit_headers_count_only_with_a_policy_naming_the_window() {
        let plain = headers(&[("RateLimit-Limit", "4"), ("RateLimit-Remaining", "3")]);
        assert!(Quota::from_headers(&plain).is_empty());
        let month = headers(&[
            ("RateLimit-Limit", "5000"),
            ("RateLimit-Remaining", "42"),
            ("RateLimit-Policy", "5000;w=2592000"),
        ]);
        let quota = Quota::from_headers(&month);
        assert_eq!(
            quota.month,
            Some(QuotaWindow {
                remaining: 42,
                limit: Some(5000)
            })
        );
        assert_eq!((quota.day, quota.hour), (None, None));
        let garbage = headers(&[
            ("X-RateLimit-Remaining-Month", "lots"),
            ("RateLimit-Policy", "w=abc"),
        ]);
        assert!(Quota::from_headers(&garbage).is_empty());
    }

    #[test]
    fn the_watch_keeps_the_latest_of_each_window_and_warns_once() {
        let watch = QuotaWatch::warning_below(10);
        let month = |remaining| Quota {
            month: Some(QuotaWindow {
                remaining,
                limit: None,
            }),
            ..Quota::default()
        };
        let day = Quota {
            day: Some(QuotaWindow {
                remaining: 7,
                limit: Some(8),
            }),
            ..Quota::default()
        };
        watch.observe(&Quota::default());
        watch.observe(&month(5));
        watch.observe(&day);
        assert_eq!(watch.latest().month, month(5).month);
        assert_eq!(watch.latest().day, day.day);
        assert!(watch.state.lock().checked);
        watch.observe(&month(4));
        assert_eq!(watch.latest().month, month(4).month);
    }
}

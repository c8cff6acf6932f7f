//! A quota per calendar day and calendar month (UTC), counted per client key,
//! as Kong's rate-limiting plugin keeps its `day` and `month` windows: only
//! accepted requests count, and every reply says what is left
//! (`X-RateLimit-Limit-Day`, `X-RateLimit-Remaining-Month`...). A request over
//! a spent window gets Kong's 429 with that window at 0 and, in Kong 2's
//! style, `Retry-After` until the window ends.
//!
//! The clock is a parameter so tests need no sleeping.

use super::since_epoch;
use crate::calendar::{next_month_start, year_month, DAY};
use crate::mock::config::HeaderStyle;
use crate::mock::http::Response;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::SystemTime;

/// The quota windows of the gateway, and what each key spent of them.
#[derive(Debug)]
pub(crate) struct Quota {
    day: Option<NonZeroU32>,
    month: Option<NonZeroU32>,
    /// key -> (day number, requests that day, month number, requests that month).
    spent: HashMap<String, (u64, u32, u64, u32)>,
}

/// What is left of each window after an accepted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QuotaHeaders {
    style: HeaderStyle,
    /// (limit, remaining) of the day and of the month, when configured.
    day: Option<(u32, u32)>,
    month: Option<(u32, u32)>,
    /// Seconds until the day and the month end.
    day_reset: u64,
    month_reset: u64,
}

/// One window of Kong's rate-limiting plugin, as its `RateLimit-*` headers
/// may describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PolicyWindow {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until it resets.
    pub reset: u64,
    /// Its length in seconds (a tie of `remaining` goes to the longer).
    pub length: u64,
}

impl PolicyWindow {
    /// The window Kong's `RateLimit-*` describe: the least remaining, and
    /// of equals the longer.
    pub(crate) fn kongs_choice(windows: impl IntoIterator<Item = PolicyWindow>) -> Option<Self> {
        windows
            .into_iter()
            .min_by_key(|w| (w.remaining, std::cmp::Reverse(w.length)))
    }
}

impl QuotaHeaders {
    /// The header style of the replies.
    pub(crate) fn style(self) -> HeaderStyle {
        self.style
    }

    /// The day and month windows, as `RateLimit-*` may describe them.
    pub(crate) fn policy_windows(self) -> impl Iterator<Item = PolicyWindow> {
        let day = self.day.map(|(limit, remaining)| PolicyWindow {
            limit,
            remaining,
            reset: self.day_reset,
            length: DAY,
        });
        let month = self.month.map(|(limit, remaining)| PolicyWindow {
            limit,
            remaining,
            reset: self.month_reset,
            length: 31 * DAY,
        });
        day.into_iter().chain(month)
    }

    /// Add these headers to `response`.
    pub(crate) fn apply(self, response: Response) -> Response {
        let windows = [(Unit::Day, self.day), (Unit::Month, self.month)];
        windows
            .into_iter()
            .filter_map(|(unit, window)| Some((unit, window?)))
            .fold(response, |r, (unit, (limit, remaining))| {
                self.style.quota(r, unit, limit, remaining)
            })
    }
}

impl Quota {
    /// A quota of `day` and `month` requests per key; `None` if neither is set.
    pub(crate) fn new(day: Option<u32>, month: Option<u32>) -> Option<Self> {
        let (day, month) = (
            day.and_then(NonZeroU32::new),
            month.and_then(NonZeroU32::new),
        );
        (day.is_some() || month.is_some()).then(|| Quota {
            day,
            month,
            spent: HashMap::new(),
        })
    }

    /// Whether `key` may send a request at `now`; if not, Kong's 429 in `style`.
    pub(crate) fn check(
        &mut self,
        key: &str,
        now: SystemTime,
        style: HeaderStyle,
    ) -> Result<(), Response> {
        let (day_no, month_no) = windows_at(now);
        let (day_count, month_count) = self.counts(key, day_no, month_no);
        let secs = since_epoch(now).as_secs();
        let day_spent = self.day.filter(|limit| day_count >= limit.get());
        let month_spent = self.month.filter(|limit| month_count >= limit.get());
        // The longer window decides the wait when both are spent.
        let (unit, limit, wait) = match (month_spent, day_spent) {
            (Some(limit), _) => (Unit::Month, limit, next_month_start(secs) - secs),
            (None, Some(limit)) => (Unit::Day, limit, DAY - secs % DAY),
            (None, None) => return Ok(()),
        };
        let response = Response::json(429, super::reply::RATE_LIMITED_BODY);
        let response = style.quota(response, unit, limit.get(), 0);
        let response = style.policy(response, limit.get(), 0, wait);
        Err(match style {
            HeaderStyle::Kong2 => response.with_header("Retry-After", wait),
            _ => response,
        })
    }

    /// Counts an accepted request of `key` at `now`; what is left, in `style`.
    pub(crate) fn count(&mut self, key: &str, now: SystemTime, style: HeaderStyle) -> QuotaHeaders {
        let (day_no, month_no) = windows_at(now);
        let (day_count, month_count) = self.counts(key, day_no, month_no);
        let (day_count, month_count) = (day_count + 1, month_count + 1);
        self.spent
            .insert(key.to_string(), (day_no, day_count, month_no, month_count));
        let left = |limit: NonZeroU32, count: u32| (limit.get(), limit.get().saturating_sub(count));
        let secs = since_epoch(now).as_secs();
        QuotaHeaders {
            style,
            day_reset: DAY - secs % DAY,
            month_reset: next_month_start(secs) - secs,
            day: self.day.map(|limit| left(limit, day_count)),
            month: self.month.map(|limit| left(limit, month_count)),
        }
    }

    /// What `key` spent in the day `day_no` and the month `month_no`.
    fn counts(&self, key: &str, day_no: u64, month_no: u64) -> (u32, u32) {
        match self.spent.get(key) {
            Some(&(d, day, m, month)) => (
                if d == day_no { day } else { 0 },
                if m == month_no { month } else { 0 },
            ),
            None => (0, 0),
        }
    }
}

/// A quota window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Day,
    Month,
}

impl HeaderStyle {
    /// Add the headers of one quota window.
    fn quota(self, r: Response, unit: Unit, limit: u32, remaining: u32) -> Response {
        let (limit_name, remaining_name) = match (self, unit) {
            (HeaderStyle::None, _) => return r,
            (HeaderStyle::KongLegacy, Unit::Day) => {
                ("X-RateLimit-Limit-day", "X-RateLimit-Remaining-day")
            }
            (HeaderStyle::KongLegacy, Unit::Month) => {
                ("X-RateLimit-Limit-month", "X-RateLimit-Remaining-month")
            }
            (HeaderStyle::Kong2, Unit::Day) => {
                ("X-RateLimit-Limit-Day", "X-RateLimit-Remaining-Day")
            }
            (HeaderStyle::Kong2, Unit::Month) => {
                ("X-RateLimit-Limit-Month", "X-RateLimit-Remaining-Month")
            }
        };
        r.with_header(limit_name, limit)
            .with_header(remaining_name, remaining)
    }
}

/// The day number and the month number (months since January 1970) of `now`, UTC.
fn windows_at(now: SystemTime) -> (u64, u64) {
    let days = since_epoch(now).as_secs() / DAY;
    let (year, month) = year_month(days);
    (days, (year - 1970) * 12 + month - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::days_from_civil;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn names(r: &Response) -> Vec<String> {
        r.headers.iter().map(|(n, v)| format!("{n}={v}")).collect()
    }

    #[test]
    fn a_quota_counts_accepted_requests_per_key_and_refuses_when_spent() {
        let style = HeaderStyle::Kong2;
        let mut quota = Quota::new(Some(5), Some(3)).unwrap();
        let noon = 20_785 * DAY + 12 * 3600;
        for left in [2, 1, 0] {
            assert!(quota.check("k", at(noon), style).is_ok());
            let headers = quota.count("k", at(noon), style);
            let r = headers.apply(Response::json(200, "{}"));
            assert!(names(&r).contains(&format!("X-RateLimit-Remaining-Month={left}")));
            assert!(names(&r).contains(&format!("X-RateLimit-Remaining-Day={}", left + 2)));
        }
        let refused = quota.check("k", at(noon), style).unwrap_err();
        assert_eq!(refused.status, 429);
        let wait = days_from_civil(2026, 12) * DAY - noon;
        assert!(names(&refused).contains(&"X-RateLimit-Remaining-Month=0".to_string()));
        assert!(names(&refused).contains(&format!("Retry-After={wait}")));
        assert!(quota.check("other", at(noon), style).is_ok(), "keys apart");
        // The next month opens a new window.
        let december = days_from_civil(2026, 12) * DAY;
        assert!(quota.check("k", at(december), style).is_ok());
        assert!(Quota::new(None, None).is_none());
    }

    #[test]
    fn a_spent_day_waits_for_midnight() {
        let style = HeaderStyle::Kong2;
        let mut quota = Quota::new(Some(1), None).unwrap();
        let evening = 20_785 * DAY + 23 * 3600;
        quota.count("k", at(evening), style);
        let refused = quota.check("k", at(evening), style).unwrap_err();
        assert!(names(&refused).contains(&"Retry-After=3600".to_string()));
        assert!(quota.check("k", at(evening + 3600), style).is_ok());
    }
}

//! Calendar months in UTC from Unix time (Howard Hinnant's `civil_from_days`
//! and `days_from_civil`), for the windows counted per calendar month (the
//! mock's quota and the shared budget) and the dates a long pause names.

/// Seconds in a day.
pub(crate) const DAY: u64 = 86_400;

/// The year and month (1-12) of the day `days` after 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
pub(crate) fn year_month(days: u64) -> (u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month)
}

/// Seconds since the epoch at which the month after the one of `secs` starts.
#[cfg_attr(not(feature = "mock"), allow(dead_code))]
pub(crate) fn next_month_start(secs: u64) -> u64 {
    let (year, month) = year_month(secs / DAY);
    let (year, month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    days_from_civil(year, month) * DAY
}

/// Days from 1970-01-01 to the first of `month` (1-12) of `year` (Hinnant's
/// `days_from_civil`, for years from 1970).
pub(crate) fn days_from_civil(year: u64, month: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `secs` seconds after the epoch as `2026-11-29 05:10:00 UTC`.
pub(crate) fn date_time(secs: u64) -> String {
    let days = secs / DAY;
    let (year, month) = year_month(days);
    let day = days - days_from_civil(year, month) + 1;
    let time = secs % DAY;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        time / 3600,
        time / 60 % 60,
        time % 60
    )
}

/// The calendar month (`2026-11`) of `secs` seconds after the epoch, UTC
/// (the shared budget's keys, named by Redis: its script's test compares).
#[cfg(all(test, feature = "redis"))]
pub(crate) fn month_name(secs: u64) -> String {
    let (year, month) = year_month(secs / DAY);
    format!("{year:04}-{month:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_months_and_their_ends() {
        // 2026-11-28 12:00 UTC is 20_785 days and 12 h after the epoch.
        let nov_28 = 20_785 * DAY + 12 * 3600;
        assert_eq!(year_month(nov_28 / DAY), (2026, 11));
        assert_eq!(next_month_start(nov_28), days_from_civil(2026, 12) * DAY);
        assert_eq!(days_from_civil(2026, 12) - 20_785, 3);
        assert_eq!(
            year_month(days_from_civil(2024, 2) + 28),
            (2024, 2),
            "leap day"
        );
        assert_eq!(year_month(days_from_civil(2024, 3)), (2024, 3));
        assert_eq!(
            next_month_start(days_from_civil(2026, 12) * DAY + 5),
            days_from_civil(2027, 1) * DAY
        );
        assert_eq!(days_from_civil(1970, 1), 0);
    }

    #[test]
    fn date_times_are_in_utc() {
        assert_eq!(date_time(0), "1970-01-01 00:00:00 UTC");
        // 2024-02-29 23:59:59, a leap day.
        assert_eq!(date_time(1_709_251_199), "2024-02-29 23:59:59 UTC");
        assert_eq!(date_time(1_709_251_200), "2024-03-01 00:00:00 UTC");
    }

    #[cfg(feature = "redis")]
    #[test]
    fn months_are_named_year_dash_month() {
        assert_eq!(month_name(20_785 * DAY), "2026-11");
        assert_eq!(month_name(0), "1970-01");
    }
}

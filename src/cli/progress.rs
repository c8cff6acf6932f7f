//! The progress bar of `restb run` on a terminal: done / total, the rate now
//! against the allotted one, 429s, retries, failures, ETA.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use restb::job::RestbWork;
use restb::limiter::{clock_time, PacingStatus};
use restb::stats::Stats;
use std::collections::VecDeque;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const REFRESH: Duration = Duration::from_millis(250);
/// The "rate now" is taken over this much recent time.
const RATE_WINDOW: Duration = Duration::from_secs(5);

/// A bar on standard error, or `None` when it is not a terminal or `quiet`.
pub(super) fn bar(total: u64, quiet: bool) -> Option<ProgressBar> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(4));
    bar.set_style(
        ProgressStyle::with_template("{bar:30.cyan/blue} {pos}/{len} jobs  {msg}  ETA {eta}")
            .expect("the template is valid")
            .progress_chars("=> "),
    );
    Some(bar)
}

/// Refreshes `bar` from `stats` (and the quota `work` saw) until `done` is
/// set; log lines go above it (see [`crate::logging::set_progress`]).
pub(super) fn follow(
    bar: &ProgressBar,
    (stats, work): (&Stats, &RestbWork),
    allotted: Option<f64>,
    done: &AtomicBool,
) {
    let mut recent: VecDeque<(Instant, u64)> = VecDeque::new();
    while !done.load(Ordering::Acquire) {
        let report = stats.report();
        let now = Instant::now();
        recent.push_back((now, report.succeeded));
        while recent.len() > 2 && now - recent[0].0 > RATE_WINDOW {
            recent.pop_front();
        }
        let rate = match (recent.front(), recent.back()) {
            (Some((t0, n0)), Some((t1, n1))) if t1 > t0 => {
                (n1 - n0) as f64 / (*t1 - *t0).as_secs_f64()
            }
            _ => 0.0,
        };
        let of_allotted = allotted.map_or_else(String::new, |a| format!(" of {a}"));
        bar.set_position(report.succeeded + report.failed);
        let quota = work.quota();
        let quota = if quota.is_empty() {
            String::new()
        } else {
            format!("  quota: {quota}")
        };
        bar.set_message(format!(
            "{rate:.1}{of_allotted}/s{}  429s {}  retries {}  failed {}{quota}",
            pacing_note(&stats.pacing(), allotted),
            report.rate_limited,
            report.retried,
            report.failed
        ));
        std::thread::sleep(REFRESH);
    }
    bar.finish_and_clear();
}

/// The limiter's state when it matters: a pause in force, or a rate in
/// force cut below the allotted one.
fn pacing_note(status: &PacingStatus, allotted: Option<f64>) -> String {
    if let Some((reason, until)) = status.pause {
        return format!("  paused until {} ({reason})", clock_time(until));
    }
    match (status.rate_in_force, allotted) {
        (Some(rate), Some(allotted)) if rate.per_second_f64() < allotted * 0.99 => {
            format!("  pacing at {rate} (429s persisted)")
        }
        _ => String::new(),
    }
}

//! The budgets of `restb run`: the month's `--shared-budget` in Redis, and
//! the end of a run whose budget was spent (`--max-requests` or the shared
//! one): how many jobs are left, and the command line that resumes them.

use restb::limiter::date_time;
use restb::pool::{Ending, PoolSummary};
use std::path::Path;
#[cfg(feature = "redis")]
use {
    super::{args::RunArgs, UsageError},
    restb::api::ClientKey,
    restb::pool::SharedBudget,
    restb::shared_limit::{RedisBudget, RedisUrl, ScheduleKey, SharedSchedule},
    std::sync::Arc,
    std::time::Duration,
};

/// The line `restb run` prints when it stopped itself, resumably (exit
/// status 3): why, how many jobs are left, and the command line that
/// resumes them. `None` for any other ending.
pub(super) fn resumable_message(
    summary: &PoolSummary,
    output: Option<&Path>,
    max_pause: f64,
) -> Option<String> {
    let (why, then) = match &summary.ending {
        Ending::BudgetSpent => (
            "budget spent (--max-requests or --shared-budget; or a shared budget Redis could \
             not count, as said above)"
                .to_string(),
            "",
        ),
        Ending::LongPause(pause) => (
            format!(
                "the gateway holds every request until {} ({}), longer than --max-pause ({max_pause} s)",
                date_time(pause.until),
                pause.reason
            ),
            " after then",
        ),
        _ => return None,
    };
    let left = summary.unfinished;
    Some(match output {
        Some(_) => format!(
            "{why}: {left} jobs have no outcome yet; to send them{then}, run: {}",
            // Not `args()`, which panics on a word that is not UTF-8 (a
            // path): such a word is shown lossily instead.
            resume_command(std::env::args_os().map(|word| word.to_string_lossy().into_owned()))
        ),
        // Outcomes went to standard output: only a file can be resumed.
        None => format!(
            "{why}: {left} jobs have no outcome yet; save the outcomes printed so far to a file and run the same command with -o FILE --resume to send them{then}"
        ),
    })
}

/// `--shared-budget N`: the month's budget in the Redis of `--shared-limit`
/// (or `RESTB_SHARED_LIMIT`), for the schedule of `key` at `base_url`.
///
/// # Errors
/// No shared limit to count it in, or a Redis that cannot be reached: all
/// before any request.
#[cfg(feature = "redis")]
pub(super) fn connect_shared(
    args: &RunArgs,
    key: &ClientKey,
    base_url: &str,
    schedule: Option<&Arc<SharedSchedule>>,
) -> Result<Option<SharedBudget>, UsageError> {
    let Some(limit) = args.shared_budget else {
        return Ok(None);
    };
    // `shared::check` (made first) refused a budget without a URL.
    let Some(url) = super::shared::url(args)? else {
        return Ok(None);
    };
    let schedule_key = ScheduleKey::new(key, base_url);
    let mut budget = RedisBudget::connect(url, schedule_key, limit.get(), Duration::from_secs(1))
        .map_err(|e| UsageError(format!("--shared-budget: {e}")))?;
    if let Some(schedule) = schedule.cloned() {
        budget = budget.held_to(move || schedule.limit().peers().smallest_budget);
    }
    let left = budget
        .remaining()
        .map_err(|e| UsageError(format!("--shared-budget: {e}")))?;
    log::info!(
        "shared budget: {left} of {} requests left this month for every process on this key",
        budget.limit()
    );
    Ok(Some(SharedBudget::new(Arc::new(budget))))
}

/// The flag whose value may hold a password.
const SHARED_LIMIT: &str = "--shared-limit";

/// The command line that was run, `--resume` added unless it is there,
/// the password of `--shared-limit` hidden, quoted for a POSIX shell.
fn resume_command(args: impl IntoIterator<Item = String>) -> String {
    let mut words: Vec<String> = hide_passwords(args.into_iter().collect());
    // --resume keeps the outcomes that --overwrite would replace (and clap
    // refuses the two together).
    words.retain(|word| word != "--overwrite");
    if !words.iter().any(|word| word == "--resume") {
        words.push("--resume".to_string());
    }
    words
        .iter()
        .map(|word| shell_quote(word))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `words` with the URL after `--shared-limit` (or in `--shared-limit=URL`)
/// shown as the limit shows it everywhere: its password as `***`.
fn hide_passwords(mut words: Vec<String>) -> Vec<String> {
    let equals = format!("{SHARED_LIMIT}=");
    for i in 0..words.len() {
        if i > 0 && words[i - 1] == SHARED_LIMIT {
            words[i] = shown_url(&words[i]);
        } else if let Some(url) = words[i].strip_prefix(&equals) {
            words[i] = format!("{equals}{}", shown_url(url));
        }
    }
    words
}

#[cfg(feature = "redis")]
fn shown_url(text: &str) -> String {
    RedisUrl::parse(text).map_or_else(|_| "***".to_string(), |url| url.to_string())
}

/// Without the feature no URL was ever taken: nothing of it is shown.
#[cfg(not(feature = "redis"))]
fn shown_url(_text: &str) -> String {
    "***".to_string()
}

/// `word` as a POSIX shell reads it back: bare when it has only safe
/// characters, else in single quotes.
fn shell_quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &[&str]) -> Vec<String> {
        text.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn the_resume_command_is_the_command_with_resume_quoted_for_a_shell() {
        let run = words(&["restb", "run", "my photos.csv", "-o", "out.jsonl"]);
        assert_eq!(
            resume_command(run),
            "restb run 'my photos.csv' -o out.jsonl --resume"
        );
        let again = words(&["restb", "run", "a.csv", "-o", "o.jsonl", "--resume"]);
        assert_eq!(resume_command(again), "restb run a.csv -o o.jsonl --resume");
        let overwrite = words(&["restb", "run", "a.csv", "-o", "o.jsonl", "--overwrite"]);
        assert_eq!(
            resume_command(overwrite),
            "restb run a.csv -o o.jsonl --resume",
            "--resume keeps what --overwrite would replace"
        );
        let shared = words(&[
            "restb",
            "run",
            "a.csv",
            "--shared-limit",
            "redis://:pw@h:6379",
            "--shared-limit=redis://:pw@h/1",
        ]);
        assert_eq!(
            resume_command(shared),
            "restb run a.csv --shared-limit 'redis://:***@h:6379' \
             '--shared-limit=redis://:***@h/1' --resume"
        );
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}

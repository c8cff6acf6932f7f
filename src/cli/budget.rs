//! The end of a run whose `--max-requests` budget was spent: how many jobs
//! are left, and the command line that resumes them.

use restb::pool::PoolSummary;
use std::path::Path;

/// The line `restb run` prints when its budget ran out (exit status 3).
pub(super) fn spent_message(summary: &PoolSummary, output: Option<&Path>) -> String {
    let left = summary.unfinished;
    match output {
        Some(_) => format!(
            "budget spent (--max-requests): {left} jobs have no outcome yet; to send them, run: {}",
            resume_command(std::env::args())
        ),
        // Outcomes went to standard output: only a file can be resumed.
        None => format!(
            "budget spent (--max-requests): {left} jobs have no outcome yet; save the outcomes printed so far to a file and run the same command with -o FILE --resume to send them"
        ),
    }
}

/// The command line that was run, `--resume` added unless it is there,
/// quoted for a POSIX shell.
fn resume_command(args: impl IntoIterator<Item = String>) -> String {
    let mut words: Vec<String> = args.into_iter().collect();
    if !words.iter().any(|word| word == "--resume") {
        words.push("--resume".to_string());
    }
    words
        .iter()
        .map(|word| shell_quote(word))
        .collect::<Vec<_>>()
        .join(" ")
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
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}

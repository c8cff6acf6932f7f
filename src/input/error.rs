//! The error every input reader returns: where in which file, and why.

use std::fmt;

/// A problem with the batch input, found before any request is sent.
///
/// Its `Display` is `FILE:LINE: reason`, or `FILE: reason` when the problem
/// belongs to no one line (an empty input, a file that cannot be opened).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InputError {
    /// The input's name: its path as given, or `<stdin>`.
    pub source_name: String,
    /// The 1-based line the problem is on, when there is one.
    pub line: Option<usize>,
    /// What is wrong, in lowercase words, without the location.
    pub reason: String,
}

impl InputError {
    /// An error at `line` of `source_name`.
    pub fn at(source_name: &str, line: usize, reason: impl Into<String>) -> InputError {
        InputError {
            source_name: source_name.to_string(),
            line: Some(line),
            reason: reason.into(),
        }
    }

    /// An error about `source_name` as a whole.
    pub fn whole(source_name: &str, reason: impl Into<String>) -> InputError {
        InputError {
            source_name: source_name.to_string(),
            line: None,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.source_name, line, self.reason),
            None => write!(f, "{}: {}", self.source_name, self.reason),
        }
    }
}

impl std::error::Error for InputError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_file_and_line() {
        assert_eq!(
            InputError::at("a.csv", 3, "bad").to_string(),
            "a.csv:3: bad"
        );
        assert_eq!(
            InputError::whole("<stdin>", "no images in input").to_string(),
            "<stdin>: no images in input"
        );
    }
}

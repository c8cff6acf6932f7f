//! Results on standard output. A reader that went away (`restb ... | head`)
//! does not want the rest: that write is dropped, not a panic (std's
//! `print!` panics on EPIPE). Any other failure, such as a full disk under
//! `> file`, is an error the user must see.

use super::UsageError;
use std::io::{self, Write};

/// Writes `text` to standard output and flushes it.
///
/// # Errors
/// A failed write other than a closed pipe.
pub(super) fn print_out(text: &str) -> Result<(), UsageError> {
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(error) if error.kind() != io::ErrorKind::BrokenPipe => Err(UsageError(format!(
            "cannot write to standard output: {error}"
        ))),
        _ => Ok(()),
    }
}

//! The mock's request log (`restb mock --log FILE`): one line per request as it is
//! answered, so figures can be measured where the gateway sees them (issue 14).
//!
//! A line is `ARRIVAL KEY STATUS PATH`: arrival in Unix seconds with microseconds
//! (the time the rate limit counted the request at), a label of the client key
//! (`k` and 8 hex digits of a hash; `-` without a key; never the key itself), the
//! status (0 when the request was dropped unanswered) and the path without its
//! query. Lines come in answer order, not arrival order: sort by the first field.
//! One buffered writer under a lock keeps a line whole and costs a copy per request;
//! the buffer is flushed when the server stops.

use parking_lot::Mutex;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest path written (the rest is cut).
const PATH_MAX: usize = 256;

/// An open request log.
#[derive(Debug)]
pub(crate) struct RequestLog {
    out: Mutex<BufWriter<File>>,
    /// Set after the first write error, so it is reported once.
    failed: AtomicBool,
}

impl RequestLog {
    /// Create (or truncate) the log at `path`.
    pub(crate) fn create(path: &Path) -> io::Result<RequestLog> {
        let file = File::create(path)?;
        Ok(RequestLog {
            out: Mutex::new(BufWriter::with_capacity(64 * 1024, file)),
            failed: AtomicBool::new(false),
        })
    }

    /// Write the line of one answered (or dropped: `status` 0) request.
    pub(crate) fn record(&self, at: SystemTime, key: Option<&str>, status: u16, path: &str) {
        let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        let label = key.map_or_else(|| "-".to_string(), key_label);
        let path: String = path
            .chars()
            .take(PATH_MAX)
            .map(|c| {
                if c.is_whitespace() || c.is_control() {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        let path = if path.is_empty() { "-" } else { &path };
        let line = format!(
            "{}.{:06} {label} {status} {path}\n",
            since.as_secs(),
            since.subsec_micros()
        );
        let written = self.out.lock().write_all(line.as_bytes());
        if let Err(e) = written {
            self.failed_once(&e);
        }
    }

    /// Write out what is buffered.
    pub(crate) fn flush(&self) {
        let flushed = self.out.lock().flush();
        if let Err(e) = flushed {
            self.failed_once(&e);
        }
    }

    fn failed_once(&self, e: &io::Error) {
        if !self.failed.swap(true, Ordering::Relaxed) {
            log::warn!("mock: cannot write the request log: {e}");
        }
    }
}

/// A label that tells keys apart without revealing them: `k` and the first 8 hex
/// digits of the key's FNV-1a hash.
pub(crate) fn key_label(key: &str) -> String {
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("k{:08x}", hash >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn lines_carry_time_label_status_and_path_but_never_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("requests.log");
        let log = RequestLog::create(&path).unwrap();
        let at = UNIX_EPOCH + Duration::from_micros(1_700_000_000_000_042);
        log.record(at, Some("s3cret+key"), 429, "/vision/v2/predict");
        log.record(at, None, 0, "");
        log.record(at, Some("other"), 200, "/a b\nc");
        log.flush();
        let text = std::fs::read_to_string(&path).unwrap();
        let label = key_label("s3cret+key");
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                format!("1700000000.000042 {label} 429 /vision/v2/predict"),
                "1700000000.000042 - 0 -".to_string(),
                format!("1700000000.000042 {} 200 /a_b_c", key_label("other")),
            ]
        );
        assert!(!text.contains("s3cret"));
        assert_ne!(key_label("a"), key_label("b"));
        assert_eq!(label.len(), 9);
    }
}

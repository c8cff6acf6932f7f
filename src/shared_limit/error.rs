//! What can go wrong with a shared limit. Every message names the Redis URL
//! with its password hidden, and never quotes the password itself.

use super::url::RedisUrl;

/// A shared limit could not be set up or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SharedLimitError {
    /// The text is not a usable `redis://` URL: the URL (password hidden)
    /// and why.
    #[error("{0}")]
    BadUrl(String),
    /// Redis could not be reached, refused the password, or failed a command.
    #[error("shared limit at {url}: {detail}")]
    Redis {
        /// The URL, password hidden.
        url: String,
        /// Redis's (or the socket's) complaint, password hidden.
        detail: String,
    },
    /// The connection was lost earlier and is not back yet.
    #[error("shared limit at {url}: not connected (reconnecting)")]
    Disconnected {
        /// The URL, password hidden.
        url: String,
    },
}

impl SharedLimitError {
    pub(super) fn redis(url: &RedisUrl, error: &redis::RedisError) -> SharedLimitError {
        // A socket timeout reads "Resource temporarily unavailable (os
        // error 11)", which does not say that Redis was too slow to answer.
        let detail = if error.is_timeout() {
            format!("no answer in time (is it up, and reachable from here?): {error}")
        } else {
            error.to_string()
        };
        SharedLimitError::Redis {
            url: url.to_string(),
            detail: url.redact(&detail),
        }
    }
}

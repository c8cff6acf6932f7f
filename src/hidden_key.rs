//! The client key hidden in what the binary prints on standard error: every
//! line of its `eprintln!` (the panic hook's among them) and every log
//! record. The library hides the key in what it writes itself (outcomes, its
//! messages, the pool's panic lines), but the hook prints every panic's
//! message as it came (a transport's may quote a request's URL, key and
//! all), and another crate's record is its own.

use restb::api::ClientKey;
use std::borrow::Cow;
use std::sync::OnceLock;

/// The run's key, once read: a process runs with one.
static KEY: OnceLock<ClientKey> = OnceLock::new();

/// Hides `key` in the binary's own output from now on.
pub fn hide(key: &ClientKey) {
    let _ = KEY.set(key.clone());
}

/// `text` with the key hidden, if one was read.
pub fn redact(text: &str) -> Cow<'_, str> {
    match KEY.get() {
        Some(key) => key.redact(text),
        None => Cow::Borrowed(text),
    }
}

/// The key the binary's tests hide: one process, one key.
#[cfg(test)]
pub const TEST_KEY: &str = "hidden-key-123";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_once_read_is_hidden_in_any_text() {
        let text = "at https://api/?client_key=hidden-key-123&x=1";
        hide(&ClientKey::new(TEST_KEY).unwrap());
        assert_eq!(redact(text), "at https://api/?client_key=***&x=1");
        assert!(matches!(redact("nothing to hide"), Cow::Borrowed(_)));
    }
}

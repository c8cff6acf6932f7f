//! The client key: a secret that prints as `***` everywhere.

use std::fmt;

/// The account's `client_key`. `Debug` and `Display` show `***`; only the
/// request builder reads the text.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientKey(String);

impl ClientKey {
    /// Wraps a key, trimmed of surrounding white space (a key file usually
    /// ends in a newline). `None` when nothing is left.
    pub fn new(key: &str) -> Option<ClientKey> {
        let key = key.trim();
        (!key.is_empty()).then(|| ClientKey(key.to_string()))
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the key (raw or percent-encoded)
    /// replaced by `***`: for error texts that quote a URL.
    pub fn redact(&self, text: &str) -> String {
        let encoded: String = form_urlencoded_byte_serialize(&self.0);
        let text = text.replace(&self.0, "***");
        if encoded != self.0 {
            text.replace(&encoded, "***")
        } else {
            text
        }
    }
}

/// Percent-encodes like a query string does (unreserved characters kept).
fn form_urlencoded_byte_serialize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientKey(***)")
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_never_prints() {
        let key = ClientKey::new(" s3cr3t/key+x\n").unwrap();
        assert_eq!(format!("{key} {key:?}"), "*** ClientKey(***)");
        assert_eq!(key.expose(), "s3cr3t/key+x");
        assert_eq!(
            key.redact("GET /p?client_key=s3cr3t%2Fkey%2Bx and s3cr3t/key+x"),
            "GET /p?client_key=*** and ***"
        );
        assert!(ClientKey::new("  \n").is_none());
    }
}

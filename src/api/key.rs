//! The client key: a secret that prints as `***` everywhere.

use std::borrow::Cow;
use std::fmt;

/// The account's `client_key`. `Debug` and `Display` show `***`; only the
/// request builder reads the text. Every occurrence of the key in replies
/// is hidden as `***` before they are read, so a key of a few characters
/// (a placeholder) would mangle them; the `restb` command refuses keys of
/// fewer than 8.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientKey(String);

/// Why a text is not a client key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Nothing but white space.
    #[error("is empty")]
    Empty,
    /// White space or a line break inside: two lines of a key file, or a
    /// key pasted with its label. Sent as it is, it would be refused (or
    /// be another account's).
    #[error("holds white space or a line break inside the key (a key file holds the key alone)")]
    Split,
}

impl ClientKey {
    /// Wraps a key, trimmed of surrounding white space (a key file usually
    /// ends in a newline). `None` when it is not a key (see
    /// [`ClientKey::parse`]).
    pub fn new(key: &str) -> Option<ClientKey> {
        ClientKey::parse(key).ok()
    }

    /// Wraps a key, trimmed of surrounding white space.
    ///
    /// # Errors
    /// [`KeyError`] when nothing is left, or white space is left inside.
    pub fn parse(key: &str) -> Result<ClientKey, KeyError> {
        let key = key.trim();
        if key.is_empty() {
            return Err(KeyError::Empty);
        }
        if key.contains(char::is_whitespace) {
            return Err(KeyError::Split);
        }
        Ok(ClientKey(key.to_string()))
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the key replaced by `***`, however a
    /// server or proxy wrote it back: raw, percent-encoded in full or in part
    /// (ureq leaves `!*()~` as they are; hex digits in either case), form-encoded
    /// (`+` for a space, or a space where a raw `+` was form-decoded),
    /// JSON-escaped (`\/`, `\"`, `\u002b`), percent-encoded twice (`%252F`,
    /// or its percent sign JSON- or HTML-escaped: `\u00252F`, `&#37;2F`), or
    /// HTML-escaped (`&amp;`, `&#115;`, `&#x2F;`). Borrows when there is nothing
    /// to hide.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.redact_bytes(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            // Matches start and end on character boundaries of valid text;
            // stay total all the same.
            Cow::Owned(bytes) => Cow::Owned(
                String::from_utf8(bytes)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            ),
        }
    }

    /// [`ClientKey::redact`] on bytes: a reply body before anything reads it.
    pub(crate) fn redact_bytes<'a>(&self, text: &'a [u8]) -> Cow<'a, [u8]> {
        let key = self.0.as_bytes();
        // Most bodies hold no key: try a match only where one can start.
        let Some(first) = (0..text.len())
            .find(|&i| may_start(text[i], key) && match_len(&text[i..], key).is_some())
        else {
            return Cow::Borrowed(text);
        };
        let mut out = Vec::with_capacity(text.len());
        out.extend_from_slice(&text[..first]);
        let mut i = first;
        while i < text.len() {
            match match_len(&text[i..], key) {
                Some(len) => {
                    out.extend_from_slice(b"***");
                    i += len;
                }
                None => {
                    out.push(text[i]);
                    i += 1;
                }
            }
        }
        Cow::Owned(out)
    }
}

/// The length of the key's occurrence at the start of `text`, in any mix of
/// the forms [`ClientKey::redact`] lists, or `None`. Backtracks where two forms
/// fit (a `%` in the key against `%25` in the text).
fn match_len(text: &[u8], key: &[u8]) -> Option<usize> {
    let Some((&byte, rest)) = key.split_first() else {
        return Some(0);
    };
    forms_at(text, byte)
        .into_iter()
        .flatten()
        .find_map(|width| match_len(&text[width..], rest).map(|len| width + len))
}

/// Whether an occurrence of `key` can start with `byte`: the first of its
/// bytes raw (a space and `+` stand for each other), or an escape (`%`, `\\`),
/// as [`forms_at`] reads them.
fn may_start(byte: u8, key: &[u8]) -> bool {
    match key.first() {
        Some(&first) => {
            byte == first
                || byte == b'%'
                || byte == b'\\'
                || byte == b'&'
                || (first == b'+' && byte == b' ')
                || (first == b' ' && byte == b'+')
        }
        None => true,
    }
}

/// The widths of the ways `byte` is written at the start of `text`.
fn forms_at(text: &[u8], byte: u8) -> [Option<usize>; 4] {
    let at = |i: usize| text.get(i).copied();
    let raw = (at(0) == Some(byte)
        || (byte == b'+' && at(0) == Some(b' '))
        || (byte == b' ' && at(0) == Some(b'+')))
    .then_some(1);
    let escaped = match at(0) {
        Some(b'%') => (hex(text.get(1..3)) == Some(u32::from(byte))).then_some(3),
        Some(b'\\') if at(1) == Some(byte) && matches!(byte, b'/' | b'"' | b'\\') => Some(2),
        Some(b'\\') if at(1) == Some(b'u') => {
            (hex(text.get(2..6)) == Some(u32::from(byte))).then_some(6)
        }
        _ => None,
    };
    let entity = (at(0) == Some(b'&')).then(|| html_entity(text)).flatten();
    let entity_for = |wanted: u8| {
        entity
            .filter(|(value, _)| *value == u32::from(wanted))
            .map(|(_, width)| width)
    };
    // A gateway's error page may quote the request encoded twice: its
    // percent signs encoded again (`%252F`), JSON-escaped (`\u00252F`) or
    // HTML-escaped (`&#37;2F`).
    let percent = match at(0) {
        Some(b'%') if text.get(1..3) == Some(b"25") => Some(3),
        Some(b'\\') if text.get(1..6) == Some(b"u0025") => Some(6),
        _ => entity_for(b'%'),
    };
    let twice = percent
        .filter(|&width| hex(text.get(width..width + 2)) == Some(u32::from(byte)))
        .map(|width| width + 2);
    // Or HTML-escape the byte itself (`&amp;`, `&#115;`).
    let html = entity_for(byte);
    // `\\` raw and `\\\\` escaped both start with a backslash, and `%`
    // raw, `%25` and `%2525` all may stand for a `%`: try each.
    [raw, escaped, twice, html]
}

/// The character an HTML entity at the start of `text` stands for (named
/// ones for the characters HTML escapes; numeric ones for ASCII), and its
/// width.
fn html_entity(text: &[u8]) -> Option<(u32, usize)> {
    let end = text.iter().take(8).position(|&b| b == b';')?;
    let name = &text[1..end];
    let value = match name {
        b"amp" => u32::from(b'&'),
        b"lt" => u32::from(b'<'),
        b"gt" => u32::from(b'>'),
        b"quot" => u32::from(b'"'),
        b"apos" => u32::from(b'\''),
        [b'#', b'x' | b'X', digits @ ..] => hex(Some(digits))?,
        [b'#', digits @ ..] if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) => {
            std::str::from_utf8(digits).ok()?.parse().ok()?
        }
        _ => return None,
    };
    (value < 0x80).then_some((value, end + 1))
}

/// The value of hex digits (either case), if all of `digits` are.
fn hex(digits: Option<&[u8]>) -> Option<u32> {
    let digits = std::str::from_utf8(digits?).ok()?;
    u32::from_str_radix(digits, 16)
        .ok()
        .filter(|_| digits.bytes().all(|d| d.is_ascii_hexdigit()))
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
    #[test]
    fn a_key_is_one_word() {
        assert_eq!(ClientKey::parse("  abc-123\n").unwrap().expose(), "abc-123");
        assert_eq!(ClientKey::parse(" \n").unwrap_err(), KeyError::Empty);
        assert_eq!(ClientKey::parse("abc\ndef\n").unwrap_err(), KeyError::Split);
        assert_eq!(ClientKey::parse("key: abc").unwrap_err(), KeyError::Split);
    }

    use super::*;

    #[test]
    fn the_key_never_prints() {
        let key = ClientKey::new(" s3cr3t/key+x\n").unwrap();
        assert_eq!(format!("{key} {key:?}"), "*** ClientKey(***)");
        assert_eq!(key.expose(), "s3cr3t/key+x");
        assert!(ClientKey::new("  \n").is_none());
    }

    #[test]
    fn every_form_of_the_key_is_redacted() {
        let key = ClientKey::new("s3cr3t/key+x=%41!*").unwrap();
        for form in [
            "s3cr3t/key+x=%41!*",
            "s3cr3t%2Fkey%2Bx%3D%2541!*",     // ureq's query encoding
            "s3cr3t%2fkey%2bx%3d%2541%21%2a", // all encoded, lower case
            "%73%33cr3t/key x=%2541!*",       // form-decoded, odd escapes
            "s3cr3t\\/key\\u002bx=%41!*",     // JSON-escaped
            "s3cr3t%252Fkey%252Bx%253D%252541!*", // encoded twice
            "&#115;3cr3t&#x2F;key+x&#61;%41!*", // HTML numeric entities
            "s3cr3t\\u00252Fkey\\u00252Bx=\\u00252541!*", // twice: JSON-escaped percent signs
            "s3cr3t&#37;2Fkey&#x25;2Bx=&#37;2541!*", // twice: HTML-escaped percent signs
        ] {
            let text = format!("bad request /v?client_key={form}&model_id=a");
            assert_eq!(
                key.redact(&text),
                "bad request /v?client_key=***&model_id=a",
                "{form}"
            );
        }
        assert!(matches!(key.redact("nothing here %41"), Cow::Borrowed(_)));
        assert_eq!(key.redact("s3cr3t/keys3cr3t/key+x=%41!*"), "s3cr3t/key***");
        let body = b"{\"m\":\"s3cr3t%2Fkey%2Bx%3D%2541!*\"}";
        assert_eq!(&*key.redact_bytes(body), b"{\"m\":\"***\"}");
        // Review: an error page that HTML-escapes the request it quotes.
        let key = ClientKey::new("Sx9<a&b>\"c'd").unwrap();
        let page = "<p>GET /v?client_key=Sx9&lt;a&amp;b&gt;&quot;c&#39;d&amp;model_id=a</p>";
        assert_eq!(
            key.redact(page),
            "<p>GET /v?client_key=***&amp;model_id=a</p>"
        );
        assert_eq!(key.redact("a &amp; b &#; &#xZZ;"), "a &amp; b &#; &#xZZ;");
    }
}

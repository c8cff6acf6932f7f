//! The `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` URL of a shared limit,
//! which shows its password as `***` wherever it is printed.

use super::error::SharedLimitError;
use std::fmt;

/// A Redis URL whose `Display` and `Debug` hide the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    text: String,
    shown: String,
    /// The password as written (percent-encoded) and decoded, for redacting
    /// error texts that might quote either.
    secrets: Vec<String>,
}

impl RedisUrl {
    /// Checks the shape of `text`; the message of the error names the URL
    /// with its password hidden.
    ///
    /// # Errors
    /// [`SharedLimitError::BadUrl`]: a text that is not `redis://HOST[:PORT][/DB]` with an optional
    /// `[USER]:PASSWORD@` before the host.
    ///
    /// # Examples
    /// ```
    /// use restb::shared_limit::RedisUrl;
    /// let url = RedisUrl::parse("redis://:hunter2@127.0.0.1:6380/3").unwrap();
    /// assert_eq!(url.to_string(), "redis://:***@127.0.0.1:6380/3");
    /// ```
    pub fn parse(text: &str) -> Result<RedisUrl, SharedLimitError> {
        let text = text.trim();
        let Some(rest) = text.strip_prefix("redis://") else {
            let shown = redact_any(text);
            return Err(SharedLimitError::BadUrl(format!(
                "{shown}: not a redis:// URL"
            )));
        };
        // The host starts after the last `@`: a password may hold `/`.
        let (userinfo, after_userinfo) = match rest.rsplit_once('@') {
            Some((userinfo, after)) => (Some(userinfo), after),
            None => (None, rest),
        };
        let (host_port, path) = after_userinfo
            .split_once('/')
            .unwrap_or((after_userinfo, ""));
        // A query may hold a password too (`?password=`, as redis-py takes).
        let shown_rest = hide_query(after_userinfo);
        let mut secrets = Vec::new();
        let shown = match userinfo {
            Some(info) => {
                // Without a `:` the whole of it is hidden: redis-cli takes
                // `redis://PASSWORD@HOST` as a password.
                let (shown_user, secret) = match info.split_once(':') {
                    Some((user, password)) => (format!("{user}:"), password),
                    None => (String::new(), info),
                };
                if !secret.is_empty() {
                    secrets.push(secret.to_string());
                    let decoded = percent_decode(secret);
                    if decoded != secret {
                        secrets.push(decoded);
                    }
                }
                format!("redis://{shown_user}***@{shown_rest}")
            }
            None => format!("redis://{shown_rest}"),
        };
        let fail = |why: &str| Err(SharedLimitError::BadUrl(format!("{shown}: {why}")));
        let (host, port) = split_port(host_port);
        if host.is_empty() {
            return fail("no host");
        }
        if userinfo.is_some_and(|info| info.contains(['/', '?', '#'])) {
            return fail("a password holding /, ? or # must be percent-encoded (%2F, %3F, %23)");
        }
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if port.is_some_and(|p| !digits(p) || p.parse::<u16>().map_or(true, |p| p == 0)) {
            return fail("the port is not a number from 1 to 65535");
        }
        if !path.is_empty() && path.parse::<u32>().is_err() {
            return fail("the database after the host is not a number");
        }
        // The redis crate reads a userinfo without `:` as a user name and
        // sends no AUTH; redis-cli reads it as the password, and so does
        // this URL's display: connect as `:PASSWORD@`.
        let text = match userinfo.filter(|info| !info.contains(':')) {
            Some(password) => format!("redis://:{password}@{after_userinfo}"),
            None => text.to_string(),
        };
        Ok(RedisUrl {
            text,
            shown,
            secrets,
        })
    }

    /// The full URL, password included: only for connecting.
    pub(crate) fn expose(&self) -> &str {
        &self.text
    }

    /// `text` with the password (as written or decoded) replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        self.secrets
            .iter()
            .fold(text.to_string(), |text, secret| text.replace(secret, "***"))
    }
}

/// `host[:port]`, with `[v6]` hosts kept whole.
fn split_port(host_port: &str) -> (&str, Option<&str>) {
    if let Some(rest) = host_port.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':')),
            None => ("", None),
        };
    }
    match host_port.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (host_port, None),
    }
}

/// `text` with any query (from the first `?`) shown as `?***`.
fn hide_query(text: &str) -> String {
    match text.split_once('?') {
        Some((before, _)) => format!("{before}?***"),
        None => text.to_string(),
    }
}

/// For a text that is not a `redis://` URL: hide whatever may be a secret,
/// what sits before the last `@` (after the scheme; a password may hold a
/// `?`) and then any query (`?pass=`).
fn redact_any(text: &str) -> String {
    let Some((before, after)) = text.rsplit_once('@') else {
        return hide_query(text);
    };
    let scheme_end = before.find("://").map_or(0, |i| i + 3);
    format!("{}***@{}", &before[..scheme_end], hide_query(after))
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({})", self.shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_prints() {
        let url = RedisUrl::parse("redis://me:p%40ss@db.example:6379/2").unwrap();
        assert_eq!(url.to_string(), "redis://me:***@db.example:6379/2");
        assert_eq!(
            format!("{url:?}"),
            "RedisUrl(redis://me:***@db.example:6379/2)"
        );
        assert_eq!(url.expose(), "redis://me:p%40ss@db.example:6379/2");
        assert_eq!(url.redact("bad p@ss or p%40ss"), "bad *** or ***");
        let plain = RedisUrl::parse("redis://127.0.0.1").unwrap();
        assert_eq!(plain.to_string(), "redis://127.0.0.1");
        assert_eq!(plain.redact("x"), "x");
    }

    #[test]
    fn bad_urls_are_refused_without_their_password() {
        for (text, why) in [
            ("http://:pw@h", "not a redis:// URL"),
            ("redis://:pw@", "no host"),
            ("redis://:pw@h:99999", "port"),
            ("redis://:pw@h:0", "port"),
            ("redis://:pw@h/db", "database"),
        ] {
            let err = RedisUrl::parse(text).unwrap_err().to_string();
            assert!(err.contains(why), "{text}: {err}");
            assert!(!err.contains("pw"), "{err}");
        }
        assert!(RedisUrl::parse("redis://[::1]:7000/0").is_ok());
    }

    /// Regression: a password holding `/` ended the host early, and a
    /// refused URL then printed whole; a password given without its `:`
    /// (redis-cli's form) or in a query printed too.
    #[test]
    fn a_password_prints_in_no_form_it_can_take() {
        let err = RedisUrl::parse("redis://:pa/ss@127.0.0.1:6379/0")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("redis://:***@127.0.0.1:6379/0: "), "{err}");
        assert!(err.contains("percent-encoded"), "{err}");
        let url = RedisUrl::parse("redis://:pa%2Fss@127.0.0.1:6379/0").unwrap();
        assert_eq!(url.to_string(), "redis://:***@127.0.0.1:6379/0");
        assert_eq!(url.redact("auth pa/ss"), "auth ***");
        assert!(RedisUrl::parse("redis://h:+80")
            .unwrap_err()
            .to_string()
            .contains("port"));
        let url = RedisUrl::parse("redis://TopS3cret@127.0.0.1:6379").unwrap();
        assert_eq!(url.to_string(), "redis://***@127.0.0.1:6379");
        assert_eq!(url.redact("NOAUTH TopS3cret"), "NOAUTH ***");
        for text in [
            "redis://:pa/ss@",
            "redis://:pa/ss@h:0",
            "redis+unix:///s?pass=pw",
            "rediss://user:pw@h",
            "http://pw@h",
            // Review: a `?` in the password of another scheme split it
            // before the `@` was looked for, and a query password printed.
            "rediss://:pw?pw@127.0.0.1:6379/0",
            "REDIS://:pw?x@h",
            "redis://127.0.0.1:6379/0?password=pw",
            "redis://:x@127.0.0.1:6379/0?password=pw",
        ] {
            let err = RedisUrl::parse(text).unwrap_err().to_string();
            assert!(
                !err.contains("pw") && !err.contains("pa/ss"),
                "{text}: {err}"
            );
        }
    }
}

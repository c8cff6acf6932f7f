//! The `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` URL of a shared limit,
//! which shows its password as `***` wherever it is printed.

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
    /// A text that is not `redis://HOST[:PORT][/DB]` with an optional
    /// `[USER]:PASSWORD@` before the host.
    ///
    /// # Examples
    /// ```
    /// use restb::shared_limit::RedisUrl;
    /// let url = RedisUrl::parse("redis://:hunter2@127.0.0.1:6380/3").unwrap();
    /// assert_eq!(url.to_string(), "redis://:***@127.0.0.1:6380/3");
    /// ```
    pub fn parse(text: &str) -> Result<RedisUrl, String> {
        let text = text.trim();
        let Some(rest) = text.strip_prefix("redis://") else {
            let shown = redact_any(text);
            return Err(format!("{shown}: not a redis:// URL"));
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (Some(userinfo), host_port),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            Some(info) => match info.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (info, None),
            },
            None => ("", None),
        };
        let mut secrets = Vec::new();
        let shown = match (userinfo, password) {
            (Some(_), Some(password)) if !password.is_empty() => {
                secrets.push(password.to_string());
                let decoded = percent_decode(password);
                if decoded != password {
                    secrets.push(decoded);
                }
                format!("redis://{user}:***@{host_port}{}", slash(path))
            }
            _ => text.to_string(),
        };
        let fail = |why: &str| Err(format!("{shown}: {why}"));
        let (host, port) = split_port(host_port);
        if host.is_empty() {
            return fail("no host");
        }
        if port.is_some_and(|p| p.parse::<u16>().map_or(true, |p| p == 0)) {
            return fail("the port is not a number from 1 to 65535");
        }
        if !path.is_empty() && path.parse::<u32>().is_err() {
            return fail("the database after the host is not a number");
        }
        Ok(RedisUrl {
            text: text.to_string(),
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

fn slash(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("/{path}")
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

/// For a text that failed to parse: hide whatever sits between `:` and
/// the last `@`, since it may be a password.
fn redact_any(text: &str) -> String {
    let Some((before, after)) = text.rsplit_once('@') else {
        return text.to_string();
    };
    let scheme_end = before.find("://").map_or(0, |i| i + 3);
    match before[scheme_end..].find(':') {
        Some(colon) => format!("{}:***@{after}", &before[..scheme_end + colon]),
        None => text.to_string(),
    }
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
            let err = RedisUrl::parse(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
            assert!(!err.contains("pw"), "{err}");
        }
        assert!(RedisUrl::parse("redis://[::1]:7000/0").is_ok());
    }
}

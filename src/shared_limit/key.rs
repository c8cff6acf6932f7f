//! The name of a shared schedule in Redis, derived from the client key.
//!
//! The name is the first 128 bits of SHA-256 over a domain tag, the API's
//! base URL (the region, or `--base-url`) and the client key. SHA-256
//! because it is one-way: whoever can read Redis learns neither the key nor
//! a way to recover it (a client key has far too much entropy to guess one
//! against the hash), and it is already in the build (rustls uses `ring`).
//! 128 bits because the name only has to be unique among the keys that
//! share one Redis: a collision is out of reach at that length. The domain
//! tag keeps the value useless for anything but naming this schedule.

use crate::api::ClientKey;
use std::fmt;

/// Tags the hash, so it can never equal a hash of the key made elsewhere.
const DOMAIN: &[u8] = b"restb shared limit v1\0";

/// The Redis names of one schedule (one client key at one API address).
#[derive(Clone, PartialEq, Eq)]
pub struct ScheduleKey {
    /// `restb:{HEX}`: the braces keep every key of a schedule in one slot,
    /// should the Redis be a cluster.
    prefix: String,
}

impl ScheduleKey {
    /// The schedule of `key` at `base_url`.
    ///
    /// # Examples
    /// ```
    /// use restb::api::ClientKey;
    /// use restb::shared_limit::ScheduleKey;
    /// let key = ClientKey::new("s3cret").unwrap();
    /// let name = ScheduleKey::new(&key, "https://api-us.restb.ai").to_string();
    /// assert!(name.starts_with("restb:{") && !name.contains("s3cret"));
    /// ```
    pub fn new(key: &ClientKey, base_url: &str) -> ScheduleKey {
        let gateway = gateway_name(base_url);
        let mut input = Vec::with_capacity(DOMAIN.len() + gateway.len() + 64);
        input.extend_from_slice(DOMAIN);
        input.extend_from_slice(gateway.as_bytes());
        input.push(0);
        input.extend_from_slice(key.expose().as_bytes());
        let digest = ring::digest::digest(&ring::digest::SHA256, &input);
        let hex: String = digest.as_ref()[..16]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        ScheduleKey {
            prefix: format!("restb:{{{hex}}}"),
        }
    }

    /// The Redis key of one part of the schedule.
    pub(super) fn part(&self, part: &str) -> String {
        format!("{}:{part}", self.prefix)
    }
}

/// The API address as one name however `base_url` spells it: scheme and
/// host in lower case, without the scheme's default port or a trailing
/// slash (an embedder's review: `https://API-US.restb.ai:443` named
/// another schedule than `https://api-us.restb.ai`). Two names of one host
/// (`localhost`, `127.0.0.1`: the review's two schedules, 14 429s) stay
/// two: only DNS could tell. An address that does not parse is taken as written.
fn gateway_name(base_url: &str) -> String {
    let trimmed = base_url.trim().trim_end_matches('/');
    let Ok(uri) = trimmed.parse::<ureq::http::Uri>() else {
        return trimmed.to_string();
    };
    let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
        return trimmed.to_string();
    };
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    };
    let port = uri
        .port_u16()
        .filter(|port| Some(*port) != default_port)
        .map_or(String::new(), |port| format!(":{port}"));
    let path = uri.path().trim_end_matches('/');
    format!("{scheme}://{}{port}{path}", host.to_ascii_lowercase())
}

impl fmt::Display for ScheduleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.prefix)
    }
}

impl fmt::Debug for ScheduleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScheduleKey({})", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_name_per_key_and_address_and_no_key_in_it() {
        let a = ClientKey::new("key-a").unwrap();
        let b = ClientKey::new("key-b").unwrap();
        let us = "https://api-us.restb.ai";
        let name = ScheduleKey::new(&a, us);
        assert_eq!(name, ScheduleKey::new(&a, "https://api-us.restb.ai/"));
        assert_ne!(name, ScheduleKey::new(&b, us));
        assert_ne!(name, ScheduleKey::new(&a, "https://api-eu.restb.ai"));
        let text = name.to_string();
        assert_eq!(text.len(), "restb:{}".len() + 32);
        assert!(!text.contains("key-a"));
        assert_eq!(name.part("tat"), format!("{text}:tat"));
    }

    /// One address spelled several ways is one schedule; another port,
    /// path or scheme is another.
    #[test]
    fn an_address_spelled_another_way_names_the_same_schedule() {
        let key = ClientKey::new("key-a").unwrap();
        let name = |url| ScheduleKey::new(&key, url);
        let us = name("https://api-us.restb.ai");
        for same in [
            "https://API-US.restb.ai",
            "HTTPS://api-us.restb.ai:443/",
            " https://api-us.restb.ai// ",
        ] {
            assert_eq!(name(same), us, "{same}");
        }
        assert_eq!(name("http://127.0.0.1:80/"), name("http://127.0.0.1"));
        assert_eq!(
            name("http://127.0.0.1:8080/x/"),
            name("http://127.0.0.1:8080/x")
        );
        for other in [
            "http://api-us.restb.ai",
            "https://api-us.restb.ai:8443",
            "https://api-us.restb.ai/proxy",
        ] {
            assert_ne!(name(other), us, "{other}");
        }
    }
}

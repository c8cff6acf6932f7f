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
        let mut input = Vec::with_capacity(DOMAIN.len() + base_url.len() + 64);
        input.extend_from_slice(DOMAIN);
        input.extend_from_slice(base_url.trim_end_matches('/').as_bytes());
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
}

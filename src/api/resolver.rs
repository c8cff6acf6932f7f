//! Name lookup on the caller's thread, so that a deadline for the request
//! costs nothing.
//!
//! ureq's default resolver spawns a thread per request to cut a lookup short
//! whenever any timeout covers the lookup, and `timeout_global` does (79k ->
//! 14k requests per second on loopback, STYLE.md). This one asks it to look up
//! with no timeout, on the calling thread: an IP address needs no lookup at
//! all, and a host name is bounded only by the system resolver's own timeouts
//! (`timeout` and `attempts` in `/etc/resolv.conf`), not by the request's
//! deadline. The lookup's time counts against the deadline, but a lookup that
//! outlasts it is not cut short, and the request overruns it: ureq still
//! gives the connection attempt after it at least a second.

//!
//! ureq resolves before it looks for a pooled connection, so every request
//! asks: an address literal (`127.0.0.1:8080`, always the same answer) is
//! looked up once per agent and remembered.

use parking_lot::Mutex;
use std::net::IpAddr;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// ureq's [`DefaultResolver`], always in its synchronous mode.
#[derive(Debug, Default)]
pub(super) struct CallerThreadResolver {
    inner: DefaultResolver,
    /// The last address literal's answer, by scheme and authority. Each
    /// agent has its own resolver and each thread its own agent: the lock
    /// is not contended.
    literal: Mutex<Option<Literal>>,
}

/// An address literal's answer.
#[derive(Debug)]
struct Literal {
    scheme: String,
    authority: String,
    addrs: ResolvedSocketAddrs,
}

impl Literal {
    /// Whether `uri`'s host is an IP address (the same answer every time).
    fn applies_to(uri: &Uri) -> bool {
        uri.host().is_some_and(|host| {
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok()
        })
    }

    fn answers(&self, uri: &Uri) -> bool {
        uri.scheme_str() == Some(self.scheme.as_str())
            && uri.authority().map(|a| a.as_str()) == Some(self.authority.as_str())
    }
}

impl Resolver for CallerThreadResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let literal = Literal::applies_to(uri);
        if literal {
            if let Some(known) = self.literal.lock().as_ref().filter(|l| l.answers(uri)) {
                return Ok(known.addrs.clone());
            }
        }
        // The default `NextTimeout` never happens: no thread is spawned.
        let addrs = self.inner.resolve(uri, config, NextTimeout::default())?;
        if let (true, Some(scheme), Some(authority)) = (literal, uri.scheme_str(), uri.authority())
        {
            *self.literal.lock() = Some(Literal {
                scheme: scheme.to_string(),
                authority: authority.as_str().to_string(),
                addrs: addrs.clone(),
            });
        }
        Ok(addrs)
    }
}

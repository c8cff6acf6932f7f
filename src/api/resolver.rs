//! Name lookup on the caller's thread, so that a deadline for the whole
//! request costs nothing.
//!
//! ureq's default resolver spawns a thread per request to cut a lookup short
//! whenever any timeout covers the lookup, and `timeout_global` does (79k ->
//! 14k requests per second on loopback, STYLE.md). This one asks it to look up
//! with no timeout, on the calling thread: an IP address needs no lookup at
//! all, and a host name is bounded by the system resolver's own timeout. The
//! request's deadline still holds: it is checked again right after, before
//! the connection is made.

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// ureq's [`DefaultResolver`], always in its synchronous mode.
#[derive(Debug, Default)]
pub(super) struct CallerThreadResolver {
    inner: DefaultResolver,
}

impl Resolver for CallerThreadResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        // The default `NextTimeout` never happens: no thread is spawned.
        self.inner.resolve(uri, config, NextTimeout::default())
    }
}

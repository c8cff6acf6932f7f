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

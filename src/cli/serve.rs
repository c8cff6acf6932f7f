//! `restb mock`: serve the stand-in gateway until interrupted.

use super::args::MockArgs;
use super::{Exit, UsageError};
use restb::mock::{HeaderStyle, MockConfig, MockServer};
use restb::stop::Stop;
use std::net::{Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

pub(super) fn serve(args: &MockArgs, stop: &Stop) -> Result<Exit, UsageError> {
    let header_style = match args.headers.as_str() {
        "kong-legacy" => HeaderStyle::KongLegacy,
        "none" => HeaderStyle::None,
        _ => HeaderStyle::Kong2,
    };
    let config = MockConfig {
        rps: args.rps.map(|r| r.get()),
        latency: Duration::from_secs_f64(args.latency),
        jitter: Duration::from_secs_f64(args.jitter),
        seed: args.seed,
        header_style,
        faults: args.faults,
        max_in_flight: args.max_in_flight.map(NonZeroU32::get),
        hang: Duration::from_secs_f64(args.hang),
        ..MockConfig::default()
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let server = MockServer::start_on(addr, config)
        .map_err(|e| UsageError(format!("--port: cannot listen on {addr}: {e}")))?;
    // Scripts read the URL from the first line of standard output.
    println!("{}", server.base_url());
    eprintln!(
        "mock gateway listening on {}; Ctrl-C to stop",
        server.base_url()
    );
    while stop.sleep(Duration::from_secs(3600)) {}
    let counters = server.counters();
    server.stop();
    eprintln!(
        "served {} requests: {} ok, {} rate-limited, {} client errors, {} injected faults",
        counters.requests,
        counters.ok,
        counters.rate_limited,
        counters.client_errors,
        counters.faults
    );
    Ok(Exit::Success)
}

//! `restb mock`: serve the stand-in gateway until interrupted.

use super::args::MockArgs;
use super::stdout::print_out;
use super::{Exit, UsageError};
use restb::mock::{MockConfig, MockServer};
use restb::stop::Stop;
use std::net::{Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

pub(super) fn serve(args: &MockArgs, stop: &Stop) -> Result<Exit, UsageError> {
    let config = mock_config(args)?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let server = MockServer::start_on(addr, config).map_err(|e| {
        // The configuration was validated above: what is left is the log or the port.
        let message = e.to_string();
        match message.strip_prefix("mock log ") {
            Some(detail) => UsageError(format!("--log: cannot create {detail}")),
            None => UsageError(format!("--port: cannot listen on {addr}: {message}")),
        }
    })?;
    // Scripts read the URL from the first line of standard output.
    print_out(&format!("{}\n", server.base_url()))?;
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

/// The mock's configuration from the flags, or an error naming the flag at fault.
fn mock_config(args: &MockArgs) -> Result<MockConfig, UsageError> {
    let mut config = MockConfig::default();
    config.rps = args.rps.map(NonZeroU32::get);
    config.limiter = args.limiter;
    config.burst = args.burst.map(NonZeroU32::get);
    config.retry_after = args.retry_after;
    config.headers_rps = args.headers_rps.map(NonZeroU32::get);
    config.latency = Duration::from_secs_f64(args.latency);
    config.jitter = Duration::from_secs_f64(args.jitter);
    config.seed = args.seed;
    config.header_style = args.headers;
    config.faults = args.faults;
    config.max_in_flight = args.max_in_flight.map(NonZeroU32::get);
    config.hang = Duration::from_secs_f64(args.hang);
    config.log = args.log.clone();
    config.quota_day = args.quota_day.map(NonZeroU32::get);
    config.quota_month = args.quota_month.map(NonZeroU32::get);
    // Each field of MockConfig is the flag of the same name.
    config.validate().map_err(|e| {
        let flag = e.field.replace('_', "-");
        UsageError(format!("--{flag}: {}", e.message))
    })?;
    Ok(config)
}

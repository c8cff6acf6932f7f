//! The stand-in gateway: a Restb.ai Vision API behind a rate limiter (Kong's fixed
//! window by default), on loopback, for tests, `restb demo`, `restb mock` and benchmarks.
//!
//! It speaks just enough HTTP/1.1 (keep-alive, Content-Length bodies) over plain
//! `std::net`, one thread per connection with a small stack, so a thousand slow
//! requests can be in flight at once. See RESTB_API.md for what it imitates:
//! per-key fixed one-second windows counted on arrival, Kong's header styles and
//! 429 body, API-style errors, and fake but deterministic solutions per model.
//! Other gateways of RESTB_API.md are one [`LimiterKind`] away: a sliding window that
//! counts rejected requests, nginx's leaky bucket with `Retry-After: 1`, a token
//! bucket with a small burst; and [`MockConfig::headers_rps`] puts the rate-limit
//! headers of another, higher limit on the replies while the limiter rejects.
//! On top of that it can inject upstream failures ([`Fault`], drawn per request
//! from a seeded [`FaultMix`]), limit in-flight requests per key
//! ([`MockConfig::max_in_flight`]), and log every request it answers
//! ([`MockConfig::log`]) so figures can be measured where the gateway sees them.
//!
//! Module map: `config` (what to imitate), `server` (accept loop, counters, stop),
//! `conn` (one connection), `http` (parsing and responses), `gateway` (the decision
//! on one request) and its `request` (the API's parameters and errors), `limit` (one
//! limiter kind per file, and what their replies carry), `faults`, `answers`
//! (fake solutions), `request_log`.
//!
//! ```no_run
//! use restb::mock::{MockConfig, MockServer};
//! use std::time::Duration;
//!
//! let mut config = MockConfig::default();
//! config.rps = Some(4);
//! config.latency = Duration::from_millis(1160);
//! let server = MockServer::start(config)?;
//! let url = format!("{}/vision/v2/predict?client_key=k&model_id=re_logo&image_url=x", server.base_url());
//! # let _ = url;
//! println!("{:?}", server.counters());
//! server.stop();
//! # Ok::<(), std::io::Error>(())
//! ```

mod answers;
mod arrival;
mod config;
mod conn;
mod faults;
mod gateway;
mod http;
mod limit;
mod request_log;
mod server;

pub use config::{ConfigError, HeaderStyle, LimiterKind, MockConfig, DEFAULT_BURST, DEFAULT_HANG};
pub use faults::{Fault, FaultMix, FaultSpecError};
pub use server::{Arrival, MockCounters, MockServer, MAX_ARRIVALS};

pub(crate) use server::Shared;

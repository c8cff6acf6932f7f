//! A shared limit: one schedule of request starts for every process (and
//! every embedding tool) on one client key, held in Redis (feature `redis`).
//!
//! The gateway counts every request of a key together, wherever it comes
//! from. Processes that pace themselves collide; one GCRA in Redis, updated
//! by one atomic Lua script per reservation, makes the sharing exact (the
//! design of redis-cell and go-redis's redis_rate):
//! - [`SharedLimit::reserve`] books the next start and answers "start in
//!   t", measured on Redis's clock (`TIME`) and mapped onto ours through
//!   the round trip, so the hosts' clocks do not matter. Callers sleep
//!   until their start; nobody polls. A step of Redis's own clock (or a
//!   failover to a replica whose clock differs) holds no start: the
//!   scripts shift the times kept by a step back, and the mapping drops
//!   the samples from before a step.
//! - [`SharedLimit::pause`] writes a pause (a spent window, a
//!   `Retry-After`) with its expiry; every later reservation of every
//!   process starts after it.
//! - A heartbeat thread registers the process, its `--rps` and its pacing
//!   margin: the schedule runs at the smallest live rate (and the process
//!   says so once), a process that joins starts from the widest margin,
//!   and the number of live processes sets the safe local share
//!   ([`SharedSchedule`]) while Redis is lost.
//!
//! - Each actual start is published to the others ([`SharedLimit::started`]),
//!   so a process keeps one interval after anyone's late start, not only
//!   after its own; so is each round of 429s that widened a process's
//!   pacing margin ([`SharedLimit::widened`]), and every process widens
//!   its own for it.
//!
//! - [`RedisBudget`] counts the requests of every process on the key per
//!   calendar month against one budget (`--shared-budget`).
//!
//! The Redis keys are named by a hash of the client key ([`ScheduleKey`]);
//! the key never reaches Redis, and the URL's password prints as `***`.

mod background;
mod beat;
mod budget;
mod client;
mod clock_map;
mod error;
mod key;
mod rounds;
mod schedule;
mod script;
mod starts;
mod teller;
mod url;

/// The integration tests' redis-server of a test's own (no mock of Redis).
#[cfg(test)]
#[allow(dead_code)]
#[path = "../../tests/common/redis_server.rs"]
mod redis_server;

pub use budget::RedisBudget;
pub use client::{Grant, Peers, RoundTrips, SharedLimit, SharedLimitConfig, SHORTEST_HEARTBEAT};
pub use error::SharedLimitError;
pub use key::ScheduleKey;
pub use schedule::{Booking, SharedSchedule, LOOKAHEAD};
pub use url::RedisUrl;

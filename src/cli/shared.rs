//! `--shared-limit URL` (or `RESTB_SHARED_LIMIT`): join the schedule that
//! every process on this client key shares in Redis, before any request is
//! sent, and say at the end what its round trips cost (the stats line and
//! `--stats-json`'s `shared_limit`).

use super::args::RunArgs;
use super::UsageError;
use restb::api::ClientKey;
use restb::limiter::Rate;
use restb::shared_limit::{RedisUrl, ScheduleKey, SharedLimit, SharedLimitConfig, SharedSchedule};
use std::num::NonZeroU64;
use std::sync::Arc;

/// The environment variable read when the flag is not given.
const ENV: &str = "RESTB_SHARED_LIMIT";

/// The shared limit asked for, if any: `--shared-limit`, else
/// `RESTB_SHARED_LIMIT`, parsed (an error names the one it came from, the
/// password hidden).
pub(super) fn url(args: &RunArgs) -> Result<Option<RedisUrl>, UsageError> {
    let (text, source) = match &args.shared_limit {
        Some(text) => (text.clone(), "--shared-limit"),
        None => match std::env::var(ENV) {
            Ok(text) if !text.trim().is_empty() => (text, ENV),
            _ => return Ok(None),
        },
    };
    RedisUrl::parse(&text)
        .map(Some)
        .map_err(|e| UsageError(format!("{source} {e}")))
}

/// Every check of the shared limit's flags that needs no connection (a
/// dry run makes these): its URL, a pace to share, and a URL for
/// `--shared-budget` to be counted in. `rate` is `None` in concurrency
/// mode, which paces nothing and so cannot share a pace.
///
/// # Errors
/// As above, before any request.
pub(super) fn check(args: &RunArgs, rate: Option<Rate>) -> Result<Option<RedisUrl>, UsageError> {
    let url = url(args)?;
    if let (Some(url), None) = (&url, rate) {
        return Err(UsageError(format!(
            "--shared-limit {url}: needs --mode rate (a shared schedule paces request starts)"
        )));
    }
    if args.shared_budget.is_some() && url.is_none() {
        return Err(UsageError(
            "--shared-budget: needs --shared-limit URL (or RESTB_SHARED_LIMIT): the budget is counted in that Redis".to_string(),
        ));
    }
    Ok(url)
}

/// Connects to the shared schedule if one was asked for (see [`check`]).
///
/// # Errors
/// What [`check`] finds, a Redis that cannot be reached or refuses the
/// password: all before any request, the URL's password hidden.
pub(super) fn connect(
    args: &RunArgs,
    key: &ClientKey,
    base_url: &str,
    rate: Option<Rate>,
) -> Result<Option<Arc<SharedSchedule>>, UsageError> {
    let (Some(url), Some(rate)) = (check(args, rate)?, rate) else {
        return Ok(None);
    };
    let mut config = SharedLimitConfig::new(url, ScheduleKey::new(key, base_url), rate);
    config.budget = args.shared_budget.map(NonZeroU64::get);
    let limit = SharedLimit::connect(config).map_err(|e| UsageError(e.to_string()))?;
    let peers = limit.peers();
    log::info!(
        "shared limit at {}: {} process(es) on this key",
        limit.url(),
        peers.live
    );
    Ok(Some(Arc::new(SharedSchedule::new(limit))))
}

/// The shared limit's figures for the stats: reservations and their Redis
/// round trips (none measured: `null`).
pub(super) fn stats(schedule: &SharedSchedule) -> super::run::SharedStats {
    let trips = schedule.limit().round_trips();
    let measured = |value: u64| (trips.count > 0).then_some(value);
    super::run::SharedStats {
        reservations: trips.count,
        redis_round_trip_p50_us: measured(trips.p50_us),
        redis_round_trip_p99_us: measured(trips.p99_us),
    }
}

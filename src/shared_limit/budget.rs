//! [`RedisBudget`]: a budget of requests per calendar month (UTC) shared by
//! every process on one client key, counted in Redis next to the shared
//! schedule (`--shared-budget N`).
//!
//! One atomic script per start reads the month's count and adds one only
//! below the limit, so the processes together never start more than N in a
//! month, and a refused start is not counted (a larger N later is not eaten
//! by refusals). The month is named by Redis's clock (`TIME`), as the
//! schedule's times are: hosts whose clocks disagree at a month's end would
//! otherwise count in two months' keys. The count expires some days after
//! its month ends.

use super::error::SharedLimitError;
use super::key::ScheduleKey;
use super::url::RedisUrl;
use crate::calendar::DAY;
use crate::pool::BudgetCounter;
use parking_lot::Mutex;
use redis::{Connection, Script};
use std::time::Duration;

/// The month's key: `KEYS[1]` followed by the calendar month (`2026-11`,
/// UTC) of Redis's clock, or of the Unix time `ARGV[n]` where a test gives
/// one (Howard Hinnant's `civil_from_days`, as `calendar::year_month`).
const MONTH_KEY: &str = r"
local function month_key(prefix, given)
  local secs = tonumber(given)
  if secs == nil then secs = tonumber(redis.call('TIME')[1]) end
  local z = math.floor(secs / 86400) + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local month = mp < 10 and mp + 3 or mp - 9
  local year = yoe + era * 400 + (month <= 2 and 1 or 0)
  return prefix .. string.format('%04d-%02d', year, month)
end
";

/// Takes one from the month's count if it is below the limit `ARGV[1]`:
/// the count after, or -1 when spent. The key expires `ARGV[2]` seconds
/// after its first start.
const TAKE: &str = r"
local month = month_key(KEYS[1], ARGV[3])
local count = tonumber(redis.call('GET', month) or '0')
if count >= tonumber(ARGV[1]) then return -1 end
count = redis.call('INCR', month)
if count == 1 then redis.call('EXPIRE', month, ARGV[2]) end
return count
";

/// The month's count so far (the month of the Unix time `ARGV[1]` where a
/// test gives one).
const SPENT: &str = r"
return tonumber(redis.call('GET', month_key(KEYS[1], ARGV[1])) or '0')
";

/// How long a month's count is kept after its first start.
const KEEP: u64 = 35 * DAY;

/// A monthly budget of requests in Redis; see the module docs.
pub struct RedisBudget {
    url: RedisUrl,
    key: ScheduleKey,
    limit: u64,
    client: redis::Client,
    timeout: Duration,
    /// `None` after a failed call: the next one reconnects.
    con: Mutex<Option<Connection>>,
    take: Script,
    spent: Script,
    /// The smallest budget of the live processes on the key, as their
    /// heartbeats tell (see [`RedisBudget::held_to`]).
    smallest: Option<Box<dyn Fn() -> Option<u64> + Send + Sync>>,
}

impl std::fmt::Debug for RedisBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBudget")
            .field("url", &self.url)
            .field("key", &self.key)
            .field("limit", &self.limit)
            .field("connected", &self.con.lock().is_some())
            .finish_non_exhaustive()
    }
}

impl RedisBudget {
    /// Connects to the Redis at `url` for the budget of `limit` requests a
    /// month on the schedule `key`; `timeout` bounds each call.
    ///
    /// # Errors
    /// [`SharedLimitError::Redis`] when Redis cannot be reached or refuses
    /// the password.
    pub fn connect(
        url: RedisUrl,
        key: ScheduleKey,
        limit: u64,
        timeout: Duration,
    ) -> Result<RedisBudget, SharedLimitError> {
        let client =
            redis::Client::open(url.expose()).map_err(|e| SharedLimitError::redis(&url, &e))?;
        let budget = RedisBudget {
            url,
            key,
            limit,
            client,
            timeout,
            con: Mutex::new(None),
            take: Script::new(&format!("{MONTH_KEY}{TAKE}")),
            spent: Script::new(&format!("{MONTH_KEY}{SPENT}")),
            smallest: None,
        };
        let mut con = budget
            .open()
            .map_err(|e| SharedLimitError::redis(&budget.url, &e))?;
        // A password refused (or none given where one is wanted) fails
        // here, not at the first start.
        redis::cmd("PING")
            .query::<redis::Value>(&mut con)
            .map_err(|e| SharedLimitError::redis(&budget.url, &e))?;
        *budget.con.lock() = Some(con);
        Ok(budget)
    }

    /// Holds the month's count to the smallest budget of the live
    /// processes on the key too, as `smallest` tells it (a shared limit's
    /// [`Peers::smallest_budget`](super::Peers::smallest_budget)), as the
    /// schedule holds to the smallest rate (without it, processes that
    /// disagree on the budget each count to their own, and the largest
    /// wins).
    #[must_use]
    pub fn held_to(mut self, smallest: impl Fn() -> Option<u64> + Send + Sync + 'static) -> Self {
        self.smallest = Some(Box::new(smallest));
        self
    }

    /// Requests left this month for every process on the key.
    ///
    /// # Errors
    /// [`SharedLimitError::Redis`] when Redis cannot be asked.
    pub fn remaining(&self) -> Result<u64, SharedLimitError> {
        self.remaining_at(None)
    }

    /// [`RedisBudget::remaining`] in the month of Unix time `at`, or of
    /// Redis's clock.
    fn remaining_at(&self, at: Option<u64>) -> Result<u64, SharedLimitError> {
        let spent: u64 = self.call(|con, months| self.spent.key(months).arg(at).invoke(con))?;
        Ok(self.limit().saturating_sub(spent))
    }

    /// Takes one start from the budget of the month of Unix time `at`, or
    /// of Redis's clock: whether one was left.
    fn take_at(&self, at: Option<u64>) -> Result<bool, SharedLimitError> {
        let count: i64 = self.call(|con, months| {
            let mut invocation = self.take.key(months);
            invocation.arg(self.limit()).arg(KEEP).arg(at);
            invocation.invoke(con)
        })?;
        Ok(count >= 0)
    }

    /// The monthly limit in force: ours, or a live process's smaller one.
    pub fn limit(&self) -> u64 {
        let smallest = self.smallest.as_ref().and_then(|smallest| smallest());
        smallest.map_or(self.limit, |smallest| smallest.min(self.limit))
    }

    fn open(&self) -> redis::RedisResult<Connection> {
        let con = self.client.get_connection_with_timeout(self.timeout)?;
        con.set_read_timeout(Some(self.timeout))?;
        con.set_write_timeout(Some(self.timeout))?;
        Ok(con)
    }

    /// Runs `query` with the prefix of the months' keys (the script names
    /// the month), reconnecting first if the last call failed. A
    /// connection that Redis closed (an idle client past its `timeout`
    /// setting: a run held by a long pause) is opened again and the query
    /// made once more: a command written to a closed connection never ran.
    fn call<T>(
        &self,
        mut query: impl FnMut(&mut Connection, &str) -> redis::RedisResult<T>,
    ) -> Result<T, SharedLimitError> {
        let months = self.key.part("budget:");
        let mut slot = self.con.lock();
        let mut fresh = false;
        loop {
            let con = match slot.as_mut() {
                Some(con) => con,
                None => {
                    fresh = true;
                    let con = self
                        .open()
                        .map_err(|e| SharedLimitError::redis(&self.url, &e))?;
                    slot.insert(con)
                }
            };
            match query(con, &months) {
                Ok(answer) => return Ok(answer),
                Err(error) => {
                    *slot = None;
                    if fresh || !error.is_connection_dropped() {
                        return Err(SharedLimitError::redis(&self.url, &error));
                    }
                }
            }
        }
    }
}

impl BudgetCounter for RedisBudget {
    fn take(&self) -> Result<bool, String> {
        self.take_at(None).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ClientKey;
    use crate::calendar::{days_from_civil, month_name};
    use crate::shared_limit::redis_server::Redis;

    fn connect(redis: &Redis, limit: u64) -> Result<RedisBudget, SharedLimitError> {
        let key = ClientKey::new("budget-test-key-0001").unwrap();
        let schedule = ScheduleKey::new(&key, "http://127.0.0.1:1");
        let url = RedisUrl::parse(&redis.url()).unwrap();
        RedisBudget::connect(url, schedule, limit, Duration::from_secs(5))
    }

    fn budget(redis: &Redis, limit: u64) -> RedisBudget {
        connect(redis, limit).unwrap()
    }

    /// A connection of the test's own, to read what the scripts wrote.
    fn admin(redis: &Redis) -> Connection {
        redis::Client::open(redis.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// The script names the month as the Rust calendar does, at month
    /// and year ends, leap days and a century's non-leap year.
    #[test]
    fn the_script_counts_each_start_in_its_calendar_month() {
        let redis = Redis::start();
        let budget = budget(&redis, 1_000);
        let mut con = admin(&redis);
        let mut seconds = vec![0, 20_785 * DAY + 12 * 3600];
        for (year, month) in [(2024, 3), (2025, 1), (2026, 12), (2100, 3), (2400, 3)] {
            let first = days_from_civil(year, month) * DAY;
            seconds.extend([first - 1, first]);
        }
        let mut spent = std::collections::HashMap::<String, u64>::new();
        for secs in seconds {
            assert!(budget.take_at(Some(secs)).unwrap());
            let month = month_name(secs);
            let count = spent.entry(month.clone()).or_default();
            *count += 1;
            let key = format!("{}{month}", budget.key.part("budget:"));
            let counted: Option<u64> = redis::cmd("GET").arg(&key).query(&mut con).unwrap();
            assert_eq!(counted, Some(*count), "{secs} s is in {month}");
            assert_eq!(budget.remaining_at(Some(secs)).unwrap(), 1_000 - *count);
        }
        // 2100 is no leap year: its last second of February is in February.
        assert_eq!(month_name(days_from_civil(2100, 3) * DAY - 1), "2100-02");
    }

    /// Regression (a review's finding): Redis's `timeout` setting closed
    /// the budget's connection while a run was held by a long pause, and
    /// the next start's count failed: the run ended as if Redis were lost.
    #[test]
    fn a_connection_redis_closed_for_idling_is_opened_again() {
        let redis = Redis::start();
        let mut con = admin(&redis);
        redis::cmd("CONFIG")
            .arg(&["SET", "timeout", "1"][..])
            .query::<()>(&mut con)
            .unwrap();
        let budget = budget(&redis, 5);
        assert!(budget.take_at(None).unwrap());
        std::thread::sleep(Duration::from_millis(3500));
        assert!(budget.take_at(None).unwrap());
        assert_eq!(budget.remaining().unwrap(), 3);
    }

    /// A review's finding: a Redis that wants a password, and a URL
    /// without one, connected, and failed only at the first start.
    #[test]
    fn a_password_wanted_fails_the_connection() {
        let redis = Redis::start_with(None, Some("budget-pw"));
        let error = connect(&redis, 5).map(|_| ()).unwrap_err().to_string();
        assert!(error.contains("Authentication required"), "{error}");
    }

    /// Without a time given, a start counts in the month `TIME` names.
    /// (Here Redis's clock is ours: the binary under `faketime` in
    /// tests/spend.rs tells the two apart.)
    #[test]
    fn the_month_is_named_by_redis_s_clock() {
        let redis = Redis::start();
        let budget = budget(&redis, 5);
        let mut con = admin(&redis);
        let (secs, _): (u64, u64) = redis::cmd("TIME").query(&mut con).unwrap();
        assert!(budget.take_at(None).unwrap());
        assert_eq!(budget.remaining().unwrap(), 4);
        assert_eq!(budget.remaining_at(Some(secs)).unwrap(), 4);
        let key = format!("{}{}", budget.key.part("budget:"), month_name(secs));
        let count: u64 = redis::cmd("GET").arg(&key).query(&mut con).unwrap();
        assert_eq!(count, 1, "{key}");
    }
}

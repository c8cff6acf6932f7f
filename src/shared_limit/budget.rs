//! [`RedisBudget`]: a budget of requests per calendar month (UTC) shared by
//! every process on one client key, counted in Redis next to the shared
//! schedule (`--shared-budget N`).
//!
//! One atomic script per start reads the month's count and adds one only
//! below the limit, so the processes together never start more than N in a
//! month, and a refused start is not counted (a larger N later is not eaten
//! by refusals). The month is named by this host's UTC clock; the count
//! expires some days after its month ends.

use super::error::SharedLimitError;
use super::key::ScheduleKey;
use super::url::RedisUrl;
use crate::calendar::{month_name, DAY};
use crate::pool::BudgetCounter;
use parking_lot::Mutex;
use redis::{Connection, Script};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Takes one from the month's count if it is below the limit: the count
/// after, or -1 when spent. The key expires 35 days after its first start.
const TAKE: &str = r"
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count >= tonumber(ARGV[1]) then return -1 end
count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return count
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
    script: Script,
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
            script: Script::new(TAKE),
        };
        let con = budget
            .open()
            .map_err(|e| SharedLimitError::redis(&budget.url, &e))?;
        *budget.con.lock() = Some(con);
        Ok(budget)
    }

    /// Requests left this month for every process on the key.
    ///
    /// # Errors
    /// [`SharedLimitError::Redis`] when Redis cannot be asked.
    pub fn remaining(&self) -> Result<u64, SharedLimitError> {
        let spent: Option<u64> = self.call(|con, month| redis::cmd("GET").arg(month).query(con))?;
        Ok(self.limit.saturating_sub(spent.unwrap_or(0)))
    }

    /// The monthly limit.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    fn open(&self) -> redis::RedisResult<Connection> {
        let con = self.client.get_connection_with_timeout(self.timeout)?;
        con.set_read_timeout(Some(self.timeout))?;
        con.set_write_timeout(Some(self.timeout))?;
        Ok(con)
    }

    /// Runs `query` on the month's key, reconnecting first if the last call
    /// failed.
    fn call<T>(
        &self,
        query: impl FnOnce(&mut Connection, &str) -> redis::RedisResult<T>,
    ) -> Result<T, SharedLimitError> {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let month = self.key.part(&format!("budget:{}", month_name(secs)));
        let mut slot = self.con.lock();
        let con = match slot.as_mut() {
            Some(con) => con,
            None => slot.insert(
                self.open()
                    .map_err(|e| SharedLimitError::redis(&self.url, &e))?,
            ),
        };
        let answer = query(con, &month);
        if answer.is_err() {
            *slot = None;
        }
        answer.map_err(|e| SharedLimitError::redis(&self.url, &e))
    }
}

impl BudgetCounter for RedisBudget {
    fn take(&self) -> Result<bool, String> {
        let count: i64 = self
            .call(|con, month| self.script.key(month).arg(self.limit).arg(KEEP).invoke(con))
            .map_err(|e| e.to_string())?;
        Ok(count >= 0)
    }
}

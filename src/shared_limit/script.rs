//! The Lua scripts that hold a schedule in Redis, and their typed calls.
//!
//! Each script reads Redis's own clock (`TIME`) and answers in Redis's
//! time, with the moment it ran: the caller maps that onto its monotonic
//! clock (`clock_map.rs`), so the hosts' clocks (and their offsets from each
//! other, or a `faketime`) never enter. Redis 7 replicates a script by its
//! effects, so calling `TIME` before writing is allowed.
//!
//! Times are kept as microseconds since the epoch of Redis's clock; they fit
//! a Lua number (a double) exactly, and are written with `%.0f` because Lua
//! would print them in exponent form.

use super::key::ScheduleKey;
use redis::{Connection, RedisResult, Script};
use std::time::Duration;

/// Redis's time now (`now`, microseconds). The times the schedule keeps
/// (`tat`, the pause's end) are absolute, so after a step back of Redis's
/// clock, or a failover to a replica whose clock is behind, they would hold
/// every start for as long. Every script (each heartbeat too, so a step
/// during a long pause is seen within a beat) first compares now with the
/// latest time any script saw (`KEYS[CLOCK]`, kept a day) and moves both
/// times back by the difference, deleting one that is then over (its key's
/// expiry is on the clock before the step: left, it would outlive it).
/// Every process on a key must run a restb that does this: an older one
/// writes times on the new clock without saying so.
const CLOCK_PREAMBLE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local back = math.max(0, tonumber(redis.call('GET', KEYS[CLOCK]) or 0) - now)
redis.call('SET', KEYS[CLOCK], string.format('%.0f', now), 'PX', 86400000)
if back > 0 then
  for _, key in ipairs({KEYS[TAT], KEYS[PAUSE]}) do
    local at = tonumber(redis.call('GET', key) or 0) - back
    if at > now then
      redis.call('SET', key, string.format('%.0f', at), 'PX', math.floor((at - now) / 1000) + 1000)
    else
      redis.call('DEL', key)
    end
  end
end
";

/// GCRA: the start is the latest of now (plus the caller's hold, `ARGV[3]`
/// us: its own slots still to come after a loss of Redis), the shared
/// pause's end and the theoretical arrival time (`tat`); `tat` moves one
/// interval on. The
/// interval is the caller's, or the slowest live process's scaled by the
/// caller's margin, whichever is longer. Each slot is numbered (`seq`, one
/// up from the slot before it, kept a day past the last booking): its
/// holder waits to hear that the slot before it started. Returns the start,
/// the interval used, the pause's end (0: none), the time the script ran
/// and the slot's number. After [`CLOCK_PREAMBLE`] (`KEYS[5]`).
const RESERVE: &str = r"
local interval = tonumber(ARGV[1])
local slowest = tonumber(redis.call('GET', KEYS[3]) or 0) * tonumber(ARGV[2])
if slowest > interval then interval = math.floor(slowest) end
local pause = tonumber(redis.call('GET', KEYS[2]) or 0)
local held = now + tonumber(ARGV[3] or 0)
local start = math.max(held, pause, tonumber(redis.call('GET', KEYS[1]) or 0))
local tat = start + interval
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.floor((tat - now) / 1000) + 1000)
local seq = redis.call('INCR', KEYS[4])
redis.call('PEXPIRE', KEYS[4], 86400000)
return {start, interval, pause, now, seq}
";

/// Holds every start of the schedule until now + `ARGV[1]` us (or a later
/// pause already set); the key expires with the pause. Returns the end and
/// the time the script ran. After [`CLOCK_PREAMBLE`] (`KEYS[2]`).
const PAUSE: &str = r"
local stop = math.max(now + tonumber(ARGV[1]), tonumber(redis.call('GET', KEYS[1]) or 0))
redis.call('SET', KEYS[1], string.format('%.0f', stop), 'PX', math.floor((stop - now) / 1000) + 1)
return {stop, now}
";

/// What a heartbeat tells of this process.
#[derive(Debug, Clone, Copy)]
pub(super) struct Registration {
    /// Its allotted interval (`--rps`).
    pub(super) interval: Duration,
    /// Its pacing margin, in parts per million, once it has one.
    pub(super) margin_ppm: Option<u64>,
    /// Its monthly budget (`--shared-budget`), if it has one.
    pub(super) budget: Option<u64>,
}

/// A process's heartbeat: registers `ARGV[1]` with its interval `ARGV[2]` (an
/// empty interval leaves), its pacing margin `ARGV[4]` (parts per
/// million; empty: none yet) and its monthly budget `ARGV[5]` (empty:
/// none) for `ARGV[3]` ms, forgets processes whose heartbeat lapsed, and
/// stores the slowest live interval for RESERVE. Returns the number of
/// live processes, the slowest interval, the widest margin (ppm: Redis
/// turns a script's numbers into integers) and the smallest budget (0:
/// none). After [`CLOCK_PREAMBLE`] (`KEYS[5]`).
const BEAT: &str = r"
local ttl = tonumber(ARGV[3])
if back > 0 then
  -- The heartbeats' ends are Redis times too: after a step back, a process
  -- gone would count as live for as long as the step.
  local beats = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  for i = 1, #beats, 2 do
    redis.call('ZADD', KEYS[1], string.format('%.0f', tonumber(beats[i + 1]) - back), beats[i])
  end
end
if ARGV[2] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[4], ARGV[1])
  redis.call('HDEL', KEYS[8], ARGV[1])
else
  redis.call('ZADD', KEYS[1], string.format('%.0f', now + ttl * 1000), ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  if ARGV[4] ~= '' then redis.call('HSET', KEYS[4], ARGV[1], ARGV[4]) end
  if ARGV[5] ~= '' then redis.call('HSET', KEYS[8], ARGV[1], ARGV[5]) end
end
local horizon = string.format('%.0f', now)
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', horizon)) do
  redis.call('HDEL', KEYS[2], id)
  redis.call('HDEL', KEYS[4], id)
  redis.call('HDEL', KEYS[8], id)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', horizon)
local live = redis.call('ZRANGE', KEYS[1], 0, -1)
local slowest = 0
local widest = 0
local smallest = 0
for _, id in ipairs(live) do
  slowest = math.max(slowest, tonumber(redis.call('HGET', KEYS[2], id) or 0))
  widest = math.max(widest, tonumber(redis.call('HGET', KEYS[4], id) or 0))
  local budget = tonumber(redis.call('HGET', KEYS[8], id) or 0)
  if budget > 0 and (smallest == 0 or budget < smallest) then smallest = budget end
end
if #live > 0 then
  redis.call('SET', KEYS[3], string.format('%.0f', slowest), 'PX', ttl)
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[4], ttl)
  redis.call('PEXPIRE', KEYS[8], ttl)
else
  redis.call('DEL', KEYS[3])
end
return {#live, slowest, widest, smallest}
";

/// A reservation as Redis answered it, in microseconds of Redis's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Reply {
    pub(super) start_us: i64,
    pub(super) interval_us: i64,
    /// The end of the pause set last (in the past when none holds).
    pub(super) pause_us: i64,
    /// When the script ran.
    pub(super) now_us: i64,
    /// The slot's number on the schedule (1, 2, ...: in the order of the
    /// starts).
    pub(super) seq: u64,
}

/// What the heartbeats say about the processes on one schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Beat {
    pub(super) live: u32,
    pub(super) slowest_us: i64,
    /// The widest pacing margin of a live process, in parts per million
    /// (0: none told).
    pub(super) widest_margin_ppm: i64,
    /// The smallest monthly budget of a live process (0: none told).
    pub(super) smallest_budget: u64,
}

/// The three scripts, each sent by EVALSHA (EVAL when Redis lost them,
/// e.g. after a restart).
#[derive(Debug)]
pub(super) struct Scripts {
    reserve: Script,
    pause: Script,
    beat: Script,
}

/// `body` after [`CLOCK_PREAMBLE`], which finds the clock's, `tat`'s and
/// the pause's keys at these places of `KEYS`.
fn with_clock(body: &str, clock: usize, [tat, pause]: [usize; 2]) -> String {
    CLOCK_PREAMBLE
        .replace("KEYS[CLOCK]", &format!("KEYS[{clock}]"))
        .replace("KEYS[TAT]", &format!("KEYS[{tat}]"))
        .replace("KEYS[PAUSE]", &format!("KEYS[{pause}]"))
        + body
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

impl Scripts {
    pub(super) fn new() -> Scripts {
        Scripts {
            reserve: Script::new(&with_clock(RESERVE, 5, [1, 2])),
            pause: Script::new(&with_clock(PAUSE, 2, [3, 1])),
            beat: Script::new(&with_clock(BEAT, 5, [6, 7])),
        }
    }

    /// Books the next start; `margin` scales the slowest process's interval
    /// as the caller's own margin scales its interval (1.002 = 0.2 %).
    pub(super) fn reserve(
        &self,
        con: &mut Connection,
        key: &ScheduleKey,
        interval: Duration,
        margin: f64,
        hold: Duration,
    ) -> RedisResult<Reply> {
        let (start_us, interval_us, pause_us, now_us, seq): (i64, i64, i64, i64, u64) = self
            .reserve
            .key(key.part("tat"))
            .key(key.part("pause"))
            .key(key.part("slowest"))
            .key(key.part("seq"))
            .key(key.part("clock"))
            .arg(micros(interval).max(1))
            .arg(format!("{margin:.6}"))
            .arg(micros(hold))
            .invoke(con)?;
        Ok(Reply {
            start_us,
            interval_us,
            pause_us,
            now_us,
            seq,
        })
    }

    /// Pauses the schedule for `length`; returns the pause's end (later if
    /// a longer pause was already set) and when the script ran, both in
    /// microseconds of Redis's clock.
    pub(super) fn pause(
        &self,
        con: &mut Connection,
        key: &ScheduleKey,
        length: Duration,
    ) -> RedisResult<(i64, i64)> {
        self.pause
            .key(key.part("pause"))
            .key(key.part("clock"))
            .key(key.part("tat"))
            .arg(micros(length))
            .invoke(con)
    }

    /// Registers process `id` as `registration` tells, or with `None`
    /// removes it.
    pub(super) fn beat(
        &self,
        con: &mut Connection,
        key: &ScheduleKey,
        id: &str,
        registration: Option<Registration>,
        ttl: Duration,
    ) -> RedisResult<Beat> {
        let told = |value: Option<u64>| value.map_or(String::new(), |v| v.to_string());
        let interval =
            registration.map_or(String::new(), |r| micros(r.interval).max(1).to_string());
        let margin = told(registration.and_then(|r| r.margin_ppm));
        let budget = told(registration.and_then(|r| r.budget));
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let (live, slowest_us, widest_margin_ppm, smallest_budget): (u32, i64, i64, u64) = self
            .beat
            .key(key.part("procs"))
            .key(key.part("rates"))
            .key(key.part("slowest"))
            .key(key.part("margins"))
            .key(key.part("clock"))
            .key(key.part("tat"))
            .key(key.part("pause"))
            .key(key.part("budgets"))
            .arg(id)
            .arg(interval)
            .arg(ttl_ms)
            .arg(margin)
            .arg(budget)
            .invoke(con)?;
        Ok(Beat {
            live,
            slowest_us,
            widest_margin_ppm,
            smallest_budget,
        })
    }
}

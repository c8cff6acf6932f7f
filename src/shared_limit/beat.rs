//! The heartbeat thread: registers this process and its rate every period,
//! learns how many processes share the schedule and the slowest rate, and
//! reconnects (with backoff) after Redis is lost (the reserving and the
//! publishing connections). On the way out it
//! removes the process, so the others stop counting it at once.

use super::background::{self, Background};
use super::client::Inner;
use crossbeam_channel::RecvTimeoutError;
use redis::Connection;
use std::sync::Arc;
use std::time::Duration;

/// First wait before reconnecting; doubles up to the heartbeat period.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Starts the thread.
pub(super) fn spawn(inner: Arc<Inner>, con: Connection) -> Background {
    background::spawn("restb-shared-limit", move |stopped| {
        let mut con = Some(con);
        let mut backoff = FIRST_BACKOFF;
        let period = inner.config.heartbeat;
        let mut wait = period;
        while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(wait) {
            if tick(&inner, &mut con) {
                backoff = FIRST_BACKOFF;
                wait = period;
            } else {
                wait = backoff;
                backoff = (backoff * 2).min(period);
            }
        }
        if let Some(con) = con.as_mut() {
            let ttl = period.saturating_mul(3);
            let key = &inner.config.key;
            let _ = inner.scripts.beat(con, key, &inner.id, None, ttl);
        }
    })
}

/// One heartbeat, reconnecting first where needed. `false` when Redis is
/// still out of reach.
fn tick(inner: &Inner, con: &mut Option<Connection>) -> bool {
    if con.is_none() {
        *con = inner.open().ok();
    }
    let Some(live) = con.as_mut() else {
        return false;
    };
    match inner.beat(live) {
        Ok(beat) => inner.learn(beat),
        Err(error) => {
            log::debug!("heartbeat: {}", inner.config.url.redact(&error.to_string()));
            *con = None;
            return false;
        }
    }
    if inner.needs_restore() {
        match inner.open() {
            Ok(fresh) => inner.restore(fresh),
            Err(_) => return false,
        }
    }
    if inner.starts.needs_restore() {
        let restored = inner.open().and_then(|con| inner.starts.restore(con));
        return restored.is_ok();
    }
    true
}

//! The seam between the limiter and a schedule of starts held outside this
//! process: GCRA's one arrival time kept where every process on a client
//! key sees it (Redis, in `restb::shared_limit`), instead of in this
//! limiter. The limiter still decides *how* it paces (its learned margin,
//! its local pauses, the gap between its own starts); the shared schedule
//! decides *when* the next start of anyone on the key may be.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A start booked on a shared schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SharedSlot {
    /// When the request may start, on this process's clock.
    pub start: Instant,
    /// The end of a pause that some holder of the schedule set, if one
    /// holds: the limiter voids its own slots booked before it.
    pub paused_until: Option<Instant>,
    /// Not a slot: this process holds enough slots ahead already; ask
    /// again at `start`.
    pub turn: bool,
}

impl SharedSlot {
    /// A slot at `start`, with the end of a pause in force if any.
    pub fn new(start: Instant, paused_until: Option<Instant>) -> SharedSlot {
        SharedSlot {
            start,
            paused_until,
            turn: false,
        }
    }

    /// A turn: no slot was booked; ask again at `at`.
    pub fn turn(at: Instant) -> SharedSlot {
        SharedSlot {
            start: at,
            paused_until: None,
            turn: true,
        }
    }
}

/// A schedule of starts shared with other processes. Implementations must
/// not fail: when the shared store is out of reach they pace locally at a
/// safe share of the rate (see `restb::shared_limit::SharedSchedule`).
pub trait SharedSlots: Send + Sync + fmt::Debug {
    /// Books the first start at or after `earliest`, at least `increment`
    /// after the previous start booked by anyone on the schedule.
    fn reserve(&self, earliest: Instant, increment: Duration) -> SharedSlot;

    /// Holds every holder's starts until `until`; `reason` is for logs.
    fn pause(&self, until: Instant, reason: &str);
}

/// A cheap handle on a [`SharedSlots`], for [`Limiter::shared`] and
/// `PoolConfig::shared`. Two handles are equal when they are the same
/// schedule.
///
/// [`Limiter::shared`]: super::Limiter::shared
#[derive(Clone)]
pub struct SharedPacing(Arc<dyn SharedSlots>);

impl SharedPacing {
    /// Wraps a shared schedule.
    pub fn new(slots: Arc<dyn SharedSlots>) -> SharedPacing {
        SharedPacing(slots)
    }

    pub(super) fn slots(&self) -> &dyn SharedSlots {
        self.0.as_ref()
    }
}

impl PartialEq for SharedPacing {
    fn eq(&self, other: &SharedPacing) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for SharedPacing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SharedPacing").field(&self.0).finish()
    }
}

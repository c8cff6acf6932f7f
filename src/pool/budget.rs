//! The run's budget of request starts ([`PoolConfig::budget`](super::PoolConfig::budget)),
//! and a budget shared with other processes ([`SharedBudget`]): every try
//! counts, retries and rate-limited ones included.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// A budget of starts kept outside the process (in Redis, say), shared by
/// every process that spends from it.
pub trait BudgetCounter: Send + Sync + fmt::Debug {
    /// Takes one start: `Ok(true)` if there was one left, `Ok(false)` if
    /// the budget is spent.
    ///
    /// # Errors
    /// The counter could not be asked; the message says why. The pool
    /// then starts nothing more (spend control fails closed).
    fn take(&self) -> Result<bool, String>;
}

/// A cheap handle on a [`BudgetCounter`], for
/// [`PoolConfig::shared_budget`](super::PoolConfig::shared_budget). Two
/// handles are equal when they are the same counter.
#[derive(Clone)]
pub struct SharedBudget(Arc<dyn BudgetCounter>);

impl SharedBudget {
    /// Wraps a counter.
    pub fn new(counter: Arc<dyn BudgetCounter>) -> SharedBudget {
        SharedBudget(counter)
    }
}

impl PartialEq for SharedBudget {
    fn eq(&self, other: &SharedBudget) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for SharedBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SharedBudget").field(&self.0).finish()
    }
}

/// Starts left in the run; no limit without a budget.
pub(super) struct Budget {
    left: Option<AtomicU64>,
    shared: Option<SharedBudget>,
    /// Whether the shared counter's failure was logged (once per run).
    failure_logged: AtomicBool,
}

impl Budget {
    /// `limit` starts at most, and what `shared` allows; `None`: no limit.
    pub(super) fn new(limit: Option<u64>, shared: Option<SharedBudget>) -> Budget {
        Budget {
            left: limit.map(AtomicU64::new),
            shared,
            failure_logged: AtomicBool::new(false),
        }
    }

    /// Takes one start; false when a budget is spent (and stays spent).
    pub(super) fn take(&self) -> bool {
        let local = match &self.left {
            None => true,
            Some(left) => left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok(),
        };
        let Some(shared) = self.shared.as_ref().filter(|_| local) else {
            return local;
        };
        shared.0.take().unwrap_or_else(|why| {
            if !self.failure_logged.swap(true, Ordering::SeqCst) {
                log::error!("shared budget: {why}; starting nothing more (resumable)");
            }
            false
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_gives_exactly_its_starts_across_threads() {
        let budget = Budget::new(Some(1000), None);
        let taken = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..500 {
                        if budget.take() {
                            taken.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                });
            }
        });
        assert_eq!(taken.into_inner(), 1000);
        assert!(!budget.take());
        assert!(Budget::new(None, None).take());
        assert!(!Budget::new(Some(0), None).take());
    }

    /// A counter in memory that fails when told to.
    #[derive(Debug)]
    struct Counter {
        left: AtomicU64,
        broken: AtomicBool,
    }

    impl BudgetCounter for Counter {
        fn take(&self) -> Result<bool, String> {
            if self.broken.load(Ordering::SeqCst) {
                return Err("unreachable".into());
            }
            let left = &self.left;
            Ok(left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok())
        }
    }

    #[test]
    fn a_shared_budget_is_asked_only_within_the_local_one_and_fails_closed() {
        let counter = Arc::new(Counter {
            left: AtomicU64::new(3),
            broken: AtomicBool::new(false),
        });
        let budget = Budget::new(Some(2), Some(SharedBudget::new(counter.clone())));
        assert!(budget.take() && budget.take());
        assert!(!budget.take(), "the local budget ends first");
        assert_eq!(counter.left.load(Ordering::SeqCst), 1, "not asked past it");
        let budget = Budget::new(None, Some(SharedBudget::new(counter.clone())));
        assert!(budget.take());
        assert!(!budget.take(), "the shared one is spent");
        counter.left.store(5, Ordering::SeqCst);
        counter.broken.store(true, Ordering::SeqCst);
        assert!(
            !budget.take(),
            "a counter that cannot be asked allows nothing"
        );
    }
}

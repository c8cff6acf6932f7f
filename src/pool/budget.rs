//! The run's budget of request starts ([`PoolConfig::budget`](super::PoolConfig::budget)):
//! every try counts, retries and rate-limited ones included.

use std::sync::atomic::{AtomicU64, Ordering};

/// Starts left in the run; no limit without a budget.
pub(super) struct Budget {
    left: Option<AtomicU64>,
}

impl Budget {
    /// `limit` starts at most; `None`: no limit.
    pub(super) fn new(limit: Option<u64>) -> Budget {
        Budget {
            left: limit.map(AtomicU64::new),
        }
    }

    /// Takes one start; false when the budget is spent (and stays spent).
    pub(super) fn take(&self) -> bool {
        match &self.left {
            None => true,
            Some(left) => left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_gives_exactly_its_starts_across_threads() {
        let budget = Budget::new(Some(1000));
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
        assert!(Budget::new(None).take());
        assert!(!Budget::new(Some(0)).take());
    }
}

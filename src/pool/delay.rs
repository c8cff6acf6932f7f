//! The delay heap: jobs waiting out a backoff, held here rather than in a
//! sleeping worker, and released into the queue when they fall due.

use parking_lot::Mutex;
use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Items waiting for their due time; the earliest due comes out first, and
/// of items due at the same instant, the one pushed first.
pub(super) struct DelayHeap<T> {
    heap: Mutex<BinaryHeap<Delayed<T>>>,
    /// Ties the order of items with the same due time to their push order.
    next_seq: AtomicUsize,
}

impl<T> DelayHeap<T> {
    /// An empty heap.
    pub(super) fn new() -> DelayHeap<T> {
        DelayHeap {
            heap: Mutex::new(BinaryHeap::new()),
            next_seq: AtomicUsize::new(0),
        }
    }

    /// Holds `item` until `due`.
    pub(super) fn push(&self, due: Instant, item: T) {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        self.heap.lock().push(Delayed { due, seq, item });
    }

    /// Hands every item due at `now` to `release`, earliest first; returns
    /// when the next one falls due, if any waits.
    pub(super) fn release_due(&self, now: Instant, mut release: impl FnMut(T)) -> Option<Instant> {
        let mut heap = self.heap.lock();
        while heap.peek().is_some_and(|d| d.due <= now) {
            let due = heap.pop().expect("peeked just above");
            release(due.item);
        }
        heap.peek().map(|d| d.due)
    }
}

/// An item with its due time; ordered so that `BinaryHeap`, a max-heap,
/// yields the earliest due first.
struct Delayed<T> {
    due: Instant,
    seq: usize,
    item: T,
}

impl<T> PartialEq for Delayed<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl<T> Eq for Delayed<T> {}
impl<T> PartialOrd for Delayed<T> {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Delayed<T> {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn releases_only_what_is_due_earliest_first_and_says_when_the_next_is() {
        let heap = DelayHeap::new();
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        heap.push(t0 + ms(30), "c");
        heap.push(t0 + ms(10), "a");
        heap.push(t0 + ms(50), "d");
        heap.push(t0 + ms(20), "b");
        let mut out = Vec::new();
        assert_eq!(heap.release_due(t0, |x| out.push(x)), Some(t0 + ms(10)));
        assert!(out.is_empty());
        assert_eq!(
            heap.release_due(t0 + ms(30), |x| out.push(x)),
            Some(t0 + ms(50))
        );
        assert_eq!(out, ["a", "b", "c"]);
        assert_eq!(heap.release_due(t0 + ms(50), |x| out.push(x)), None);
        assert_eq!(out, ["a", "b", "c", "d"]);
    }

    #[test]
    fn items_due_at_the_same_instant_leave_in_push_order() {
        let heap = DelayHeap::new();
        let due = Instant::now();
        for n in 0..20 {
            heap.push(due, n);
        }
        let mut out = Vec::new();
        assert_eq!(heap.release_due(due, |x| out.push(x)), None);
        assert_eq!(out, (0..20).collect::<Vec<_>>());
    }
}

//! A counter of distinct values with a cap on how many it tells apart.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

/// Counts of distinct values, telling apart at most `cap` of them: once
/// `cap` are known, a new value is counted in [`CappedCounts::other`] instead.
/// Memory stays bounded however many values are added.
///
/// The first `cap` distinct values seen are the ones kept, so a value that
/// becomes common only late in a long file may end up in "other".
#[derive(Debug, Clone)]
pub struct CappedCounts<K> {
    counts: HashMap<K, u64>,
    other: u64,
    cap: usize,
}

impl<K: Hash + Eq> CappedCounts<K> {
    /// An empty tally that tells apart at most `cap` values.
    pub fn new(cap: usize) -> CappedCounts<K> {
        CappedCounts {
            counts: HashMap::new(),
            other: 0,
            cap,
        }
    }

    /// Counts one `value` (copied only the first time it is seen).
    pub fn add<Q>(&mut self, value: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(count) = self.counts.get_mut(value) {
            *count += 1;
        } else if self.counts.len() < self.cap {
            self.counts.insert(value.to_owned(), 1);
        } else {
            self.other += 1;
        }
    }

    /// How many times `value` was counted (0 if it was lumped into "other").
    pub fn get<Q>(&self, value: &Q) -> u64
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.counts.get(value).copied().unwrap_or(0)
    }

    /// How many values were counted past the cap, without being told apart.
    pub fn other(&self) -> u64 {
        self.other
    }

    /// How many values were counted in all, "other" included.
    pub fn total(&self) -> u64 {
        self.counts.values().sum::<u64>() + self.other
    }

    /// How many distinct values are told apart (at most the cap).
    pub fn distinct(&self) -> usize {
        self.counts.len()
    }

    /// The cap on distinct values.
    pub fn cap(&self) -> usize {
        self.cap
    }
}

impl<K: Hash + Eq + Ord> CappedCounts<K> {
    /// The `n` most frequent values with their counts, most frequent first,
    /// equal counts in the values' order ("other" is not among them).
    pub fn top(&self, n: usize) -> Vec<(&K, u64)> {
        let mut all: Vec<(&K, u64)> = self.counts.iter().map(|(k, c)| (k, *c)).collect();
        all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        all.truncate(n);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_past_the_cap_count_as_other() {
        let mut tally: CappedCounts<String> = CappedCounts::new(2);
        for value in ["a", "b", "a", "c", "d", "b", "a", "c"] {
            tally.add(value);
        }
        assert_eq!(tally.distinct(), 2);
        assert_eq!(tally.get("a"), 3);
        assert_eq!(tally.get("b"), 2);
        assert_eq!(tally.get("c"), 0);
        assert_eq!(tally.other(), 3);
        assert_eq!(tally.total(), 8);
        let top: Vec<(&str, u64)> = tally
            .top(5)
            .into_iter()
            .map(|(k, c)| (k.as_str(), c))
            .collect();
        assert_eq!(top, [("a", 3), ("b", 2)]);
    }

    #[test]
    fn ties_sort_by_value() {
        let mut tally: CappedCounts<String> = CappedCounts::new(10);
        for value in ["z", "y", "x", "y", "z"] {
            tally.add(value);
        }
        let top: Vec<&str> = tally.top(3).into_iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(top, ["y", "z", "x"]);
        assert_eq!(tally.top(1).len(), 1);
    }

    #[test]
    fn a_zero_cap_counts_everything_as_other() {
        let mut tally: CappedCounts<String> = CappedCounts::new(0);
        tally.add("a");
        assert_eq!((tally.distinct(), tally.other(), tally.total()), (0, 1, 1));
    }
}

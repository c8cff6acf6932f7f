//! Per-key limiter state that forgets keys gone quiet, so a long-running mock
//! serving many keys does not grow without bound.

use std::collections::HashMap;

/// Keys kept before the quiet ones are dropped.
const PRUNE_ABOVE: usize = 4096;

/// State of type `T` per client key, each stamped with the second it was last used.
#[derive(Debug)]
pub(crate) struct PerKey<T> {
    /// Seconds after which a key's state no longer changes any verdict (its
    /// window has passed, its bucket is full again): it may then be dropped.
    quiet_after: u64,
    map: HashMap<String, (u64, T)>,
}

impl<T> PerKey<T> {
    /// An empty map whose entries may be dropped once unused for `quiet_after` seconds.
    pub(crate) fn new(quiet_after: u64) -> Self {
        PerKey {
            quiet_after,
            map: HashMap::new(),
        }
    }

    /// The state of `key` at whole second `second`, created by `fresh` if absent (or pruned).
    pub(crate) fn entry(&mut self, key: &str, second: u64, fresh: impl FnOnce() -> T) -> &mut T {
        if self.map.len() > PRUNE_ABOVE {
            let quiet_after = self.quiet_after;
            self.map
                .retain(|_, (used, _)| used.saturating_add(quiet_after) > second);
        }
        if !self.map.contains_key(key) {
            self.map.insert(key.to_string(), (second, fresh()));
        }
        let (used, state) = self.map.get_mut(key).expect("inserted just above");
        *used = second;
        state
    }

    /// How many keys are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_keys_are_dropped_once_there_are_many() {
        let mut keys = PerKey::new(2);
        for i in 0..=PRUNE_ABOVE {
            *keys.entry(&i.to_string(), 10, || 0) += 1;
        }
        *keys.entry("0", 11, || 0) += 1;
        // At second 11 nothing is quiet yet: everything is kept, and "0" kept its count.
        *keys.entry("late", 11, || 0) += 1;
        assert_eq!(keys.len(), PRUNE_ABOVE + 2);
        assert_eq!(*keys.entry("0", 11, || 0), 2);
        // At second 12 the keys last used at 10 are quiet.
        keys.entry("later", 12, || 0);
        assert_eq!(keys.len(), 3);
    }
}

//! Repeated ids in an input too large to hold: eight bytes per id.
//!
//! The checking pass keeps a 64-bit hash of every id, not the id. Equal
//! hashes make a short list of suspects; only when there are any does a
//! second look at the input compare the suspects' ids in full, so a hash
//! collision never refuses a good input and a repeat is reported exactly,
//! at the line of its second use, naming the first.

use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

/// The ids' hashes, in input order.
#[derive(Debug, Default)]
pub(super) struct IdHashes {
    hashes: Vec<u64>,
}

impl IdHashes {
    /// Notes one id.
    pub(super) fn push(&mut self, id: &str) {
        self.hashes.push(hash(id));
    }

    /// The hashes held by two or more ids: the only ids that may repeat.
    pub(super) fn suspects(mut self) -> HashSet<u64> {
        self.hashes.sort_unstable();
        self.hashes
            .windows(2)
            .filter(|pair| pair[0] == pair[1])
            .map(|pair| pair[0])
            .collect()
    }
}

/// The hash of `id` (the same for every run and process).
pub(super) fn hash(id: &str) -> u64 {
    BuildHasherDefault::<DefaultHasher>::default().hash_one(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_repeated_hashes_are_suspects() {
        let mut ids = IdHashes::default();
        for id in ["a", "b", "c", "b", "b", "d"] {
            ids.push(id);
        }
        let suspects = ids.suspects();
        assert_eq!(suspects, HashSet::from([hash("b")]));
        assert_ne!(hash("a"), hash("b"));
        assert_eq!(IdHashes::default().suspects(), HashSet::new());
    }
}

//! What a job is, for `--resume`: its image, its models and the endpoint
//! they go to, hashed into a 96-bit key; and, apart from the key, a 31-bit
//! hash of its id. The id alone cannot match a job to its outcome: it
//! defaults to the line number and so changes when lines are added to an
//! input. But two jobs of one input may share an image (two listings
//! sharing a photo), and then only the id tells whose outcome a line is.
//!
//! # Why 96 bits are enough
//!
//! The keys are hashed with two SipHash-1-3 functions under random keys
//! drawn for each run, so an input cannot be built to collide on purpose. A
//! false match (a job taken as done because its key equals a different
//! job's) needs two of `n` done outcomes and `m` jobs to share 96 bits: the
//! chance is at most `n * m / 2^96`. For 5,000,000 outcomes and 10,000,000
//! jobs that is 6e-16 per run; a user would need about 10^15 such runs to
//! expect one. 64 bits would give 3e-6 per run, too close for "never skips
//! an image"; 128 bits would cost a third more memory for nothing visible.
//!
//! The id hash only tells apart jobs with the same key (the same image and
//! models): two such jobs' ids collide with chance `2^-31`, and then their
//! lines are paired as if the input were edited, which still never skips
//! an image that has no outcome.

use std::hash::{BuildHasher, Hash, Hasher, RandomState};

/// The endpoint a job's request goes to. It follows from the number of
/// models (`Client::predict` sends one model to `predict`, several to
/// `multipredict`), and is part of the key so that a run with
/// `--per-model` and one without never take each other's outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Endpoint {
    /// `/vision/v2/predict`: one model.
    Predict,
    /// `/vision/v2/multipredict`: several models.
    Multipredict,
}

impl Endpoint {
    fn for_models(count: usize) -> Endpoint {
        if count == 1 {
            Endpoint::Predict
        } else {
            Endpoint::Multipredict
        }
    }
}

/// What a job is, hashed: 12 of the 16 bytes of an outcome line in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct Key([u32; 3]);

/// Hashes job identities into [`Key`]s, with keys drawn at random once per
/// index (the keys of one index are only ever compared with each other).
#[derive(Debug, Clone, Default)]
pub(super) struct KeyHasher {
    high: RandomState,
    low: RandomState,
    id: RandomState,
}

impl KeyHasher {
    /// The key of the job asking `models` about `image` (the image as the
    /// outcome file writes it). The models' order does not matter: the API
    /// answers the same set alike.
    pub(super) fn key<S: AsRef<str>>(&self, image: &str, models: &[S]) -> Key {
        let mut sorted: Vec<&str> = models.iter().map(AsRef::as_ref).collect();
        sorted.sort_unstable();
        let mut high = self.high.build_hasher();
        feed(&mut high, image, &sorted);
        let mut low = self.low.build_hasher();
        feed(&mut low, image, &sorted);
        let (high, low) = (high.finish(), low.finish());
        Key([(high >> 32) as u32, high as u32, low as u32])
    }

    /// The 31-bit hash of a job's id (below `2^31`).
    pub(super) fn id(&self, id: &str) -> u32 {
        (self.id.hash_one(id) >> 33) as u32
    }
}

/// Feeds one identity to `hasher`. `str`'s `Hash` ends each string with a
/// marker byte and a slice's starts with its length, so the fields cannot
/// run into each other.
fn feed<H: Hasher>(hasher: &mut H, image: &str, sorted_models: &[&str]) {
    Endpoint::for_models(sorted_models.len()).hash(hasher);
    image.hash(hasher);
    sorted_models.hash(hasher);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_the_image_the_model_set_and_the_endpoint() {
        let hasher = KeyHasher::default();
        let key = |image: &str, models: &[&str]| hasher.key(image, models);
        assert_eq!(key("a.jpg", &["m", "n"]), key("a.jpg", &["n", "m"]));
        assert_ne!(key("a.jpg", &["m"]), key("b.jpg", &["m"]));
        assert_ne!(key("a.jpg", &["m"]), key("a.jpg", &["n"]));
        assert_ne!(key("a.jpg", &["m", "n"]), key("a.jpg", &["m"]));
        // Fields cannot slide into each other.
        assert_ne!(key("a", &["bc"]), key("ab", &["c"]));
        assert_ne!(key("a", &["b", "c"]), key("a", &["bc"]));
    }

    #[test]
    fn the_id_hash_has_31_bits_and_tells_ids_apart() {
        let hasher = KeyHasher::default();
        let ids: Vec<u32> = (0..1000).map(|n| hasher.id(&n.to_string())).collect();
        assert!(ids.iter().all(|id| *id < 1 << 31));
        let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
    }

    #[test]
    fn endpoint_follows_the_model_count() {
        assert_eq!(Endpoint::for_models(1), Endpoint::Predict);
        assert_eq!(Endpoint::for_models(2), Endpoint::Multipredict);
    }
}

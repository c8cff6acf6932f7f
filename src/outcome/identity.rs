//! What a job is, for `--resume`: its image, its models and the endpoint
//! they go to, hashed into a 96-bit key. Not its id, which defaults to the
//! line number and so changes when lines are added to an input.
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

/// A job's identity, hashed: 12 bytes per done job in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct Key([u32; 3]);

/// Hashes job identities into [`Key`]s, with keys drawn at random once per
/// index (the keys of one index are only ever compared with each other).
#[derive(Debug, Clone, Default)]
pub(super) struct KeyHasher {
    high: RandomState,
    low: RandomState,
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
    fn endpoint_follows_the_model_count() {
        assert_eq!(Endpoint::for_models(1), Endpoint::Predict);
        assert_eq!(Endpoint::for_models(2), Endpoint::Multipredict);
    }
}

//! The catalogue of Restb.ai model ids this tool knows.
//!
//! An unknown id is refused before a batch starts: a typo would otherwise cost
//! one 400 per image. `--allow-unknown-models` lets newer models through.

/// The six models of the public SDK at its last version: the default set.
pub const DEFAULT_MODELS: [&str; 6] = [
    "re_roomtype_global_v2",
    "re_exterior_styles",
    "re_features_v4",
    "re_logo",
    "re_compliance_v2",
    "re_condition_r1r6_global",
];

/// Further ids seen in public callers of the API.
const OTHER_KNOWN_MODELS: [&str; 9] = [
    "re_features_v5",
    "re_appliances_v2",
    "re_condition",
    "re_condition_c1c6",
    "re_roomtype_international",
    "re_kitchen_finishes",
    "re_inspection_damage",
    "re_watermark",
    "caption",
];

/// Whether `id` is a model id this tool knows.
pub fn is_known(id: &str) -> bool {
    DEFAULT_MODELS.contains(&id) || OTHER_KNOWN_MODELS.contains(&id)
}

/// Whether the JSON `text` may hold a known model id as a string: two
/// substring searches, not one per id (a batch of ten million lines
/// without `models` pays it on each line, see `input::jsonl`), each with
/// the string's opening quote, so that a URL's `picture_` does not match.
pub(crate) fn may_name_one(text: &str) -> bool {
    const MOST_BEGIN: &str = "\"re_";
    text.contains(MOST_BEGIN)
        || known()
            .filter(|id| !id.starts_with(&MOST_BEGIN[1..]))
            .any(|id| {
                text.match_indices(id)
                    .any(|(at, _)| text[..at].ends_with('"'))
            })
}

/// Every known model id, default set first.
pub fn known() -> impl Iterator<Item = &'static str> {
    DEFAULT_MODELS
        .iter()
        .chain(OTHER_KNOWN_MODELS.iter())
        .copied()
}

/// The first model id that appears twice in `list`, if one does.
pub fn first_repeated<S: AsRef<str>>(list: &[S]) -> Option<&str> {
    list.iter()
        .enumerate()
        .find(|(at, model)| list[..*at].iter().any(|m| m.as_ref() == model.as_ref()))
        .map(|(_, model)| model.as_ref())
}

/// The default model ids as owned strings.
pub fn default_models() -> Vec<String> {
    DEFAULT_MODELS.iter().map(|m| m.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_models_are_known() {
        assert!(DEFAULT_MODELS.iter().all(|m| is_known(m)));
        assert!(is_known("caption"));
        assert!(!is_known("re_logoo"));
        assert_eq!(known().count(), 15);
        assert!(known().all(|id| may_name_one(&format!("{{\"m\":[\"{id}\"]}}"))));
        assert!(!may_name_one(
            "{\"url\":\"https://x/picture_1.jpg\",\"price\":3}"
        ));
        assert!(
            known().filter(|id| !id.starts_with("re_")).count() <= 1,
            "one search each"
        );
        assert_eq!(first_repeated(&["a", "b", "a", "b"]), Some("a"));
        assert_eq!(first_repeated(&["a", "b"]), None);
    }
}

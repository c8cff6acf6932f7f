//! Fake solutions: plausible, and the same for the same (image, model) pair,
//! so tests and demos can compare runs.

use serde_json::{json, Map, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// Room labels of the room-type classifiers.
const ROOMS: [&str; 10] = [
    "kitchen",
    "bathroom",
    "living_room",
    "bedroom",
    "dining_room",
    "exterior_front",
    "exterior_back",
    "laundry_room",
    "office",
    "garage",
];
/// Architectural styles.
const STYLES: [&str; 8] = [
    "craftsman",
    "colonial",
    "ranch",
    "contemporary",
    "victorian",
    "mediterranean",
    "cape_cod",
    "tudor",
];
/// Compliance classes.
const COMPLIANCE: [&str; 5] = [
    "compliant",
    "contains_people",
    "contains_text",
    "contains_watermark",
    "contains_contact_info",
];
/// Kitchen finishes.
const KITCHEN: [&str; 6] = [
    "granite_countertops",
    "quartz_countertops",
    "laminate_countertops",
    "stainless_steel_appliances",
    "white_cabinets",
    "wood_cabinets",
];
/// Appliances.
const APPLIANCES: [&str; 6] = [
    "refrigerator",
    "oven",
    "dishwasher",
    "microwave",
    "washer",
    "dryer",
];
/// Features the feature detectors find.
const FEATURES: [&str; 10] = [
    "hardwood_floor",
    "fireplace",
    "pool",
    "granite_countertops",
    "stainless_steel",
    "ceiling_fan",
    "vaulted_ceiling",
    "walk_in_closet",
    "kitchen_island",
    "natural_light",
];
/// Damage the inspection detector finds.
const DAMAGE: [&str; 5] = [
    "water_damage",
    "crack",
    "mold",
    "broken_window",
    "roof_damage",
];
/// Adjectives for captions.
const ADJECTIVES: [&str; 5] = ["bright", "spacious", "cozy", "modern", "renovated"];

/// What an image is identified by when hashing: its URL, or its decoded bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ImageRef<'a> {
    /// `image_url`.
    Url(&'a str),
    /// Decoded `image_base64`.
    Bytes(&'a [u8]),
}

/// FNV-1a, 64 bits: stable across Rust versions, unlike `DefaultHasher`.
fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(seed, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A stable hash of an image's identity.
pub(crate) fn image_hash(image: ImageRef<'_>) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    match image {
        ImageRef::Url(url) => fnv1a(fnv1a(OFFSET, b"url:"), url.as_bytes()),
        ImageRef::Bytes(bytes) => fnv1a(fnv1a(OFFSET, b"bytes:"), bytes),
    }
}

/// The `solutions` object: one entry per model, in request order.
pub(crate) fn solutions(image: u64, models: &[&str]) -> Value {
    let map: Map<String, Value> = models
        .iter()
        .map(|m| (m.to_string(), solution(image, m)))
        .collect();
    Value::Object(map)
}

/// The fake solution of `model` for the image with hash `image`.
pub(crate) fn solution(image: u64, model: &str) -> Value {
    let mut rng = fastrand::Rng::with_seed(fnv1a(image, model.as_bytes()));
    let has = |part: &str| model.contains(part);
    if has("roomtype") {
        classifier(&mut rng, &ROOMS)
    } else if has("exterior_styles") {
        classifier(&mut rng, &STYLES)
    } else if has("compliance") {
        classifier(&mut rng, &COMPLIANCE)
    } else if has("kitchen") {
        classifier(&mut rng, &KITCHEN)
    } else if has("appliances") {
        classifier(&mut rng, &APPLIANCES)
    } else if has("features") {
        detections(&mut rng, &FEATURES, 0..5)
    } else if has("logo") || has("watermark") {
        detections(&mut rng, &["watermark"], 0..2)
    } else if has("inspection_damage") {
        detections(&mut rng, &DAMAGE, 0..3)
    } else if has("condition") {
        condition(&mut rng, has("global"))
    } else if has("caption") {
        let room = ROOMS[rng.usize(..ROOMS.len())].replace('_', " ");
        let adjective = ADJECTIVES[rng.usize(..ADJECTIVES.len())];
        let feature = FEATURES[rng.usize(..FEATURES.len())].replace('_', " ");
        json!({"description": format!("A {adjective} {room} with {feature}.")})
    } else {
        json!({"predictions": []})
    }
}

/// A confidence in (0, 1) with four decimals.
fn confidence(rng: &mut fastrand::Rng, low: u32, high: u32) -> f64 {
    f64::from(rng.u32(low..high)) / 10_000.0
}

/// `{"top_prediction": .., "predictions": [..]}` with falling confidences.
fn classifier(rng: &mut fastrand::Rng, labels: &[&str]) -> Value {
    let mut order: Vec<&str> = labels.to_vec();
    rng.shuffle(&mut order);
    let mut left = 9_990;
    let predictions: Vec<Value> = order
        .iter()
        .take(3)
        .enumerate()
        .map(|(i, label)| {
            // The top label takes 50-90% of what is left, the others less.
            let share = if i == 0 {
                rng.u32(5_000..9_000)
            } else {
                rng.u32(1_000..6_000)
            };
            let c = (left * share / 10_000).max(1);
            left -= c;
            json!({"label": label, "confidence": f64::from(c) / 10_000.0})
        })
        .collect();
    json!({"top_prediction": predictions[0].clone(), "predictions": predictions})
}

/// `{"detections": [..]}` with `count` distinct labels.
fn detections(rng: &mut fastrand::Rng, labels: &[&str], count: std::ops::Range<usize>) -> Value {
    let mut order: Vec<&str> = labels.to_vec();
    rng.shuffle(&mut order);
    let n = rng.usize(count).min(order.len());
    let found: Vec<Value> = order[..n]
        .iter()
        .map(|label| json!({"label": label, "confidence": confidence(rng, 5_000, 9_990)}))
        .collect();
    json!({ "detections": found })
}

/// `{"score": ..}`: whole 1-6 for per-photo scales, halves for the global scale.
fn condition(rng: &mut fastrand::Rng, global: bool) -> Value {
    if global {
        json!({"score": 1.0 + f64::from(rng.u8(0..=10)) * 0.5})
    } else {
        json!({"score": rng.u8(1..=6)})
    }
}

/// A UUID-shaped (version 4 layout) hex id.
pub(crate) fn correlation_id(rng: &mut fastrand::Rng) -> String {
    let (a, b) = (rng.u64(..), rng.u64(..));
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

/// `time` as the API writes it: UTC, microseconds, no zone (`2018-10-31T16:02:30.107742`).
pub(crate) fn iso_time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:06}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The full 200 body.
pub(crate) fn success_body(correlation_id: &str, time: SystemTime, solutions: Value) -> String {
    json!({
        "error": "false",
        "correlation_id": correlation_id,
        "version": "2",
        "time": iso_time(time),
        "response": {"solutions": solutions},
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn in_unit_interval(v: &Value) -> bool {
        v.as_f64().is_some_and(|c| c > 0.0 && c < 1.0)
    }

    #[test]
    fn same_image_and_model_same_answer() {
        let img = image_hash(ImageRef::Url("https://x/1.jpg"));
        assert_eq!(
            solution(img, "re_features_v4"),
            solution(img, "re_features_v4")
        );
        let differs = (0..20).any(|i| {
            let other = image_hash(ImageRef::Url(&format!("https://x/{i}.jpg")));
            solution(other, "re_roomtype_global_v2") != solution(img, "re_roomtype_global_v2")
        });
        assert!(differs);
        assert_ne!(
            image_hash(ImageRef::Url("ab")),
            image_hash(ImageRef::Bytes(b"ab"))
        );
    }

    #[test]
    fn classifier_shape() {
        for i in 0..50 {
            for model in [
                "re_roomtype_global_v2",
                "re_exterior_styles",
                "re_compliance_v2",
                "re_kitchen_finishes",
                "re_appliances_v2",
            ] {
                let s = solution(i, model);
                let preds = s["predictions"].as_array().unwrap();
                assert_eq!(preds.len(), 3);
                assert_eq!(s["top_prediction"], preds[0]);
                let confs: Vec<f64> = preds
                    .iter()
                    .map(|p| p["confidence"].as_f64().unwrap())
                    .collect();
                assert!(preds.iter().all(|p| in_unit_interval(&p["confidence"])));
                assert!(preds.iter().all(|p| p["label"].is_string()));
                assert!(confs.iter().sum::<f64>() < 1.0, "{model}: {confs:?}");
            }
        }
        let labels = solution(3, "re_roomtype_global_v2")["top_prediction"]["label"].clone();
        assert!(ROOMS.contains(&labels.as_str().unwrap()));
    }

    #[test]
    fn detector_shape() {
        let mut saw_watermark = false;
        let mut saw_empty_logo = false;
        for i in 0..50 {
            for model in [
                "re_features_v4",
                "re_logo",
                "re_watermark",
                "re_inspection_damage",
            ] {
                let s = solution(i, model);
                let found = s["detections"].as_array().unwrap();
                assert!(found.iter().all(|d| in_unit_interval(&d["confidence"])));
                if model == "re_logo" {
                    saw_empty_logo |= found.is_empty();
                    saw_watermark |= found.iter().any(|d| d["label"] == "watermark");
                }
            }
        }
        assert!(saw_watermark && saw_empty_logo);
    }

    #[test]
    fn condition_caption_and_unknown_shapes() {
        for i in 0..50 {
            let g = solution(i, "re_condition_r1r6_global")["score"]
                .as_f64()
                .unwrap();
            assert!((1.0..=6.0).contains(&g) && (g * 2.0).fract() == 0.0);
            let c = solution(i, "re_condition_c1c6")["score"].as_u64().unwrap();
            assert!((1..=6).contains(&c));
        }
        let d = solution(1, "caption")["description"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(d.starts_with("A ") && d.ends_with('.'));
        assert_eq!(solution(1, "something_new"), json!({"predictions": []}));
    }

    #[test]
    fn solutions_has_one_entry_per_model() {
        let s = solutions(9, &["re_logo", "caption"]);
        assert_eq!(s.as_object().unwrap().len(), 2);
    }

    #[test]
    fn times_and_ids_have_the_api_format() {
        let t = UNIX_EPOCH + Duration::from_micros(1_541_001_750_107_742);
        assert_eq!(iso_time(t), "2018-10-31T16:02:30.107742");
        assert_eq!(iso_time(UNIX_EPOCH), "1970-01-01T00:00:00.000000");
        assert_eq!(
            iso_time(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000000"
        );
        let id = correlation_id(&mut fastrand::Rng::with_seed(1));
        let groups: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert!(id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    }
}

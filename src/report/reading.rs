//! Short readings of one model's solution, and aligned text tables.

use serde_json::Value;

/// Longest reading or reason, in characters, that the summary keeps as a
/// key; longer ones are cut (so one odd line cannot hold megabytes).
pub(crate) const MAX_KEY_CHARS: usize = 200;

/// A short reading of one model's solution: the top label and confidence of a
/// classifier, the labels of a detector, a condition score, a caption.
///
/// # Examples
///
/// ```
/// use restb::report::describe;
/// use serde_json::json;
///
/// let solution = json!({"top_prediction": {"label": "kitchen", "confidence": 0.9712}});
/// assert_eq!(describe(&solution), "kitchen (0.97)");
/// assert_eq!(describe(&json!({"score": 3.5})), "score 3.5");
/// ```
pub fn describe(solution: &Value) -> String {
    if let Some(top) = solution.get("top_prediction") {
        return label_and_confidence(top);
    }
    if let Some(detections) = solution.get("detections").and_then(Value::as_array) {
        if detections.is_empty() {
            return NOTHING_DETECTED.to_string();
        }
        return detections
            .iter()
            .map(label_and_confidence)
            .collect::<Vec<_>>()
            .join(", ");
    }
    if let Some(score) = solution.get("score") {
        return format!("score {score}");
    }
    if let Some(text) = solution.get("description").and_then(Value::as_str) {
        return text.to_string();
    }
    truncate(&solution.to_string(), 60)
}

/// What an empty detector answer reads as.
const NOTHING_DETECTED: &str = "(nothing detected)";

/// The readings of a solution that a summary counts, without confidences:
/// a classifier's top label, each distinct label a detector found (or
/// `(nothing detected)`), `score N`, a caption; anything else as
/// [`describe`] reads it.
///
/// # Examples
///
/// ```
/// use restb::report::labels;
/// use serde_json::json;
///
/// let found = json!({"detections": [{"label": "pool"}, {"label": "fireplace"}, {"label": "pool"}]});
/// assert_eq!(labels(&found), ["pool", "fireplace"]);
/// ```
pub fn labels(solution: &Value) -> Vec<String> {
    if let Some((label, _)) = top_prediction(solution) {
        return vec![label];
    }
    if let Some(detections) = solution.get("detections").and_then(Value::as_array) {
        if detections.is_empty() {
            return vec![NOTHING_DETECTED.to_string()];
        }
        let mut found: Vec<String> = Vec::new();
        for label in detections.iter().map(label_of) {
            if !found.contains(&label) {
                found.push(label);
            }
        }
        return found;
    }
    vec![describe(solution)]
}

/// A classifier's top label and its confidence (if given), when the
/// solution has a `top_prediction`.
pub fn top_prediction(solution: &Value) -> Option<(String, Option<f64>)> {
    let top = solution.get("top_prediction")?;
    Some((label_of(top), top.get("confidence").and_then(Value::as_f64)))
}

/// A prediction's `label` as text (`?` when missing).
fn label_of(prediction: &Value) -> String {
    prediction
        .get("label")
        .map(|l| l.as_str().map_or_else(|| l.to_string(), str::to_string))
        .unwrap_or_else(|| "?".to_string())
}

fn label_and_confidence(prediction: &Value) -> String {
    let label = label_of(prediction);
    match prediction.get("confidence").and_then(Value::as_f64) {
        Some(confidence) => format!("{label} ({confidence:.2})"),
        None => label,
    }
}

/// `text` cut to at most `max` characters, the cut marked with `...`.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let keep = max.saturating_sub(3);
    let end = text.char_indices().nth(keep).map_or(text.len(), |(i, _)| i);
    format!("{}...", &text[..end])
}

/// Renders rows under a header, each column as wide as its widest cell
/// (counted in characters), columns two spaces apart, a dashed rule under
/// the header, no trailing spaces.
///
/// # Examples
///
/// ```
/// use restb::report::render;
///
/// let text = render(&["image", "model"], &[vec!["a".into(), "re_logo".into()]]);
/// assert_eq!(text, "image  model\n-----  -------\na      re_logo\n");
/// ```
pub fn render<R: AsRef<[String]>>(header: &[&str], rows: &[R]) -> String {
    // A label or an error with a newline or a tab in it would break the
    // columns: control characters show as spaces.
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.as_ref().iter().map(|cell| flat(cell)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = cells
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(&mut header.iter().copied());
    let rules: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out += &line(&mut rules.iter().map(String::as_str));
    for row in &rows {
        out += &line(&mut row.iter().map(String::as_str));
    }
    out
}

/// `cell` on one line: control characters as spaces.
fn flat(cell: &str) -> String {
    cell.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_cell_with_a_newline_keeps_the_columns() {
        let text = render(
            &["a", "b"],
            &[vec!["kit\nchen".to_string(), "x".to_string()]],
        );
        assert_eq!(text, "a         b\n--------  -\nkit chen  x\n");
    }

    #[test]
    fn solutions_read_as_short_text() {
        assert_eq!(
            describe(
                &json!({"top_prediction": {"label": "kitchen", "confidence": 0.9712}, "predictions": []})
            ),
            "kitchen (0.97)"
        );
        assert_eq!(
            describe(
                &json!({"detections": [{"label": "sink", "confidence": 0.5}, {"label": "oven"}]})
            ),
            "sink (0.50), oven"
        );
        assert_eq!(describe(&json!({"detections": []})), "(nothing detected)");
        assert_eq!(describe(&json!({"score": 3.5})), "score 3.5");
        assert_eq!(describe(&json!({"description": "a kitchen"})), "a kitchen");
        let long = describe(&json!({"unexpected": "x".repeat(100)}));
        assert_eq!(long.chars().count(), 60);
        assert!(long.ends_with("..."));
    }

    #[test]
    fn labels_drop_confidences() {
        let top = json!({"top_prediction": {"label": "kitchen", "confidence": 0.97}});
        assert_eq!(labels(&top), ["kitchen"]);
        assert_eq!(
            top_prediction(&top),
            Some(("kitchen".to_string(), Some(0.97)))
        );
        assert_eq!(labels(&json!({"detections": []})), ["(nothing detected)"]);
        assert_eq!(labels(&json!({"score": 4})), ["score 4"]);
        assert_eq!(top_prediction(&json!({"score": 4})), None);
    }

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate("héllo wörld", 8), "héllo...");
        assert_eq!(truncate("short", 8), "short");
    }

    #[test]
    fn columns_align() {
        let text = render(
            &["image", "model"],
            &[
                vec!["a".into(), "re_logo".into()],
                vec!["long-name".into(), "x".into()],
            ],
        );
        assert_eq!(
            text,
            "image      model\n---------  -------\na          re_logo\nlong-name  x\n"
        );
    }
}

//! Aligned text tables of results: one row per image and model.

use serde_json::Value;

/// A short reading of one model's solution: the top label and confidence of a
/// classifier, the labels of a detector, a condition score, a caption.
pub fn describe(solution: &Value) -> String {
    if let Some(top) = solution.get("top_prediction") {
        return label_and_confidence(top);
    }
    if let Some(detections) = solution.get("detections").and_then(Value::as_array) {
        if detections.is_empty() {
            return "(nothing detected)".to_string();
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
    let raw = solution.to_string();
    if raw.len() > 60 {
        format!(
            "{}...",
            &raw[..raw.char_indices().nth(57).map_or(raw.len(), |(i, _)| i)]
        )
    } else {
        raw
    }
}

fn label_and_confidence(prediction: &Value) -> String {
    let label = prediction
        .get("label")
        .map(|l| l.as_str().map_or_else(|| l.to_string(), str::to_string))
        .unwrap_or_else(|| "?".to_string());
    match prediction.get("confidence").and_then(Value::as_f64) {
        Some(confidence) => format!("{label} ({confidence:.2})"),
        None => label,
    }
}

/// Renders rows under a header, each column as wide as its widest cell.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    out += &line(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    );
    for row in rows {
        out += &line(row.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

//! The per-image-and-model table of results.

use super::reading::{describe, render};
use crate::outcome::OutcomeLine;
use serde_json::Value;
use std::borrow::Borrow;
use std::cmp::Ordering;

/// The header of [`results_table`].
pub const RESULTS_HEADER: [&str; 3] = ["image", "model", "result"];

/// The models a line has rows for: its `models`, else the keys of its
/// solutions, else one nameless row.
pub(crate) fn row_models(line: &OutcomeLine) -> Vec<&str> {
    if !line.models.is_empty() {
        return line.models.iter().map(String::as_str).collect();
    }
    match line.solutions.as_ref().and_then(Value::as_object) {
        Some(solutions) if !solutions.is_empty() => solutions.keys().map(String::as_str).collect(),
        _ => vec![""],
    }
}

/// Why a failed line failed, as one phrase.
pub(crate) fn failure_reason(line: &OutcomeLine) -> String {
    match (&line.error, line.http_status) {
        (Some(error), _) => error.clone(),
        (None, Some(status)) => format!("HTTP {status}"),
        (None, None) => "unknown error".to_string(),
    }
}

/// One row `[image, model, result]` per model of the line, in the order of
/// its `models`: the short reading of the model's solution ([`describe`]),
/// `(no answer)` when an ok line lacks it, or `FAILED: reason`.
///
/// # Examples
///
/// ```
/// use restb::outcome::OutcomeLine;
/// use restb::report::results_rows;
///
/// let line: OutcomeLine = serde_json::from_str(
///     r#"{"id":"4","image":"photos/4.jpg","models":["re_logo"],"status":"failed",
///         "http_status":400,"attempts":1,"rate_limited":0,"error":"invalid model_id: foo"}"#,
/// )?;
/// assert_eq!(results_rows(&line), [["photos/4.jpg", "re_logo", "FAILED: invalid model_id: foo"]]);
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn results_rows(line: &OutcomeLine) -> Vec<[String; 3]> {
    let failure = (!line.is_ok()).then(|| format!("FAILED: {}", failure_reason(line)));
    row_models(line)
        .into_iter()
        .map(|model| {
            let result = match &failure {
                Some(failure) => failure.clone(),
                None => line
                    .solutions
                    .as_ref()
                    .and_then(|solutions| solutions.get(model))
                    .map_or_else(|| "(no answer)".to_string(), describe),
            };
            [line.image.clone(), model.to_string(), result]
        })
        .collect()
}

/// Orders ids numerically when both are whole numbers, numbers before
/// other ids, other ids as strings.
fn compare_ids(a: &str, b: &str) -> Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

/// An aligned table with header `image  model  result` and the
/// [`results_rows`] of every line: lines ordered by id (numerically when
/// ids are whole numbers, else as strings), then by their models and image;
/// the rows of one line in the order of its `models`. A job with several
/// lines (the same id, image and models: redone with `--retry-failed`) shows
/// once: its last ok line, else its last line. Lines of one id with different
/// images (an input edited between a run and its `--resume`) all show.
///
/// It holds every line, so it suits a run's own results rather than a file
/// of millions (see [`Summary`](super::Summary) for those).
///
/// # Examples
///
/// ```
/// use restb::outcome::OutcomeLine;
/// use restb::report::results_table;
///
/// let line = |id: &str| -> OutcomeLine {
///     serde_json::from_str(&format!(
///         r#"{{"id":"{id}","image":"{id}.jpg","models":["re_logo"],"status":"ok","attempts":1,
///             "rate_limited":0,"solutions":{{"re_logo":{{"detections":[]}}}}}}"#
///     ))
///     .unwrap()
/// };
/// let table = results_table([line("10"), line("9")]);
/// assert_eq!(
///     table,
///     "image   model    result\n\
///      ------  -------  ------------------\n\
///      9.jpg   re_logo  (nothing detected)\n\
///      10.jpg  re_logo  (nothing detected)\n"
/// );
/// ```
pub fn results_table<I>(lines: I) -> String
where
    I: IntoIterator,
    I::Item: Borrow<OutcomeLine>,
{
    let owned: Vec<I::Item> = lines.into_iter().collect();
    let mut lines: Vec<&OutcomeLine> = owned.iter().map(Borrow::borrow).collect();
    // Stable: lines of one job keep the file's order.
    lines.sort_by(|a, b| {
        compare_ids(&a.id, &b.id)
            .then_with(|| a.models.cmp(&b.models))
            .then_with(|| a.image.cmp(&b.image))
    });
    let mut rows: Vec<[String; 3]> = Vec::new();
    for group in lines.chunk_by(|a, b| a.id == b.id && a.models == b.models && a.image == b.image) {
        let chosen = group
            .iter()
            .rev()
            .find(|line| line.is_ok())
            .unwrap_or(&group[group.len() - 1]);
        rows.extend(results_rows(chosen));
    }
    render(&RESULTS_HEADER, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_numbers_first_then_strings() {
        let mut ids = vec!["b", "10", "a", "2", "01"];
        ids.sort_by(|a, b| compare_ids(a, b));
        assert_eq!(ids, ["01", "2", "10", "a", "b"]);
    }
}

//! A summary of an outcome file, built one line at a time in bounded memory.

use super::capped::CappedCounts;
use super::reading::{labels, render, truncate, MAX_KEY_CHARS};
use super::redone::job_hash;
use crate::outcome::OutcomeLine;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

/// Distinct readings per model, models, and failure reasons a [`Summary`]
/// tells apart by default; the rest are counted as "(other)".
pub const DEFAULT_CAP: usize = 1000;
/// Readings shown per model by [`Summary::render_text`].
const TOP_READINGS: usize = 5;
/// Failure reasons shown by [`Summary::render_text`].
const TOP_REASONS: usize = 20;
/// Where the answers of models past the cap are counted.
pub const OTHER_MODELS: &str = "(other models)";

/// Why a job failed: its error text (cut to 200 characters) and the HTTP
/// status of its last reply.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FailureReason {
    /// The error text (`unknown error` when the line has none).
    pub error: String,
    /// The HTTP status of the last reply, if one came.
    pub http_status: Option<u16>,
}

/// What one model answered across the summarised jobs.
#[derive(Debug, Clone)]
pub struct ModelSummary {
    ok: u64,
    failed: u64,
    no_answer: u64,
    readings: CappedCounts<String>,
}

impl ModelSummary {
    fn new(cap: usize) -> ModelSummary {
        ModelSummary {
            ok: 0,
            failed: 0,
            no_answer: 0,
            readings: CappedCounts::new(cap),
        }
    }

    /// Answers in ok jobs.
    pub fn ok(&self) -> u64 {
        self.ok
    }

    /// Failed jobs that asked this model.
    pub fn failed(&self) -> u64 {
        self.failed
    }

    /// Ok jobs whose solutions lack this model.
    pub fn no_answer(&self) -> u64 {
        self.no_answer
    }

    /// The readings of the answers, as [`labels`] gives them
    /// (a detector's answer counts each label it found once).
    pub fn readings(&self) -> &CappedCounts<String> {
        &self.readings
    }
}

/// Counts, latencies, readings per model and failures by reason of an
/// outcome file, added one [`OutcomeLine`] at a time.
///
/// Memory is bounded: no line is kept, and at most a cap (default
/// [`DEFAULT_CAP`]) of distinct models, readings per model and failure
/// reasons are told apart; later distinct ones are counted as "(other)".
/// A job is counted once: a later line of the same job (its id, image and
/// models; a `--retry-failed` run appends one) replaces its failure, at 8
/// bytes (a hash) per failed job kept. Requests, rate-limited replies and
/// the failures by reason count every line.
///
/// # Examples
///
/// ```
/// use restb::outcome::OutcomeLine;
/// use restb::report::Summary;
/// use serde_json::json;
///
/// let line: OutcomeLine = serde_json::from_value(json!({
///     "id": "1", "image": "https://example.com/1.jpg", "models": ["re_roomtype_global_v2"],
///     "status": "ok", "http_status": 200, "attempts": 2, "rate_limited": 1, "latency_ms": 1164.2,
///     "solutions": {"re_roomtype_global_v2": {"top_prediction": {"label": "kitchen", "confidence": 0.97}}}
/// }))?;
/// let mut summary = Summary::new();
/// summary.add(&line);
/// assert_eq!((summary.ok(), summary.failed(), summary.requests()), (1, 0, 2));
/// let model = summary.model("re_roomtype_global_v2").unwrap();
/// assert_eq!(model.readings().get("kitchen"), 1);
/// assert!(summary.render_text().contains("kitchen"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Summary {
    cap: usize,
    ok: u64,
    failed: u64,
    requests: u64,
    rate_limited: u64,
    latency_sum_ms: f64,
    latency_count: u64,
    latency_max_ms: Option<f64>,
    models: BTreeMap<String, ModelSummary>,
    failures: CappedCounts<FailureReason>,
    /// Jobs whose last line so far is a failure, by a hash of what they are.
    failed_jobs: HashSet<u64>,
    /// Failed jobs that a later line redid.
    redone: u64,
}

impl Default for Summary {
    fn default() -> Summary {
        Summary::new()
    }
}

impl Summary {
    /// An empty summary with the default cap ([`DEFAULT_CAP`]).
    pub fn new() -> Summary {
        Summary::with_cap(DEFAULT_CAP)
    }

    /// An empty summary telling apart at most `cap` models, readings per
    /// model and failure reasons.
    pub fn with_cap(cap: usize) -> Summary {
        Summary {
            cap,
            ok: 0,
            failed: 0,
            requests: 0,
            rate_limited: 0,
            latency_sum_ms: 0.0,
            latency_count: 0,
            latency_max_ms: None,
            models: BTreeMap::new(),
            failures: CappedCounts::new(cap),
            failed_jobs: HashSet::new(),
            redone: 0,
        }
    }

    /// Adds one outcome line.
    pub fn add(&mut self, line: &OutcomeLine) {
        self.requests += u64::from(line.attempts);
        self.rate_limited += u64::from(line.rate_limited);
        let job = job_hash(line);
        // A later line of a job that failed replaces that failure.
        let replaces_a_failure = if line.is_ok() {
            self.failed_jobs.remove(&job)
        } else {
            !self.failed_jobs.insert(job)
        };
        if replaces_a_failure {
            self.failed -= 1;
            for model in &line.models {
                let entry = self.model_entry(model);
                entry.failed = entry.failed.saturating_sub(1);
            }
            self.redone += 1;
        }
        if !line.is_ok() {
            self.failed += 1;
            for model in &line.models {
                self.model_entry(model).failed += 1;
            }
            let error = line.error.as_deref().unwrap_or("unknown error");
            self.failures.add(&FailureReason {
                error: truncate(error, MAX_KEY_CHARS),
                http_status: line.http_status,
            });
            return;
        }
        self.ok += 1;
        if let Some(latency) = line.latency_ms.filter(|l| l.is_finite()) {
            self.latency_sum_ms += latency;
            self.latency_count += 1;
            self.latency_max_ms = Some(self.latency_max_ms.map_or(latency, |m| m.max(latency)));
        }
        let solutions = line.solutions.as_ref();
        for model in &line.models {
            let solution = solutions.and_then(|s| s.get(model));
            let entry = self.model_entry(model);
            match solution {
                Some(solution) => {
                    entry.ok += 1;
                    for label in labels(solution) {
                        entry.readings.add(truncate(&label, MAX_KEY_CHARS).as_str());
                    }
                }
                None => entry.no_answer += 1,
            }
        }
    }

    /// The entry of `model`, or of [`OTHER_MODELS`] once the cap is reached.
    fn model_entry(&mut self, model: &str) -> &mut ModelSummary {
        let cap = self.cap;
        if !self.models.contains_key(model) {
            let mut key = truncate(model, MAX_KEY_CHARS);
            if self.models.len() >= cap && !self.models.contains_key(&key) {
                key = OTHER_MODELS.to_string();
            }
            return self
                .models
                .entry(key)
                .or_insert_with(|| ModelSummary::new(cap));
        }
        self.models
            .get_mut(model)
            .expect("the model was just found in the map")
    }

    /// Jobs (lines) added.
    pub fn jobs(&self) -> u64 {
        self.ok + self.failed
    }

    /// Jobs whose status is `ok`.
    pub fn ok(&self) -> u64 {
        self.ok
    }

    /// Jobs whose status is not `ok`.
    pub fn failed(&self) -> u64 {
        self.failed
    }

    /// Requests made: the sum of the jobs' attempts.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Rate-limited replies: the sum over the jobs.
    pub fn rate_limited(&self) -> u64 {
        self.rate_limited
    }

    /// Mean latency of the ok jobs, in milliseconds (`None` without any).
    pub fn mean_latency_ms(&self) -> Option<f64> {
        (self.latency_count > 0).then(|| self.latency_sum_ms / self.latency_count as f64)
    }

    /// Highest latency of the ok jobs, in milliseconds (`None` without any).
    pub fn max_latency_ms(&self) -> Option<f64> {
        self.latency_max_ms
    }

    /// What `model` answered, if any job asked it.
    pub fn model(&self, model: &str) -> Option<&ModelSummary> {
        self.models.get(model)
    }

    /// Every model asked, in name order ([`OTHER_MODELS`] for those past the cap).
    pub fn models(&self) -> impl Iterator<Item = (&str, &ModelSummary)> {
        self.models
            .iter()
            .map(|(name, model)| (name.as_str(), model))
    }

    /// Failed jobs counted by reason.
    pub fn failures(&self) -> &CappedCounts<FailureReason> {
        &self.failures
    }

    /// The report as aligned text: totals, each model's top readings with
    /// counts and shares of its ok answers, and failures by reason, most
    /// frequent first.
    pub fn render_text(&self) -> String {
        let mut out = String::from("Totals\n");
        let mean = self
            .mean_latency_ms()
            .map_or_else(|| "-".to_string(), |ms| format!("{ms:.1} ms"));
        let max = self
            .max_latency_ms()
            .map_or_else(|| "-".to_string(), |ms| format!("{ms:.1} ms"));
        let totals = [
            ("jobs", self.jobs().to_string()),
            ("ok", self.ok.to_string()),
            ("failed", self.failed.to_string()),
            ("requests", self.requests.to_string()),
            ("rate-limited", self.rate_limited.to_string()),
            ("mean latency", mean),
            ("max latency", max),
        ];
        for (name, value) in totals {
            let _ = writeln!(out, "  {name:<14}{value}");
        }
        out += "  (latency of ok jobs; requests and rate-limited replies summed over jobs)\n";
        out += "\nReadings per model (share of the model's ok answers)\n";
        if self.models.is_empty() {
            out += "  (no models)\n";
        }
        for (name, model) in &self.models {
            out += &model_section(name, model);
        }
        out += "\nFailures by reason\n";
        if self.redone > 0 {
            let _ = writeln!(
                out,
                "  (every failed line; later lines tried {} of these jobs again)",
                self.redone
            );
        }
        if self.failures.total() == 0 {
            out += "  (none)\n";
        } else {
            out += &indent(&self.failures_table(), "  ");
        }
        out
    }

    fn failures_table(&self) -> String {
        let top = self.failures.top(TOP_REASONS);
        let mut rows: Vec<[String; 3]> = top
            .iter()
            .map(|(reason, count)| {
                [
                    count.to_string(),
                    reason
                        .http_status
                        .map_or_else(|| "-".to_string(), |s| s.to_string()),
                    reason.error.clone(),
                ]
            })
            .collect();
        let rest = self.failures.total() - top.iter().map(|(_, c)| c).sum::<u64>();
        if rest > 0 {
            rows.push([rest.to_string(), String::new(), "(other)".to_string()]);
        }
        const HEADER: [&str; 3] = ["count", "http", "reason"];
        right_align(&mut rows, 0, HEADER[0]);
        render(&HEADER, &rows)
    }
}

/// One model's heading and top readings.
fn model_section(name: &str, model: &ModelSummary) -> String {
    let mut out = format!("  {name}: {} ok", model.ok);
    if model.failed > 0 {
        let _ = write!(out, ", {} failed", model.failed);
    }
    if model.no_answer > 0 {
        let _ = write!(out, ", {} without an answer", model.no_answer);
    }
    out += "\n";
    if model.ok == 0 {
        return out;
    }
    let share = |count: u64| format!("{:.1}%", count as f64 * 100.0 / model.ok as f64);
    let top = model.readings.top(TOP_READINGS);
    let mut rows: Vec<[String; 3]> = top
        .iter()
        .map(|(reading, count)| [(*reading).clone(), count.to_string(), share(*count)])
        .collect();
    let rest = model.readings.total() - top.iter().map(|(_, c)| c).sum::<u64>();
    if rest > 0 {
        // With several readings an answer (a detector's labels), the rest's
        // mentions are no share of the answers: it read 500 % at 10 labels.
        let several = model.readings.total() > model.ok;
        let rest_share = if several {
            "-".to_string()
        } else {
            share(rest)
        };
        rows.push(["(other)".to_string(), rest.to_string(), rest_share]);
    }
    const HEADER: [&str; 3] = ["reading", "count", "share"];
    right_align(&mut rows, 1, HEADER[1]);
    right_align(&mut rows, 2, HEADER[2]);
    out + &indent(&render(&HEADER, &rows), "    ")
}

/// Pads column `column` of `rows` on the left to its widest cell or its
/// `header`, whichever is wider.
fn right_align<const N: usize>(rows: &mut [[String; N]], column: usize, header: &str) {
    let width = rows
        .iter()
        .map(|row| row[column].chars().count())
        .fold(header.chars().count(), usize::max);
    for row in rows {
        row[column] = format!("{:>width$}", row[column]);
    }
}

/// `text` with `prefix` before each line.
fn indent(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|line| format!("{prefix}{line}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;
    use serde_json::json;

    fn ok_line(id: usize, model: &str, label: &str) -> OutcomeLine {
        OutcomeLine {
            id: id.to_string(),
            image: format!("https://example.com/{id}.jpg"),
            models: vec![model.to_string()],
            status: Status::Ok,
            http_status: Some(200),
            attempts: 1,
            rate_limited: 0,
            latency_ms: Some(100.0 + id as f64),
            solutions: Some(
                json!({ model: {"top_prediction": {"label": label, "confidence": 0.5}} }),
            ),
            error: None,
        }
    }

    fn failed_line(id: usize, error: &str) -> OutcomeLine {
        OutcomeLine {
            status: Status::Failed,
            http_status: Some(400),
            latency_ms: None,
            solutions: None,
            error: Some(error.into()),
            ..ok_line(id, "re_logo", "-")
        }
    }

    #[test]
    fn distinct_readings_past_the_cap_are_lumped() {
        let mut summary = Summary::with_cap(3);
        for id in 0..100 {
            summary.add(&ok_line(id, "m", &format!("label-{}", id % 10)));
        }
        let model = summary.model("m").unwrap();
        assert_eq!(model.ok(), 100);
        assert_eq!(model.readings().distinct(), 3);
        assert_eq!(model.readings().other(), 70);
        assert_eq!(model.readings().total(), 100);
        let text = summary.render_text();
        assert!(text.contains("(other)"), "{text}");
        assert!(text.contains("70.0%"), "{text}");
    }

    /// Regression: a job failed, then redone by `--retry-failed` (a later
    /// line), counted as two jobs, one of them failed.
    #[test]
    fn a_job_redone_by_a_later_line_counts_once() {
        let mut summary = Summary::new();
        summary.add(&failed_line(1, "boom"));
        summary.add(&failed_line(1, "boom"));
        summary.add(&failed_line(2, "boom"));
        summary.add(&ok_line(1, "re_logo", "x"));
        assert_eq!((summary.jobs(), summary.ok(), summary.failed()), (2, 1, 1));
        assert_eq!(summary.model("re_logo").unwrap().failed, 1);
        let text = summary.render_text();
        assert!(
            text.contains("later lines tried 2 of these jobs again"),
            "{text}"
        );
    }

    /// Regression: a detector's answers name several labels each, and the
    /// rest of them read as 500 % of the answers.
    #[test]
    fn the_rest_of_several_readings_an_answer_has_no_share() {
        let mut summary = Summary::new();
        for id in 0..4 {
            let labels: Vec<_> = (0..10).map(|n| json!({"label": format!("l{n}")})).collect();
            summary.add(&OutcomeLine {
                solutions: Some(json!({"det": {"detections": labels}})),
                ..ok_line(id, "det", "-")
            });
        }
        let text = summary.render_text();
        let other = text.lines().find(|l| l.contains("(other)")).expect(&text);
        assert!(other.trim_end().ends_with('-'), "{other}");
        assert!(!text.contains("500.0%"), "{text}");
    }

    #[test]
    fn distinct_models_and_reasons_past_the_cap_are_lumped() {
        let mut summary = Summary::with_cap(2);
        for id in 0..5 {
            summary.add(&ok_line(id, &format!("model-{id}"), "x"));
            summary.add(&failed_line(id, &format!("reason {id}")));
        }
        let names: Vec<&str> = summary.models().map(|(name, _)| name).collect();
        // re_logo (from the failures) and model-0 came first.
        assert_eq!(names, [OTHER_MODELS, "model-0", "re_logo"]);
        assert_eq!(summary.model(OTHER_MODELS).unwrap().ok(), 4);
        assert_eq!(summary.failures().distinct(), 2);
        assert_eq!(summary.failures().other(), 3);
        assert_eq!((summary.ok(), summary.failed(), summary.jobs()), (5, 5, 10));
    }

    #[test]
    fn long_readings_and_reasons_are_cut() {
        let mut summary = Summary::new();
        summary.add(&ok_line(1, "m", &"x".repeat(10_000)));
        summary.add(&failed_line(2, &"y".repeat(10_000)));
        let (reading, _) = summary.model("m").unwrap().readings().top(1)[0];
        assert_eq!(reading.chars().count(), MAX_KEY_CHARS);
        let (reason, _) = summary.failures().top(1)[0];
        assert_eq!(reason.error.chars().count(), MAX_KEY_CHARS);
    }

    #[test]
    fn latency_counts_ok_jobs_only() {
        let mut summary = Summary::new();
        assert_eq!(summary.mean_latency_ms(), None);
        summary.add(&ok_line(0, "m", "a"));
        summary.add(&ok_line(10, "m", "a"));
        summary.add(&failed_line(3, "boom"));
        assert_eq!(summary.mean_latency_ms(), Some(105.0));
        assert_eq!(summary.max_latency_ms(), Some(110.0));
        assert_eq!(summary.requests(), 3);
    }
}

//! A Restb.ai job (one request's worth of work) and the [`Work`] that runs it.

use crate::api::{Client, ImageSource, Quota, QuotaWatch, Verdict};
use crate::input::Record;
use crate::limiter::GatewayHint;
use crate::pool::{Attempt, Work};
use parking_lot::Mutex;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One request's worth of work: an image and the models to ask about it.
///
/// A job has no key of its own across runs: which outcome line of an
/// earlier run is a job's is decided by the
/// [resume index](crate::outcome::ResumeIndex), by its image, models and
/// endpoint, then its id.
///
/// ```compile_fail
/// // Regression: `Job::key` (id and models) stayed public, documented as
/// // the `--resume` identity, after it no longer was.
/// fn stale(job: &restb::job::Job) {
///     let _ = job.key();
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The record's id from the input.
    pub id: String,
    /// The image.
    pub image: ImageSource,
    /// The models of this request: one with `--per-model`, else all of the record's.
    pub models: Vec<String>,
}

/// Turns input records into jobs: one per record asking for all its models
/// (one multipredict request), or with `per_model` one per (record, model)
/// as the tutorial did. A record without its own models gets `default_models`.
pub fn jobs_from_records(
    records: Vec<Record>,
    default_models: &[String],
    per_model: bool,
) -> Vec<Job> {
    let mut jobs = Vec::with_capacity(records.len());
    for record in records {
        let models = record.models.unwrap_or_else(|| default_models.to_vec());
        if per_model {
            for model in models {
                jobs.push(Job {
                    id: record.id.clone(),
                    image: record.image.clone(),
                    models: vec![model],
                });
            }
        } else {
            jobs.push(Job {
                id: record.id,
                image: record.image,
                models,
            });
        }
    }
    jobs
}

/// What one request returned.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOutput {
    /// The HTTP status, if a reply came.
    pub http_status: Option<u16>,
    /// The models' answers on success.
    pub solutions: Option<Value>,
    /// Why it failed, otherwise.
    pub error: Option<String>,
    /// The reply's rate-limit headers, for the limiter.
    pub hint: GatewayHint,
    /// The wait a transient failure's reply asked for before the next try
    /// (a 503's `Retry-After`).
    pub retry_after: Option<Duration>,
}

impl CallOutput {
    fn failed(http_status: Option<u16>, error: String, hint: GatewayHint) -> CallOutput {
        CallOutput {
            http_status,
            solutions: None,
            error: Some(error),
            hint,
            retry_after: None,
        }
    }
}

/// Runs [`Job`]s against the Restb.ai API with a [`Client`].
#[derive(Debug, Clone)]
pub struct RestbWork {
    client: Client,
    /// Every reply by HTTP status (`None`: no reply), retried ones included;
    /// shared by the clones.
    replies: Arc<Mutex<BTreeMap<Option<u16>, u64>>>,
    /// Whether a refusal that stops the run was logged: every request in
    /// flight gets the same one, and one error line says it.
    abort_logged: Arc<AtomicBool>,
    /// The hour, day and month windows the replies report; shared by the clones.
    quota: Arc<QuotaWatch>,
}

impl RestbWork {
    /// Work that sends every job through `client`.
    pub fn new(client: Client) -> RestbWork {
        RestbWork {
            client,
            replies: Arc::default(),
            abort_logged: Arc::default(),
            quota: Arc::default(),
        }
    }

    /// Warn (once, in the log) when the first month figure a reply reports
    /// is below the `jobs` still unanswered; see [`QuotaWatch`].
    pub fn warn_when_quota_below(mut self, jobs: u64) -> RestbWork {
        self.quota = Arc::new(QuotaWatch::warning_below(jobs));
        self
    }

    /// The latest figure of each quota window the replies reported.
    pub fn quota(&self) -> Quota {
        self.quota.latest()
    }

    /// Logs why the run stops, once; the same refusal of the other requests
    /// in flight goes to the debug level.
    fn log_abort(&self, message: &str) {
        if self.abort_logged.swap(true, Ordering::SeqCst) {
            log::debug!("{message}");
        } else {
            log::error!("{message}");
        }
    }

    /// How many replies came with each HTTP status, every try counted (a 500
    /// that was retried into a 200 counts once under each); `"none"` for the
    /// tries that got no reply (network errors, timeouts).
    pub fn replies_by_http_status(&self) -> BTreeMap<String, u64> {
        self.replies
            .lock()
            .iter()
            .map(|(status, n)| {
                (
                    status.map_or_else(|| "none".to_string(), |s| s.to_string()),
                    *n,
                )
            })
            .collect()
    }
}

impl Work for RestbWork {
    type Job = Job;
    type Output = CallOutput;

    fn attempt(&self, job: &Job) -> Attempt<CallOutput> {
        let start = Instant::now();
        let reply = self.client.predict(&job.image, &job.models);
        let status = reply.http_status;
        let hint = reply.hint;
        *self.replies.lock().entry(status).or_default() += 1;
        if status.is_some() {
            self.quota.observe(&reply.quota);
        }
        log::info!(
            target: "restb::request",
            "[{}] thread [{}] processed request in [{}] ms",
            status.map_or_else(|| "---".to_string(), |s| s.to_string()),
            std::thread::current().name().unwrap_or("?"),
            start.elapsed().as_millis()
        );
        match reply.verdict {
            Verdict::Ok(solutions) => Attempt::Success(CallOutput {
                http_status: status,
                solutions: Some(solutions),
                error: None,
                hint,
                retry_after: None,
            }),
            Verdict::RateLimited { retry_after } => Attempt::RateLimited {
                retry_after,
                output: CallOutput::failed(status, "rate limited too many times".into(), hint),
            },
            Verdict::Permanent(error) => Attempt::Failure(CallOutput::failed(status, error, hint)),
            Verdict::Auth(error) => {
                self.log_abort(&format!("the API refused the client key: {error}"));
                Attempt::Abort(CallOutput::failed(
                    status,
                    format!("client key refused: {error}"),
                    hint,
                ))
            }
            Verdict::Fatal(error) => {
                self.log_abort(&error);
                Attempt::Abort(CallOutput::failed(status, error, hint))
            }
            Verdict::Transient(error) => {
                log::warn!("{} ({}): {error}", job.image, job.id);
                Attempt::Transient(CallOutput {
                    retry_after: reply.retry_after,
                    ..CallOutput::failed(status, error, hint)
                })
            }
        }
    }

    fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        self.client.redact(text)
    }

    fn panicked(&self, _job: &Job, message: &str) -> CallOutput {
        // The pool passed `message` through `redact` (a panic deep in the
        // transport may quote the request's URL, key and all).
        CallOutput::failed(
            None,
            format!("internal error: {message}"),
            GatewayHint::default(),
        )
    }

    fn hint(&self, output: &CallOutput) -> Option<GatewayHint> {
        Some(output.hint).filter(|hint| !hint.is_empty())
    }

    fn retry_after(&self, output: &CallOutput) -> Option<Duration> {
        output.retry_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, models: Option<Vec<&str>>) -> Record {
        Record {
            id: id.into(),
            image: ImageSource::Url(format!("https://x/{id}.jpg")),
            models: models.map(|m| m.iter().map(|s| s.to_string()).collect()),
            line: 1,
        }
    }

    #[test]
    fn a_panics_message_reaches_the_outcome_without_the_key() {
        let key = crate::api::ClientKey::new("secret-client-key-123").unwrap();
        let client = Client::new(key, &crate::api::ClientConfig::default()).unwrap();
        let work = RestbWork::new(client);
        let job =
            jobs_from_records(vec![record("1", None)], &["re_logo".to_string()], false).remove(0);
        // As the pool hands it over: through the work's `redact` first.
        let message = work.redact(
            "bad state at https://api.restb.ai/vision/v2/multipredict?client_key=secret-client-key-123",
        );
        let output = work.panicked(&job, &message);
        let error = output.error.expect("a failure");
        assert!(!error.contains("secret-client-key-123"), "{error}");
        assert!(error.starts_with("internal error: bad state at"), "{error}");
    }

    #[test]
    fn grouping_makes_one_job_per_image_or_per_image_and_model() {
        let defaults = vec!["re_logo".to_string(), "re_condition".to_string()];
        let records = vec![record("1", None), record("2", Some(vec!["caption"]))];
        let grouped = jobs_from_records(records.clone(), &defaults, false);
        assert_eq!(grouped.len(), 2);
        assert_eq!(grouped[0].models, defaults);
        assert_eq!(grouped[1].models, vec!["caption".to_string()]);
        let split = jobs_from_records(records, &defaults, true);
        let split: Vec<(&str, Vec<&str>)> = split
            .iter()
            .map(|job| (&job.id[..], job.models.iter().map(|m| &m[..]).collect()))
            .collect();
        assert_eq!(
            split,
            [
                ("1", vec!["re_logo"]),
                ("1", vec!["re_condition"]),
                ("2", vec!["caption"])
            ]
        );
    }
}

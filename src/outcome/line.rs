//! One line of the outcome file: a finished job and how it ended.

use crate::job::{CallOutput, Job};
use crate::pool::Finished;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// How a job ended: written as `"status":"ok"` or `"status":"failed"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The API answered with the models' solutions.
    Ok,
    /// The job ended without an answer (a permanent error, or retries spent).
    Failed,
}

impl Status {
    /// The word written in the outcome file: `ok` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of the outcome file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeLine {
    /// The record's id.
    pub id: String,
    /// The image URL or path, as given.
    pub image: String,
    /// The models of the request.
    pub models: Vec<String>,
    /// How the job ended.
    pub status: Status,
    /// The HTTP status of the last reply, if any came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// Requests made for this job, rate-limited ones included.
    pub attempts: u32,
    /// Requests answered with a rate-limit reply.
    pub rate_limited: u32,
    /// Latency of the successful request, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// The models' answers, raw, keyed by model id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solutions: Option<Value>,
    /// Why the job failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl OutcomeLine {
    /// The line for a finished job.
    pub fn from_finished(finished: Finished<Job, CallOutput>) -> OutcomeLine {
        let Finished {
            job,
            output,
            success,
            attempts,
            rate_limited,
            latency,
        } = finished;
        // Tenths of a millisecond: finer is noise, and it keeps lines short.
        let latency_ms = (latency.as_secs_f64() * 10_000.0).round() / 10.0;
        OutcomeLine {
            id: job.id,
            image: job.image.to_string(),
            models: job.models,
            status: if success { Status::Ok } else { Status::Failed },
            http_status: output.http_status,
            attempts,
            rate_limited,
            latency_ms: success.then_some(latency_ms),
            solutions: output.solutions,
            error: output.error,
        }
    }

    /// Whether the job succeeded.
    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_written_as_the_words_of_the_file_format() {
        let line = r#"{"id":"4","image":"photos/4.jpg","models":["re_logo"],"status":"failed","http_status":400,"attempts":1,"rate_limited":0,"error":"invalid model_id: foo"}"#;
        let parsed: OutcomeLine = serde_json::from_str(line).unwrap();
        assert_eq!(parsed.status, Status::Failed);
        assert_eq!(serde_json::to_string(&parsed).unwrap(), line);
        let ok = line.replace("\"failed\"", "\"ok\"");
        let parsed: OutcomeLine = serde_json::from_str(&ok).unwrap();
        assert!(parsed.is_ok());
        assert_eq!(serde_json::to_string(&parsed).unwrap(), ok);
        let bad = line.replace("\"failed\"", "\"OK\"");
        assert!(serde_json::from_str::<OutcomeLine>(&bad).is_err());
    }
}

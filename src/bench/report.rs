//! A sweep's results as a JSON document and as table rows.

use super::config::{Pacing, SweepConfig, Target};
use super::point::{LatencyBasis, Point};
use serde::{Deserialize, Serialize};

/// The settings of a sweep and its points: what `restb bench --json` writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    /// `"built-in mock"`, or the external gateway's base URL.
    pub target: String,
    /// How the allotment was enforced.
    pub pacing: Pacing,
    /// Requests per point.
    pub requests: usize,
    /// Thread counts of the grid.
    pub threads: Vec<usize>,
    /// Allotted rates of the grid.
    pub rates: Vec<f64>,
    /// The built-in mock's latency in seconds; `None` for an external gateway.
    pub latency_s: Option<f64>,
    /// The built-in mock's jitter in seconds; `None` for an external gateway.
    pub jitter_s: Option<f64>,
    /// Per-phase request timeout in seconds.
    pub timeout_s: f64,
    /// The latency the Little's-law predictions use.
    pub prediction_latency: LatencyBasis,
    /// The measured points, in sweep order.
    pub points: Vec<Point>,
}

impl SweepReport {
    /// The report of `points` measured with `config` against `target`.
    pub fn new(config: &SweepConfig, target: &Target, points: Vec<Point>) -> SweepReport {
        let (name, latency, jitter, basis) = match target {
            Target::Mock { latency, jitter } => (
                "built-in mock".to_string(),
                Some(latency.as_secs_f64()),
                Some(jitter.as_secs_f64()),
                LatencyBasis::Configured,
            ),
            Target::Gateway { base_url, .. } => {
                (base_url.clone(), None, None, LatencyBasis::MeasuredMean)
            }
        };
        SweepReport {
            target: name,
            pacing: config.pacing,
            requests: config.requests.get(),
            threads: config.threads.iter().map(|n| n.get()).collect(),
            rates: config.rates.clone(),
            latency_s: latency,
            jitter_s: jitter,
            timeout_s: config.timeout.as_secs_f64(),
            prediction_latency: basis,
            points,
        }
    }
}

/// Column titles of [`table_rows`].
pub const TABLE_HEADER: [&str; 11] = [
    "threads",
    "rps",
    "ok",
    "sustained/s",
    "throughput/s",
    "429s",
    "transient",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "predicted/s",
];

/// One row of text cells per point, under [`TABLE_HEADER`]. The `ok` cell
/// reads `successes/requests`, with `(stopped)` for a point cut short; the
/// sustained cell reads `n/a` for a point too short to have one, as a run's
/// stats line does.
pub fn table_rows(points: &[Point]) -> Vec<Vec<String>> {
    points
        .iter()
        .map(|p| {
            let mut ok = format!("{}/{}", p.succeeded, p.requests);
            if !p.complete {
                ok += " (stopped)";
            }
            vec![
                p.threads.to_string(),
                trim_float(p.rps),
                ok,
                p.sustained_rps
                    .map_or_else(|| "n/a".to_string(), |r| format!("{r:.2}")),
                format!("{:.2}", p.throughput_rps),
                p.rate_limited.to_string(),
                p.transient.to_string(),
                format!("{:.1}", p.p50_ms),
                format!("{:.1}", p.p95_ms),
                format!("{:.1}", p.p99_ms),
                p.predicted_rps
                    .map_or_else(|| "-".to_string(), |r| format!("{r:.2}")),
            ]
        })
        .collect()
}

/// `4` for 4.0, `2.5` for 2.5.
pub(crate) fn trim_float(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_rates_print_without_decimals() {
        assert_eq!(trim_float(4.0), "4");
        assert_eq!(trim_float(2.5), "2.5");
    }
}

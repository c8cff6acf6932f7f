//! What a sweep measures ([`SweepConfig`]), against what ([`Target`]), and
//! what can be wrong with that ([`BenchError`]).

use restb::api::{validate_base_url, ClientKey, ConfigError};
use serde::{Deserialize, Serialize};
use std::num::NonZeroUsize;
use std::time::Duration;

/// How the allotment is enforced at every point of a sweep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pacing {
    /// The client paces request starts at the allotted rate; the thread count
    /// only bounds how many are in flight.
    #[default]
    Rate,
    /// No pacing: the thread count alone bounds the load (the older plan).
    Concurrency,
}

/// The grid of a sweep: every thread count at every allotted rate.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepConfig {
    /// Worker thread counts, measured in this order. Defaults to 1, 2, 4, 8, 16.
    pub threads: Vec<NonZeroUsize>,
    /// Allotted requests per second, one series each. Defaults to 4.
    pub rates: Vec<f64>,
    /// Requests per point. Defaults to 40.
    pub requests: NonZeroUsize,
    /// How the allotment is enforced. Defaults to [`Pacing::Rate`].
    pub pacing: Pacing,
    /// Limit on each phase of a request. Defaults to 30 s.
    pub timeout: Duration,
}

impl Default for SweepConfig {
    fn default() -> SweepConfig {
        SweepConfig {
            threads: [1, 2, 4, 8, 16]
                .into_iter()
                .filter_map(NonZeroUsize::new)
                .collect(),
            rates: vec![4.0],
            requests: NonZeroUsize::new(40).expect("40 is not zero"),
            pacing: Pacing::Rate,
            timeout: Duration::from_secs(30),
        }
    }
}

/// The gateway a sweep runs against.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A fresh built-in mock gateway on loopback for every point, allowing the
    /// point's rate in Kong-style fixed one-second windows.
    Mock {
        /// Latency of each answer.
        latency: Duration,
        /// Uniform `+-jitter` on the latency.
        jitter: Duration,
    },
    /// An external gateway (the real API, or a `restb mock` elsewhere).
    Gateway {
        /// Its base URL.
        base_url: String,
        /// The account's key.
        key: ClientKey,
        /// Permit plain `http://` to a host that is not loopback.
        allow_http: bool,
    },
}

impl Target {
    /// The built-in mock with the tutorial's latency (1.16 s) and no jitter.
    #[cfg(test)]
    pub fn tutorial_mock() -> Target {
        Target::Mock {
            latency: Duration::from_millis(1160),
            jitter: Duration::ZERO,
        }
    }
}

/// A sweep that cannot run, found before any request is sent (except
/// [`BenchError::Mock`], which may also happen between points).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// No thread counts to measure.
    #[error("threads: the list is empty")]
    NoThreads,
    /// No rates to measure.
    #[error("rps: the list is empty")]
    NoRates,
    /// A rate that is not a finite number in (0, 10^6].
    #[error("rps: '{0}' is not a rate in (0, 1000000]")]
    BadRate(f64),
    /// The built-in mock counts whole requests per one-second window.
    #[error(
        "rps: '{0}' is not a whole number (the built-in mock allows whole requests per second)"
    )]
    FractionalMockRate(f64),
    /// The external gateway's base URL is malformed or plain HTTP.
    #[error("base URL: {0}")]
    BaseUrl(#[from] ConfigError),
    /// The built-in mock gateway did not start.
    #[error("cannot start the mock gateway on loopback: {0}")]
    Mock(#[from] std::io::Error),
}

/// Checks `config` and `target` together.
///
/// # Errors
/// Empty lists, a rate out of range, a fractional rate for the built-in
/// mock, or a bad base URL.
pub fn validate(config: &SweepConfig, target: &Target) -> Result<(), BenchError> {
    if config.threads.is_empty() {
        return Err(BenchError::NoThreads);
    }
    if config.rates.is_empty() {
        return Err(BenchError::NoRates);
    }
    for &rps in &config.rates {
        if !rps.is_finite() || rps <= 0.0 || rps > 1e6 {
            return Err(BenchError::BadRate(rps));
        }
        if matches!(target, Target::Mock { .. }) && rps.fract() != 0.0 {
            return Err(BenchError::FractionalMockRate(rps));
        }
    }
    if let Target::Gateway {
        base_url,
        allow_http,
        ..
    } = target
    {
        validate_base_url(base_url, *allow_http)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_documented_sweep() {
        let config = SweepConfig::default();
        let threads: Vec<usize> = config.threads.iter().map(|n| n.get()).collect();
        assert_eq!(threads, vec![1, 2, 4, 8, 16]);
        assert_eq!(config.rates, vec![4.0]);
        assert!(validate(&config, &Target::tutorial_mock()).is_ok());
    }

    #[test]
    fn bad_grids_are_refused_up_front() {
        let mock = Target::tutorial_mock();
        let with_rates = |rates: Vec<f64>| SweepConfig {
            rates,
            ..SweepConfig::default()
        };
        assert!(matches!(
            validate(&with_rates(vec![]), &mock),
            Err(BenchError::NoRates)
        ));
        assert!(matches!(
            validate(&with_rates(vec![2.5]), &mock),
            Err(BenchError::FractionalMockRate(_))
        ));
        assert!(matches!(
            validate(&with_rates(vec![f64::NAN]), &mock),
            Err(BenchError::BadRate(_))
        ));
        let remote = Target::Gateway {
            base_url: "http://example.com".into(),
            key: ClientKey::new("k").unwrap(),
            allow_http: false,
        };
        assert!(validate(&with_rates(vec![2.5]), &remote).is_err());
        let remote_https = Target::Gateway {
            base_url: "https://example.com".into(),
            key: ClientKey::new("k").unwrap(),
            allow_http: false,
        };
        assert!(validate(&with_rates(vec![2.5]), &remote_https).is_ok());
    }
}

//! Injected upstream and gateway failures: which kinds exist, how likely each is,
//! and the `--faults` spec (`500=0.05,reset=0.02,...`) that sets them.
//!
//! Probabilities are kept as whole parts per billion, so a mix compares, hashes and
//! sums exactly (`0.1 + 0.2 + 0.7` is exactly 1 here) and a draw is one integer
//! roll of the per-request rng: the same seed and request order give the same faults.

use std::fmt;
use std::str::FromStr;

/// The resolution of a probability: parts per billion.
const SCALE: u32 = 1_000_000_000;

/// One kind of failure the mock can inject in place of (or into) a normal answer.
///
/// Each imitates something a real client of the API meets behind Kong and a load
/// balancer (RESTB_API.md, "Errors"), so client code can be tested against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// HTTP 500 with the API's error envelope
    /// `{"error":"true","error_id":"500","message":"internal server error"}`.
    Status500,
    /// HTTP 503 with a Kong / load-balancer body `{"message":"service unavailable"}`.
    Status503,
    /// HTTP 502 with `Content-Type: text/html` and an nginx error page, as a load
    /// balancer in front of the gateway sends it; no rate-limit headers.
    Html502,
    /// The connection is closed without a single response byte.
    Reset,
    /// HTTP 200 whose Content-Length announces the whole answer but only half of
    /// the body is sent before the connection is closed.
    Truncated,
    /// HTTP 200 with `Content-Type: text/plain` and a body that is not JSON.
    NotJson,
    /// No answer at all until [`MockConfig::hang`](super::MockConfig::hang) has
    /// passed (or the server stops), then the connection is closed.
    Hang,
    /// HTTP 200 carrying a permanent API error:
    /// `{"error":"true","error_id":"003","message":"image could not be processed"}`.
    Error200,
    /// HTTP 200 carrying the legacy rate-limit error in the body:
    /// `{"error":"true","error_id":"005","message":"API rate limit exceeded"}`.
    Legacy005,
    /// A normal answer without any rate-limit headers.
    NoRateLimitHeaders,
}

impl Fault {
    /// Every kind, in the order a spec lists them.
    pub const ALL: [Fault; 10] = [
        Fault::Status500,
        Fault::Status503,
        Fault::Html502,
        Fault::Reset,
        Fault::Truncated,
        Fault::NotJson,
        Fault::Hang,
        Fault::Error200,
        Fault::Legacy005,
        Fault::NoRateLimitHeaders,
    ];

    /// The canonical name in a spec (`500`, `reset`, `noheaders`...), also its `Display`.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Status500 => "500",
            Fault::Status503 => "503",
            Fault::Html502 => "502",
            Fault::Reset => "reset",
            Fault::Truncated => "truncated",
            Fault::NotJson => "notjson",
            Fault::Hang => "hang",
            Fault::Error200 => "error200",
            Fault::Legacy005 => "005",
            Fault::NoRateLimitHeaders => "noheaders",
        }
    }

    /// Position in [`Fault::ALL`] (and in a mix's table).
    fn index(self) -> usize {
        self as usize
    }

    /// The names a spec accepts for this kind, canonical first.
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Fault::Html502 => &["502", "html502"],
            Fault::Legacy005 => &["005", "legacy005"],
            _ => &[],
        }
    }

    /// The list of canonical names, for error messages.
    fn known() -> String {
        Fault::ALL.map(Fault::name).join(", ")
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Fault {
    type Err = FaultSpecError;

    /// A kind by name, case-insensitive; `html502` and `legacy005` are accepted too.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim();
        Fault::ALL
            .into_iter()
            .find(|fault| {
                fault.name().eq_ignore_ascii_case(name)
                    || fault.aliases().iter().any(|a| a.eq_ignore_ascii_case(name))
            })
            .ok_or_else(|| {
                FaultSpecError(format!(
                    "fault '{name}': unknown kind (known: {})",
                    Fault::known()
                ))
            })
    }
}

/// A fault spec or probability that cannot be used; the message names the bad item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FaultSpecError(String);

/// How likely each [`Fault`] is per request (drawn independently for each request
/// that passed auth and the rate limit). The probabilities add up to at most 1; the
/// rest is the chance of a normal answer.
///
/// The default is [`FaultMix::none`]. Probabilities have a resolution of 1e-9.
///
/// ```
/// use restb::mock::{Fault, FaultMix};
///
/// let mix: FaultMix = "500=0.05,Reset=0.02,html502=0.01".parse()?;
/// assert_eq!(mix, FaultMix::none()
///     .with(Fault::Status500, 0.05)
///     .with(Fault::Html502, 0.01)
///     .with(Fault::Reset, 0.02));
/// assert_eq!(mix.to_string(), "500=0.05,502=0.01,reset=0.02");
/// # Ok::<(), restb::mock::FaultSpecError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FaultMix {
    /// Parts per billion of each kind, indexed like [`Fault::ALL`].
    ppb: [u32; Fault::ALL.len()],
}

impl FaultMix {
    /// No faults: every request gets its normal answer.
    pub const fn none() -> Self {
        FaultMix {
            ppb: [0; Fault::ALL.len()],
        }
    }

    /// Whether no fault can ever be drawn.
    pub fn is_empty(&self) -> bool {
        self.ppb.iter().all(|&p| p == 0)
    }

    /// This mix with `fault` at `probability` (replacing its previous value).
    ///
    /// # Panics
    /// When `probability` is not within `[0, 1]` or the total would exceed 1; use
    /// [`FaultMix::try_with`] for input that is not known good.
    #[must_use]
    pub fn with(self, fault: Fault, probability: f64) -> Self {
        self.try_with(fault, probability)
            .unwrap_or_else(|e| panic!("FaultMix::with: {e}"))
    }

    /// This mix with `fault` at `probability`, or why that is not a valid mix.
    ///
    /// # Errors
    /// `probability` is not within `[0, 1]` (or is NaN), or the total would exceed 1.
    pub fn try_with(mut self, fault: Fault, probability: f64) -> Result<Self, FaultSpecError> {
        if !(0.0..=1.0).contains(&probability) {
            return Err(FaultSpecError(format!(
                "fault '{fault}={probability}': probability must be between 0 and 1"
            )));
        }
        // In [0, 1], so the product is in [0, 1e9] and fits a u32.
        self.ppb[fault.index()] = (probability * f64::from(SCALE)).round() as u32;
        self.check_total()?;
        Ok(self)
    }

    /// The probability of `fault` per request.
    pub fn probability(&self, fault: Fault) -> f64 {
        f64::from(self.ppb[fault.index()]) / f64::from(SCALE)
    }

    /// The probability that a request gets any fault.
    pub fn total(&self) -> f64 {
        self.total_ppb() as f64 / f64::from(SCALE)
    }

    /// The kinds with a non-zero probability, in [`Fault::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Fault, f64)> + '_ {
        Fault::ALL
            .into_iter()
            .filter(|f| self.ppb[f.index()] > 0)
            .map(|f| (f, self.probability(f)))
    }

    /// Draw the fault of one request (`None`: answer normally). An empty mix does
    /// not touch `rng`, so adding no faults changes nothing else drawn from it.
    pub(crate) fn draw(&self, rng: &mut fastrand::Rng) -> Option<Fault> {
        if self.is_empty() {
            return None;
        }
        let roll = u64::from(rng.u32(0..SCALE));
        let mut below = 0u64;
        for fault in Fault::ALL {
            below += u64::from(self.ppb[fault.index()]);
            if roll < below {
                return Some(fault);
            }
        }
        None
    }

    /// The sum in parts per billion (a u64: ten values up to 1e9 each).
    fn total_ppb(&self) -> u64 {
        self.ppb.iter().map(|&p| u64::from(p)).sum()
    }

    /// An error when the probabilities add up to more than 1.
    fn check_total(&self) -> Result<(), FaultSpecError> {
        if self.total_ppb() > u64::from(SCALE) {
            return Err(FaultSpecError(format!(
                "faults add up to {}, more than 1",
                self.total()
            )));
        }
        Ok(())
    }
}

impl fmt::Display for FaultMix {
    /// The canonical spec: non-zero kinds in [`Fault::ALL`] order, or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        for (i, (fault, probability)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{fault}={probability}")?;
        }
        Ok(())
    }
}

impl FromStr for FaultMix {
    type Err = FaultSpecError;

    /// Parse `KIND=PROBABILITY[,KIND=PROBABILITY...]`, e.g.
    /// `500=0.05,503=0.05,502=0.02,reset=0.02,truncated=0.02,notjson=0.02,hang=0.01,error200=0.02,005=0.02,noheaders=0.1`.
    /// Names are case-insensitive (`html502` and `legacy005` work too); an empty
    /// spec or `none` is no faults; empty items (a trailing comma) are ignored.
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let spec = spec.trim();
        if spec.is_empty() || spec.eq_ignore_ascii_case("none") {
            return Ok(FaultMix::none());
        }
        let mut mix = FaultMix::none();
        let mut seen = [false; Fault::ALL.len()];
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let Some((kind, probability)) = item.split_once('=') else {
                return Err(FaultSpecError(format!(
                    "fault '{item}': expected KIND=PROBABILITY, e.g. 500=0.05"
                )));
            };
            let fault: Fault = kind.trim().parse().map_err(|_| {
                FaultSpecError(format!(
                    "fault '{item}': unknown kind (known: {})",
                    Fault::known()
                ))
            })?;
            if std::mem::replace(&mut seen[fault.index()], true) {
                return Err(FaultSpecError(format!(
                    "fault '{item}': {fault} is given twice"
                )));
            }
            let probability: f64 = probability.trim().parse().map_err(|_| {
                FaultSpecError(format!(
                    "fault '{item}': probability must be a number between 0 and 1"
                ))
            })?;
            if !(0.0..=1.0).contains(&probability) {
                return Err(FaultSpecError(format!(
                    "fault '{item}': probability must be between 0 and 1"
                )));
            }
            mix.ppb[fault.index()] = (probability * f64::from(SCALE)).round() as u32;
        }
        // The total is checked once at the end, so the message gives the whole sum.
        mix.check_total()?;
        Ok(mix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = "500=0.05,503=0.05,502=0.02,reset=0.02,truncated=0.02,notjson=0.02,hang=0.01,error200=0.02,005=0.02,noheaders=0.1";

    fn err(spec: &str) -> String {
        spec.parse::<FaultMix>().unwrap_err().to_string()
    }

    #[test]
    fn parses_the_full_spec_and_gives_it_back() {
        let mix: FaultMix = FULL.parse().unwrap();
        assert_eq!(mix.probability(Fault::Status500), 0.05);
        assert_eq!(mix.probability(Fault::Hang), 0.01);
        assert_eq!(mix.probability(Fault::NoRateLimitHeaders), 0.1);
        assert_eq!(mix.iter().count(), 10);
        assert!((mix.total() - 0.33).abs() < 1e-12);
        assert_eq!(mix.to_string(), FULL);
        assert_eq!(mix.to_string().parse::<FaultMix>().unwrap(), mix);
    }

    #[test]
    fn names_are_case_insensitive_with_aliases() {
        let mix: FaultMix = " HTML502=0.5 , Legacy005=0.25, NoHeaders=0.25,"
            .parse()
            .unwrap();
        assert_eq!(mix.to_string(), "502=0.5,005=0.25,noheaders=0.25");
        assert_eq!("RESET".parse::<Fault>(), Ok(Fault::Reset));
        for fault in Fault::ALL {
            assert_eq!(fault.to_string().parse::<Fault>(), Ok(fault));
        }
    }

    #[test]
    fn empty_and_none_are_no_faults() {
        for spec in ["", "none", " NONE ", "500=0"] {
            let mix: FaultMix = spec.parse().unwrap();
            assert!(mix.is_empty(), "{spec}");
            assert_eq!(mix, FaultMix::default());
            assert_eq!(mix.to_string(), "none");
        }
    }

    #[test]
    fn bad_specs_name_the_bad_item() {
        assert_eq!(
            err("500=0.1,foo=0.1"),
            "fault 'foo=0.1': unknown kind (known: 500, 503, 502, reset, truncated, notjson, hang, error200, 005, noheaders)"
        );
        assert_eq!(
            err("500=2"),
            "fault '500=2': probability must be between 0 and 1"
        );
        assert_eq!(
            err("500=-0.1"),
            "fault '500=-0.1': probability must be between 0 and 1"
        );
        assert_eq!(
            err("500=NaN"),
            "fault '500=NaN': probability must be between 0 and 1"
        );
        assert_eq!(
            err("reset=lots"),
            "fault 'reset=lots': probability must be a number between 0 and 1"
        );
        assert_eq!(
            err("reset"),
            "fault 'reset': expected KIND=PROBABILITY, e.g. 500=0.05"
        );
        assert_eq!(
            err("502=0.1,html502=0.2"),
            "fault 'html502=0.2': 502 is given twice"
        );
        assert_eq!(
            err("500=0.5,503=0.5,hang=0.3"),
            "faults add up to 1.3, more than 1"
        );
    }

    #[test]
    fn sums_are_exact() {
        let mix: FaultMix = "500=0.1,503=0.2,reset=0.7".parse().unwrap();
        assert_eq!(mix.total(), 1.0);
    }

    #[test]
    fn builder() {
        let mix = FaultMix::none()
            .with(Fault::Reset, 0.5)
            .with(Fault::Reset, 0.25);
        assert_eq!(mix.probability(Fault::Reset), 0.25);
        assert!(FaultMix::none().try_with(Fault::Hang, 1.5).is_err());
        assert!(mix.try_with(Fault::Hang, 0.8).is_err());
    }

    #[test]
    #[should_panic(expected = "probability must be between 0 and 1")]
    fn builder_panics_on_a_bad_probability() {
        let _ = FaultMix::none().with(Fault::Hang, -1.0);
    }

    #[test]
    fn draws_follow_the_probabilities() {
        let mut rng = fastrand::Rng::with_seed(7);
        assert_eq!(FaultMix::none().draw(&mut rng), None);
        let one = FaultMix::none().with(Fault::Truncated, 1.0);
        assert!((0..100).all(|_| one.draw(&mut rng) == Some(Fault::Truncated)));
        let half = FaultMix::none()
            .with(Fault::Status500, 0.25)
            .with(Fault::Hang, 0.25);
        let draws: Vec<_> = (0..4000).map(|_| half.draw(&mut rng)).collect();
        let count = |f| draws.iter().filter(|&&d| d == f).count();
        assert!((800..1200).contains(&count(Some(Fault::Status500))));
        assert!((800..1200).contains(&count(Some(Fault::Hang))));
        assert!((1800..2200).contains(&count(None)));
    }

    #[test]
    fn an_empty_mix_leaves_the_rng_alone() {
        let mut a = fastrand::Rng::with_seed(3);
        let mut b = fastrand::Rng::with_seed(3);
        let _ = FaultMix::none().draw(&mut a);
        assert_eq!(a.u64(..), b.u64(..));
    }
}

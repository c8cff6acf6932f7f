//! Chart axes: a log2 axis for thread counts, a linear one for rates, and
//! round tick values.

/// Maps values to pixels on a log2 axis (thread counts double per step).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Log2Axis {
    low: f64,
    high: f64,
    from: f64,
    to: f64,
}

impl Log2Axis {
    /// An axis over `values` (all at least 1) drawn from pixel `from` to `to`.
    pub(crate) fn new(values: impl IntoIterator<Item = f64>, from: f64, to: f64) -> Log2Axis {
        let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
        for value in values {
            let log = value.max(1.0).log2();
            low = low.min(log);
            high = high.max(log);
        }
        if !low.is_finite() {
            (low, high) = (0.0, 0.0);
        }
        Log2Axis {
            low,
            high,
            from,
            to,
        }
    }

    /// The pixel of `value`; a single-valued axis puts it in the middle.
    pub(crate) fn at(&self, value: f64) -> f64 {
        if self.high <= self.low {
            return (self.from + self.to) / 2.0;
        }
        let share = (value.max(1.0).log2() - self.low) / (self.high - self.low);
        self.from + share * (self.to - self.from)
    }
}

/// Maps 0..=`top` to pixels `bottom` (for 0) up to `top_px` (for `top`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LinearAxis {
    /// The value at the top of the axis.
    pub(crate) top: f64,
    bottom_px: f64,
    top_px: f64,
}

impl LinearAxis {
    /// An axis from 0 to `top` (made positive), drawn from `bottom_px` up to `top_px`.
    pub(crate) fn new(top: f64, bottom_px: f64, top_px: f64) -> LinearAxis {
        let top = if top.is_finite() && top > 0.0 {
            top
        } else {
            1.0
        };
        LinearAxis {
            top,
            bottom_px,
            top_px,
        }
    }

    /// The pixel of `value`.
    pub(crate) fn at(&self, value: f64) -> f64 {
        self.bottom_px - value / self.top * (self.bottom_px - self.top_px)
    }
}

/// Round ticks from 0 covering `max`: steps of 1, 2 or 5 times a power of
/// ten, about `count` of them; the last tick is at or above `max`.
pub(crate) fn nice_ticks(max: f64, count: usize) -> Vec<f64> {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let raw = max / count.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = match raw / magnitude {
        n if n <= 1.0 => magnitude,
        n if n <= 2.0 => 2.0 * magnitude,
        n if n <= 5.0 => 5.0 * magnitude,
        _ => 10.0 * magnitude,
    };
    let steps = (max / step - 1e-9).ceil().max(1.0) as usize;
    (0..=steps).map(|i| i as f64 * step).collect()
}

/// A tick label: no decimals for whole numbers, else up to two.
pub(crate) fn tick_label(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_maximum() {
        assert_eq!(nice_ticks(4.0, 5), vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(nice_ticks(4.4, 5), vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(nice_ticks(23.0, 5), vec![0.0, 5.0, 10.0, 15.0, 20.0, 25.0]);
        let labels: Vec<String> = nice_ticks(0.0, 5).into_iter().map(tick_label).collect();
        assert_eq!(labels, ["0", "0.2", "0.4", "0.6", "0.8", "1"]);
        assert_eq!(tick_label(25.0), "25");
    }

    #[test]
    fn thread_counts_double_per_equal_step() {
        let axis = Log2Axis::new([1.0, 2.0, 4.0, 16.0], 0.0, 400.0);
        assert_eq!(axis.at(1.0), 0.0);
        assert_eq!(axis.at(2.0), 100.0);
        assert_eq!(axis.at(16.0), 400.0);
        let single = Log2Axis::new([8.0], 0.0, 400.0);
        assert_eq!(single.at(8.0), 200.0);
    }

    #[test]
    fn the_linear_axis_grows_upward() {
        let axis = LinearAxis::new(10.0, 300.0, 100.0);
        assert_eq!(axis.at(0.0), 300.0);
        assert_eq!(axis.at(10.0), 100.0);
        assert_eq!(LinearAxis::new(0.0, 300.0, 100.0).top, 1.0);
    }
}

//! The sweep chart, drawn as SVG by hand: sustained rate against threads.
//!
//! One solid polyline with dots per allotted rate (the measured series: each
//! point's sustained rate, as a run's stats define it), a dashed horizontal
//! line at each allotted rate, and a dotted path through the Little's-law
//! predictions of each series; log2 x axis, linear y axis. A point too short
//! to have a sustained rate has no dot; a note says how many there are.

use super::point::Point;
use super::report::trim_float;
use super::scale::{nice_ticks, tick_label, LinearAxis, Log2Axis};

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 440.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = WIDTH - 200.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = HEIGHT - 60.0;
const COLOURS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
];

/// The chart of `points` under `title`, as a standalone SVG document.
///
/// # Examples
/// ```
/// let svg = restb::bench::render_svg(&[], "empty sweep");
/// assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
/// ```
pub fn render_svg(points: &[Point], title: &str) -> String {
    let series = series(points);
    let top = points
        .iter()
        .flat_map(|p| {
            [
                p.sustained_rps.unwrap_or(0.0),
                p.rps,
                p.predicted_rps.unwrap_or(0.0),
            ]
        })
        .fold(0.0, f64::max);
    let ticks = nice_ticks(top * 1.05, 5);
    let y = LinearAxis::new(*ticks.last().unwrap_or(&1.0), BOTTOM, TOP);
    let x = Log2Axis::new(
        points.iter().map(|p| p.threads as f64),
        LEFT + 20.0,
        RIGHT - 20.0,
    );
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"white\"/>\n\
         <text x=\"{:.1}\" y=\"28\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
        WIDTH / 2.0,
        escape(title)
    );
    out += &y_axis(&ticks, &y);
    out += &x_axis(points, &x);
    for (index, (rps, members)) in series.iter().enumerate() {
        out += &draw_series(*rps, members, COLOURS[index % COLOURS.len()], &x, &y);
    }
    let unrated = points.iter().filter(|p| p.sustained_rps.is_none()).count();
    let note = match (points.len(), unrated) {
        (0, _) => Some("no points measured".to_string()),
        (_, 0) => None,
        (_, n) => Some(format!(
            "{n} point{} too short for a sustained rate (not drawn)",
            if n == 1 { "" } else { "s" }
        )),
    };
    if let Some(note) = note {
        out += &format!(
            "<text class=\"note\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#888\">{}</text>\n",
            (LEFT + RIGHT) / 2.0,
            (TOP + BOTTOM) / 2.0,
            escape(&note)
        );
    }
    out += &legend(&series);
    out += "</svg>\n";
    out
}

/// Points grouped by allotted rate, in order of first appearance, each
/// group sorted by thread count.
fn series(points: &[Point]) -> Vec<(f64, Vec<&Point>)> {
    let mut groups: Vec<(f64, Vec<&Point>)> = Vec::new();
    for point in points {
        match groups.iter_mut().find(|(rps, _)| *rps == point.rps) {
            Some((_, members)) => members.push(point),
            None => groups.push((point.rps, vec![point])),
        }
    }
    for (_, members) in &mut groups {
        members.sort_by_key(|p| p.threads);
    }
    groups
}

fn y_axis(ticks: &[f64], y: &LinearAxis) -> String {
    let mut out = String::new();
    for &tick in ticks {
        let py = y.at(tick);
        out += &format!(
            "<line x1=\"{LEFT}\" y1=\"{py:.1}\" x2=\"{RIGHT}\" y2=\"{py:.1}\" stroke=\"#e5e5e5\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            LEFT - 6.0,
            py + 4.0,
            tick_label(tick)
        );
    }
    out += &format!(
        "<line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{BOTTOM}\" stroke=\"black\"/>\n\
         <text x=\"18\" y=\"{mid:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {mid:.1})\">\
         sustained successes per second</text>\n",
        mid = (TOP + BOTTOM) / 2.0
    );
    out
}

fn x_axis(points: &[Point], x: &Log2Axis) -> String {
    let mut threads: Vec<usize> = points.iter().map(|p| p.threads).collect();
    threads.sort_unstable();
    threads.dedup();
    let mut out = format!(
        "<line x1=\"{LEFT}\" y1=\"{BOTTOM}\" x2=\"{RIGHT}\" y2=\"{BOTTOM}\" stroke=\"black\"/>\n"
    );
    for n in threads {
        let px = x.at(n as f64);
        out += &format!(
            "<line x1=\"{px:.1}\" y1=\"{BOTTOM}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"black\"/>\n\
             <text x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{n}</text>\n",
            BOTTOM + 5.0,
            BOTTOM + 19.0
        );
    }
    out += &format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">worker threads (log2 scale)</text>\n",
        (LEFT + RIGHT) / 2.0,
        BOTTOM + 42.0
    );
    out
}

fn draw_series(rps: f64, members: &[&Point], colour: &str, x: &Log2Axis, y: &LinearAxis) -> String {
    let allotted = y.at(rps);
    let mut out = format!(
        "<line class=\"allotted\" x1=\"{LEFT}\" y1=\"{allotted:.1}\" x2=\"{RIGHT}\" y2=\"{allotted:.1}\" \
         stroke=\"{colour}\" stroke-opacity=\"0.6\" stroke-dasharray=\"8 5\"/>\n"
    );
    let predicted: Vec<String> = members
        .iter()
        .filter_map(|p| {
            p.predicted_rps
                .map(|r| format!("{:.1} {:.1}", x.at(p.threads as f64), y.at(r)))
        })
        .collect();
    if !predicted.is_empty() {
        out += &format!(
            "<path class=\"prediction\" d=\"M {}\" fill=\"none\" stroke=\"{colour}\" \
             stroke-opacity=\"0.8\" stroke-dasharray=\"2 4\" stroke-width=\"1.5\"/>\n",
            predicted.join(" L ")
        );
    }
    // Only points with a sustained rate are drawn (see the module doc).
    let measured: Vec<(&Point, f64, f64, f64)> = members
        .iter()
        .filter_map(|p| {
            p.sustained_rps
                .map(|r| (*p, r, x.at(p.threads as f64), y.at(r)))
        })
        .collect();
    if measured.is_empty() {
        return out;
    }
    let coordinates: Vec<String> = measured
        .iter()
        .map(|(_, _, px, py)| format!("{px:.1},{py:.1}"))
        .collect();
    out += &format!(
        "<polyline class=\"measured\" points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>\n",
        coordinates.join(" ")
    );
    for (p, sustained, px, py) in &measured {
        out += &format!(
            "<circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"3.5\" fill=\"{colour}\">\
             <title>{} threads at {}/s allotted: {:.2}/s sustained, {:.2}/s throughput</title></circle>\n",
            p.threads,
            trim_float(rps),
            sustained,
            p.throughput_rps
        );
    }
    out
}

fn legend(series: &[(f64, Vec<&Point>)]) -> String {
    let left = RIGHT + 20.0;
    let mut out = String::new();
    let mut row = |line_style: &str, colour: &str, label: String, dot: bool, index: usize| {
        let py = TOP + 10.0 + 20.0 * index as f64;
        out += &format!(
            "<line x1=\"{left}\" y1=\"{py:.1}\" x2=\"{:.1}\" y2=\"{py:.1}\" stroke=\"{colour}\" stroke-width=\"2\"{line_style}/>\n",
            left + 24.0
        );
        if dot {
            out += &format!(
                "<circle cx=\"{:.1}\" cy=\"{py:.1}\" r=\"3.5\" fill=\"{colour}\"/>\n",
                left + 12.0
            );
        }
        out += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>\n",
            left + 30.0,
            py + 4.0,
            escape(&label)
        );
    };
    for (index, (rps, _)) in series.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        row(
            "",
            colour,
            format!("sustained, {}/s allotted", trim_float(*rps)),
            true,
            index,
        );
    }
    let next = series.len();
    row(
        " stroke-dasharray=\"8 5\"",
        "#777",
        "allotted rate".into(),
        false,
        next,
    );
    row(
        " stroke-dasharray=\"2 4\"",
        "#777",
        "Little's law".into(),
        false,
        next + 1,
    );
    out
}

/// `text` with the five XML special characters escaped.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_escaped() {
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
        assert!(render_svg(&[], "x < y").contains("x &lt; y"));
    }
}

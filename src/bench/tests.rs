//! The sweep against the built-in mock, the chart's well-formedness and the
//! JSON report, tested inside the binary (the sweep is not library API; the
//! `restb bench` command itself is tested in `tests/bench.rs`).

use super::{
    littles_law, render_svg, sweep, table_rows, LatencyBasis, Point, SweepConfig, SweepReport,
    Target, TABLE_HEADER,
};
use restb::stats::{AttemptKind, Stats};
use restb::stop::Stop;
use serde_json::Value;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

/// The example the module's documentation gave while it was library API.
#[test]
fn one_point_comes_out_as_a_row_a_chart_and_json() {
    let config = SweepConfig {
        threads: vec![NonZeroUsize::new(2).unwrap()],
        rates: vec![50.0],
        requests: NonZeroUsize::new(5).unwrap(),
        ..SweepConfig::default()
    };
    let target = Target::Mock {
        latency: Duration::from_millis(10),
        jitter: Duration::ZERO,
    };
    let points = sweep(&config, &target, &Stop::new(), |point| {
        eprintln!("{} threads: {:.1}/s", point.threads, point.throughput_rps);
    })
    .unwrap();
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].succeeded, 5);
    assert_eq!(table_rows(&points).len(), 1);
    // Five requests within a second have no sustained rate: nothing to draw.
    assert_eq!(points[0].sustained_rps, None);
    let svg = render_svg(&points, "2 threads at 50/s");
    assert_eq!(svg.matches("<polyline").count(), 0);
    assert!(svg.contains("1 point too short for a sustained rate"));
    let json = serde_json::to_string(&SweepReport::new(&config, &target, points)).unwrap();
    assert!(json.contains("\"prediction_latency\":\"configured\""));
    let back: SweepReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back.prediction_latency, LatencyBasis::Configured);
}

fn threads(list: &[usize]) -> Vec<NonZeroUsize> {
    list.iter()
        .map(|&n| NonZeroUsize::new(n).unwrap())
        .collect()
}

fn mock(latency_ms: u64) -> Target {
    Target::Mock {
        latency: Duration::from_millis(latency_ms),
        jitter: Duration::ZERO,
    }
}

/// Loose XML check: starts with `<svg`, every opened tag is closed in order,
/// and attribute values hold no raw `<`.
fn assert_well_formed(svg: &str) {
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(40)]);
    let mut open: Vec<String> = Vec::new();
    let mut rest = svg;
    while let Some(at) = rest.find('<') {
        let end = rest[at..].find('>').expect("every tag ends") + at;
        let tag = &rest[at + 1..end];
        assert!(!tag.contains('<'), "a raw '<' inside <{tag}>");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                open.pop().as_deref(),
                Some(name.trim()),
                "mismatched </{name}>"
            );
        } else if !tag.ends_with('/') {
            let name = tag.split_whitespace().next().expect("a tag name");
            open.push(name.to_string());
        }
        rest = &rest[end + 1..];
    }
    assert!(open.is_empty(), "unclosed: {open:?}");
    assert_eq!(rest.trim(), "", "text after </svg>");
}

#[test]
fn a_tiny_sweep_against_the_mock_obeys_the_gateway_and_littles_law() {
    let config = SweepConfig {
        threads: threads(&[1, 4]),
        rates: vec![20.0],
        requests: NonZeroUsize::new(12).unwrap(),
        ..SweepConfig::default()
    };
    let target = mock(100);
    let mut seen = 0;
    let points = sweep(&config, &target, &Stop::new(), |_| seen += 1).unwrap();
    assert_eq!(points.len(), 2);
    assert_eq!(seen, 2);
    for point in &points {
        assert_eq!(point.rps, 20.0);
        assert_eq!(point.succeeded, 12, "{point:?}");
        assert!(point.complete);
        // The throughput is what its documentation says: successes over
        // the span (both rounded in the report).
        let over_span = point.succeeded as f64 / point.span_s;
        assert!((point.throughput_rps - over_span).abs() < 1e-3, "{point:?}");
        // Every request waited out the mock's 0.1 s answer.
        assert!(point.span_s >= 0.1, "{point:?}");
        assert!(
            point.p50_ms >= 100.0 && point.p99_ms >= point.p50_ms,
            "{point:?}"
        );
    }
    let (one, four) = (&points[0], &points[1]);
    assert_eq!((one.threads, four.threads), (1, 4));
    // One thread never has two requests in flight: 12 answers of 0.1 s one
    // after the other. And the latency, not the limiter (20/s), bounds it:
    // Little's law's 10/s within 40 % on a loaded machine.
    assert!(one.span_s >= 1.2, "{one:?}");
    assert!(one.throughput_rps >= 6.0, "{one:?}");
    assert!(four.throughput_rps > one.throughput_rps * 1.3, "{points:?}");
    assert_eq!(one.predicted_rps, Some(10.0));
    assert_eq!(four.predicted_rps, Some(20.0));

    let json = serde_json::to_string(&SweepReport::new(&config, &target, points.clone())).unwrap();
    let parsed: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed["points"].as_array().unwrap().len(), 2);
    assert_eq!(parsed["prediction_latency"], "configured");
    let back: SweepReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back.points.len(), points.len());
    for (read, measured) in back.points.iter().zip(&points) {
        assert_eq!(read.threads, measured.threads);
        assert!((read.throughput_rps - measured.throughput_rps).abs() < 1e-9);
        assert_eq!(
            read.sustained_rps.map(|r| (r * 1e4).round()),
            measured.sustained_rps.map(|r| (r * 1e4).round())
        );
    }

    let svg = render_svg(&points, "tiny sweep");
    assert_well_formed(&svg);
    // Whether a point of about a second touches three wall-clock seconds
    // (and so has a sustained rate) depends on where it starts.
    let rated = points.iter().filter(|p| p.sustained_rps.is_some()).count();
    assert_eq!(svg.matches("<polyline").count(), usize::from(rated > 0));
    let rows = table_rows(&points);
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|row| row.len() == TABLE_HEADER.len()));
}

#[test]
fn a_point_paced_at_the_gateways_limit_draws_at_most_one_429() {
    // Eight threads with 20 ms answers could send 400/s; the mock allows 10
    // per wall-clock second and the limiter paces at 10/s. 25 requests then
    // touch at least three windows (more than a second from the first start
    // to the last end). Unpaced, they would all go within 0.1 s and at least
    // five would be refused. Pacing exactly at the limit may meet the
    // window's phase once (a late request and an on-time one in a window).
    let config = SweepConfig {
        threads: threads(&[8]),
        rates: vec![10.0],
        requests: NonZeroUsize::new(25).unwrap(),
        ..SweepConfig::default()
    };
    let points = sweep(&config, &mock(20), &Stop::new(), |_| {}).unwrap();
    let point = &points[0];
    assert_eq!(point.succeeded, 25, "{point:?}");
    assert!(point.rate_limited <= 1, "{point:?}");
    assert!(point.span_s > 1.0, "{point:?}");
}

#[test]
fn a_stop_during_the_sweep_keeps_the_points_measured() {
    let config = SweepConfig {
        threads: threads(&[2, 4, 8]),
        rates: vec![100.0],
        requests: NonZeroUsize::new(4).unwrap(),
        ..SweepConfig::default()
    };
    let stop = Stop::new();
    let points = sweep(&config, &mock(5), &stop, |_| stop.stop()).unwrap();
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].threads, 2);
}

fn point(threads: usize, rps: f64, sustained: f64) -> Point {
    Point {
        threads,
        rps,
        requests: 10,
        succeeded: 10,
        failed: 0,
        rate_limited: 0,
        transient: 0,
        span_s: 10.0 / sustained,
        sustained_rps: Some(sustained),
        throughput_rps: sustained,
        mean_ms: 1160.0,
        p50_ms: 1160.0,
        p95_ms: 1200.0,
        p99_ms: 1250.0,
        predicted_rps: Some(littles_law(threads, Duration::from_millis(1160), rps)),
        complete: true,
        aborted: false,
    }
}

#[test]
fn the_chart_has_one_polyline_per_series_and_is_well_formed() {
    let mut points = Vec::new();
    for rps in [4.0, 8.0, 2.5] {
        for n in [16, 1, 2, 4, 8] {
            points.push(point(
                n,
                rps,
                littles_law(n, Duration::from_millis(1200), rps),
            ));
        }
    }
    let svg = render_svg(&points, "rates & threads <sweep>");
    assert_well_formed(&svg);
    assert_eq!(svg.matches("<polyline").count(), 3);
    assert_eq!(svg.matches("class=\"prediction\"").count(), 3);
    assert_eq!(svg.matches("class=\"allotted\"").count(), 3);
    assert_eq!(
        svg.matches("<circle").count(),
        15 + 3,
        "a dot per point and per legend row"
    );
    for label in ["1", "2", "4", "8", "16"] {
        assert!(svg.contains(&format!(">{label}</text>")), "x tick {label}");
    }
    assert!(svg.contains("rates &amp; threads &lt;sweep&gt;"));
    assert!(!svg.contains("class=\"note\""));
    assert_well_formed(&render_svg(&[], "nothing"));

    // A point too short for a sustained rate gets no dot, and a note.
    points[0].sustained_rps = None;
    let svg = render_svg(&points, "one short point");
    assert_well_formed(&svg);
    assert_eq!(svg.matches("<circle").count(), 14 + 3);
    assert!(svg.contains("1 point too short for a sustained rate (not drawn)"));
}

/// Successes of 1.164 s, `count` of them started `gap` apart, ending 5 s ago.
fn stats_of(count: u64, gap: Duration) -> Stats {
    let stats = Stats::new();
    let t0 = Instant::now() - gap * count as u32 - Duration::from_secs(5);
    for i in 0..count {
        let start = t0 + gap * i as u32;
        let end = start + Duration::from_millis(1164);
        stats.record(AttemptKind::Success, start, end);
    }
    stats
}

/// Regression (issue 14): `restb bench` called successes over the span
/// "sustained", a run's stats call successful starts per whole second
/// "sustained", and the two read 3.63 and 4.00 for the same 36 requests.
#[test]
fn a_bench_point_and_a_runs_stats_mean_one_thing_by_sustained() {
    // 4 starts in every wall-clock second for 9 s: sustained 4, throughput
    // 36 over 8.75 s + one latency, about 3.63.
    let report = stats_of(36, Duration::from_millis(250)).report();
    let point = Point::from_report(4, 4.0, 36, &report, None);
    let sustained = report.sustained.expect("9 s of starts have whole seconds");
    assert_eq!(point.sustained_rps, Some((sustained * 1e4).round() / 1e4));
    assert!((point.throughput_rps - report.throughput()).abs() < 1e-4);
    // The data tells the two definitions apart, so a point that took one for
    // the other would fail above.
    assert!((sustained - point.throughput_rps).abs() > 0.3, "{point:?}");
    // The table prints the figure the run's stats line prints.
    let stats_line = report.to_string();
    let printed = stats_line
        .lines()
        .find_map(|l| l.strip_prefix("sustained ["))
        .and_then(|rest| rest.split(']').next())
        .expect("a sustained line");
    let row = &table_rows(std::slice::from_ref(&point))[0];
    let column = TABLE_HEADER
        .iter()
        .position(|&h| h == "sustained/s")
        .unwrap();
    assert_eq!(row[column], printed);

    // Too short for a whole second inside: `n/a` in both.
    let short = stats_of(5, Duration::from_millis(10)).report();
    assert_eq!(short.sustained, None);
    let point = Point::from_report(4, 4.0, 5, &short, None);
    assert_eq!(point.sustained_rps, None);
    assert_eq!(table_rows(&[point])[0][column], "n/a");
    assert!(short.to_string().contains("sustained [n/a]"));
}

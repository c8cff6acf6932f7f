//! `restb bench`: the sweep library against the built-in mock, the chart's
//! well-formedness, and the binary end to end.

use restb::bench::{
    render_svg, sweep, table_rows, Point, SweepConfig, SweepReport, Target, TABLE_HEADER,
};
use restb::stop::Stop;
use serde_json::Value;
use std::num::NonZeroUsize;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

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
        assert!(point.sustained_rps > 0.0, "{point:?}");
        // A fixed-window gateway lets each window's budget through as early as
        // the window opens, and the limiter spends it that way once it has read
        // the gateway's headers: over a batch this short the rate can exceed 20/s
        // (about 30/s was seen). What holds is the gateway's own rule: a span of
        // S seconds touches at most ceil(S) + 1 one-second windows.
        let windows = point.span_s.ceil() + 1.0;
        assert!(point.succeeded as f64 <= 20.0 * windows, "{point:?}");
        assert!(
            point.p50_ms >= 100.0 && point.p99_ms >= point.p50_ms,
            "{point:?}"
        );
    }
    let (one, four) = (&points[0], &points[1]);
    assert_eq!((one.threads, four.threads), (1, 4));
    // One thread waits out every 0.1 s answer: about 10/s; four are paced at 20/s.
    assert!(one.sustained_rps < 11.0, "{one:?}");
    assert!(one.sustained_rps <= 20.0 * 1.15, "{one:?}");
    assert!(four.sustained_rps > one.sustained_rps * 1.3, "{points:?}");
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
        assert!((read.sustained_rps - measured.sustained_rps).abs() < 1e-9);
    }

    let svg = render_svg(&points, "tiny sweep");
    assert_well_formed(&svg);
    assert_eq!(svg.matches("<polyline").count(), 1);
    let rows = table_rows(&points);
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|row| row.len() == TABLE_HEADER.len()));
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
        sustained_rps: sustained,
        mean_ms: 1160.0,
        p50_ms: 1160.0,
        p95_ms: 1200.0,
        p99_ms: 1250.0,
        predicted_rps: Some(restb::bench::littles_law(
            threads,
            Duration::from_millis(1160),
            rps,
        )),
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
                restb::bench::littles_law(n, Duration::from_millis(1200), rps),
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
    assert_well_formed(&render_svg(&[], "nothing"));
}

const JSON_OUT: &str = "bench-out.json";

fn restb(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_restb"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("RESTB_CLIENT_KEY")
        .output()
        .expect("the binary runs")
}

#[test]
fn the_binary_sweeps_prints_a_table_and_writes_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = restb(
        &[
            "bench",
            "--threads",
            "1,2",
            "--rps",
            "10",
            "--latency",
            "0.05",
            "--requests",
            "8",
            "--json",
            JSON_OUT,
            "--svg",
            "chart.svg",
        ],
        dir.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("threads  rps  ok"), "{stdout}");
    assert!(stdout.contains("8/8"), "{stdout}");
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(JSON_OUT)).unwrap()).unwrap();
    assert_eq!(json["points"].as_array().unwrap().len(), 2);
    assert_eq!(json["target"], "built-in mock");
    assert_eq!(json["pacing"], "rate");
    let svg = std::fs::read_to_string(dir.path().join("chart.svg")).unwrap();
    assert_well_formed(&svg);
    assert_eq!(svg.matches("<polyline").count(), 1);
}

#[test]
fn bad_flags_exit_2_and_name_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (
            &["--threads", "1,0"],
            "--threads: '0' is not a positive whole number",
        ),
        (&["--rps", "2.5"], "--rps: '2.5' is not a whole number"),
        (&["--rps", "fast"], "--rps: 'fast' is not a positive number"),
        (&["--latency", "-1"], "--latency"),
        (&["--requests", "0"], "--requests"),
        (
            &["--base-url", "http://example.com"],
            "--base-url: no client key",
        ),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["bench"];
        args.extend_from_slice(flags);
        let out = restb(&args, dir.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains(expected), "{flags:?}: {stderr}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_restb"))
        .args([
            "bench",
            "--base-url",
            "http://example.com",
            "--threads",
            "1",
        ])
        .current_dir(dir.path())
        .env("RESTB_CLIENT_KEY", "k-5ecr3t")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--base-url: refusing plain http://"),
        "{stderr}"
    );
    assert!(!stderr.contains("5ecr3t"));
    assert!(
        !dir.path().join("bench.json").exists(),
        "nothing written on bad usage"
    );
}

#[test]
fn sigint_ends_the_sweep_writes_what_was_measured_and_exits_130() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_restb"))
        .args([
            "bench",
            "--threads",
            "1,2",
            "--rps",
            "10",
            "--latency",
            "0.2",
            "--requests",
            "20",
            "--json",
            JSON_OUT,
        ])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    assert!(first.starts_with("bench: 2 points"), "{first}");
    // The handler is installed before the sweep starts; let a few requests finish.
    std::thread::sleep(Duration::from_millis(600));
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the sweep did not stop within 10 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(JSON_OUT)).unwrap()).unwrap();
    let points = json["points"].as_array().unwrap();
    assert_eq!(points.len(), 1, "{json}");
    assert_eq!(points[0]["complete"], false);
    assert!(dir.path().join("bench.svg").exists());
}

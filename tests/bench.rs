//! `restb bench` end to end: the table, both files, bad flags and SIGINT.
//! The sweep itself is tested inside the binary (`src/bench/tests.rs`).

mod common;

use serde_json::Value;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

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

const JSON_OUT: &str = "bench-out.json";

/// `restb ARGS` run in `dir`, without a client key.
fn restb(args: &[&str], dir: &std::path::Path) -> Output {
    command(None)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs")
}

fn command(key: Option<&str>) -> Command {
    common::restb(key)
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
    // 8 requests at 10/s start within a second: no whole second inside, so
    // no sustained rate anywhere (`n/a` as in a run's stats, JSON null, no
    // dot), while the throughput is there.
    for point in json["points"].as_array().unwrap() {
        assert!(point["sustained_rps"].is_null(), "{point}");
        assert!(point["throughput_rps"].as_f64().unwrap() > 0.0, "{point}");
    }
    assert!(stdout.contains("sustained/s  throughput/s"), "{stdout}");
    assert_eq!(stdout.matches(" n/a ").count(), 2, "{stdout}");
    let svg = std::fs::read_to_string(dir.path().join("chart.svg")).unwrap();
    assert_well_formed(&svg);
    assert_eq!(svg.matches("<polyline").count(), 0);
    assert!(svg.contains("2 points too short for a sustained rate"));
}

#[test]
fn bad_flags_exit_2_and_name_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 9] = [
        (
            &["--threads", "1,0"],
            "--threads: '0' is not a positive whole number",
        ),
        // Regressions: these panicked converting seconds, or aborted
        // allocating the jobs of a point.
        (&["--latency", "1e300"], "--latency"),
        (&["--timeout", "1e300"], "--timeout"),
        (&["--requests", "100000000000"], "--requests"),
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
    let out = command(Some("k-5ecr3t"))
        .args([
            "bench",
            "--base-url",
            "http://example.com",
            "--threads",
            "1",
        ])
        .current_dir(dir.path())
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
    // With SIGINT at its default whatever this process inherited: restb keeps
    // an inherited ignore (a background job of a script has one).
    let mut env = Command::new("env");
    let mut child = common::clean_env(&mut env, None)
        .args(["--default-signal=INT", env!("CARGO_BIN_EXE_restb")])
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

/// Regression: `--json` was emptied when the sweep began, so a bad `--svg`
/// (exit 2 before anything was measured) wiped the figures of the run
/// before.
#[test]
fn a_bad_svg_path_leaves_the_json_of_the_run_before() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.json"), "{\"points\": []}").unwrap();
    let out = restb(
        &["bench", "--json", "b.json", "--svg", "/nonexistent/b.svg"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("b.json")).unwrap(),
        "{\"points\": []}"
    );
}

/// Regression: `--json X --svg X` wrote the JSON, then the chart over it,
/// and said "wrote X and X". Refused before any request, through links too.
#[test]
fn json_and_svg_naming_one_file_are_refused_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let old = "{\"points\": []}";
    std::fs::write(dir.path().join("b.json"), old).unwrap();
    std::os::unix::fs::symlink("b.json", dir.path().join("symlink.svg")).unwrap();
    std::fs::hard_link(dir.path().join("b.json"), dir.path().join("hardlink.svg")).unwrap();
    // A gateway that would see any request: none must reach it.
    let gateway = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    gateway.set_nonblocking(true).unwrap();
    let base_url = format!("http://{}", gateway.local_addr().unwrap());
    let cases = [
        ("b.json", "b.json"),
        ("b.json", "symlink.svg"),
        ("b.json", "hardlink.svg"),
        ("new.out", "./new.out"),
    ];
    for (json, svg) in cases {
        let out = command(Some("test-key-k"))
            .args(["bench", "--base-url", &base_url, "--threads", "1"])
            .args(["--rps", "1", "--requests", "1", "--timeout", "1"])
            .args(["--json", json, "--svg", svg])
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{json} {svg}: {stderr}");
        assert!(
            stderr.contains(&format!("--svg is --json ({svg})")),
            "{json} {svg}: {stderr}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("b.json")).unwrap(),
            old
        );
        assert!(!dir.path().join("new.out").exists());
        assert_eq!(
            gateway.accept().unwrap_err().kind(),
            std::io::ErrorKind::WouldBlock,
            "{json} {svg}: a request was sent"
        );
    }
}

//! Spend control through the `restb` binary, over real loopback sockets to
//! the mock gateway: `--dry-run` counts what a run would send and sends
//! nothing, `--max-requests` stops a run at its budget (exit 3) and a resume
//! finishes the batch with every job exactly once, and the month quota the
//! gateway reports is shown and warned about.

mod common;

#[cfg(feature = "redis")]
use common::redis_server::Redis;
use common::{
    assert_exactly_once, clean_env, json_file, outcome_lines, start_mock, text, wait_with_limit,
    RunLine, KEY,
};
use restb::mock::{MockConfig, MockServer};
use restb::pool::{Attempt, Ending, Pool, PoolConfig, Threads, Work};
use restb::stop::Stop;
use std::collections::HashSet;
use std::num::NonZeroUsize;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A plain list of `count` image URLs, numbered from 1.
fn url_list(dir: &Path, name: &str, count: usize) -> String {
    let path = dir.join(name);
    let body: String = (1..=count)
        .map(|n| format!("https://example.com/photos/{n}.jpg\n"))
        .collect();
    std::fs::write(&path, body).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn a_dry_run_counts_grouped_and_per_model_requests_and_sends_nothing() {
    let server = start_mock(MockConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let input = url_list(dir.path(), "urls.txt", 10);
    let stats = dir.path().join("plan.json");
    let base = server.base_url();
    let models = "re_logo,re_condition_r1r6_global,re_features_v4";
    let dry = |extra: &[&str]| {
        let line = RunLine::new(&input)
            .base_url(&base)
            .models(models)
            .rps("4")
            .stats_json(&stats)
            .args(["--dry-run"])
            .args(extra);
        // No key at all: a dry run needs none.
        let output = line.run(None);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        (text(&output.stdout), json_file(&stats))
    };

    let (printed, grouped) = dry(&[]);
    assert_eq!(grouped["images"], 10);
    assert_eq!(grouped["jobs"], 10);
    assert_eq!(grouped["requests"], 10);
    assert_eq!(grouped["multipredict_requests"], 10);
    assert_eq!(grouped["predict_requests"], 0);
    assert_eq!(grouped["model_readings"], 30);
    assert_eq!(grouped["seconds_at_allotted_rate"], 2.5);
    assert!(printed.contains("requests: 10 (0 predict, 10 multipredict), 30 model readings"));
    assert!(
        printed.contains("10 requests at 4 requests/s: about 3 s"),
        "{printed}"
    );

    let (printed, per_model) = dry(&["--per-model"]);
    assert_eq!(per_model["images"], 10);
    assert_eq!(per_model["jobs"], 30);
    assert_eq!(per_model["requests"], 30);
    assert_eq!(per_model["predict_requests"], 30);
    assert_eq!(per_model["multipredict_requests"], 0);
    assert_eq!(per_model["model_readings"], 30);
    assert_eq!(per_model["seconds_at_allotted_rate"], 7.5);
    assert!(
        printed.contains("30 requests at 4 requests/s: about 8 s"),
        "{printed}"
    );

    let (printed, budget) = dry(&["--per-model", "--max-requests", "12"]);
    assert_eq!(budget["requests_within_budget"], 12);
    assert_eq!(budget["jobs_beyond_budget"], 18);
    assert!(printed.contains("--max-requests 12: 12 requests in this run, 18 jobs left"));

    // A review's finding: the shared budget was left out. A dry run reads
    // nothing from Redis (none listens at port 1), so it counts all of it.
    let shared = [
        "--shared-limit",
        "redis://127.0.0.1:1",
        "--shared-budget",
        "7",
    ];
    let (printed, budget) = dry(&[&["--per-model"][..], &shared].concat());
    assert_eq!(budget["shared_budget"], 7);
    assert_eq!(budget["requests_within_budget"], 7);
    assert_eq!(budget["jobs_beyond_budget"], 23);
    assert!(
        printed.contains("--shared-budget 7 a month for every process on the key: at most 7 requests in this run, 23 jobs left"),
        "{printed}"
    );
    let both = [&["--per-model", "--max-requests", "5"][..], &shared].concat();
    assert_eq!(dry(&both).1["requests_within_budget"], 5, "the smaller");

    assert_eq!(server.counters().requests, 0, "a dry run sends nothing");
}

#[test]
fn a_dry_run_of_a_resume_counts_what_is_left_and_leaves_the_outcome_file_alone() {
    let server = start_mock(MockConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let first_four = url_list(dir.path(), "first.txt", 4);
    let all_ten = url_list(dir.path(), "all.txt", 10);
    let out = dir.path().join("out.jsonl");
    let stats = dir.path().join("plan.json");
    let base = server.base_url();
    // Each command line ends with the same three flags.
    let common = |line: RunLine| line.base_url(&base).models("re_logo").rps("100");
    let output = common(RunLine::new(&first_four).out(&out)).run(Some(KEY));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(server.counters().requests, 4);
    let before = std::fs::read(&out).unwrap();

    let dry = RunLine::new(&all_ten)
        .out(&out)
        .args(["--resume", "--dry-run"])
        .stats_json(&stats);
    let output = common(dry).run(None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let plan = json_file(&stats);
    assert_eq!(plan["input_jobs"], 10);
    assert_eq!(plan["already_done"], 4);
    assert_eq!(plan["jobs"], 6);
    assert_eq!(plan["requests"], 6);
    assert!(
        text(&output.stdout).contains("resume: 4 jobs already done (0 of them failed), 6 to send")
    );
    assert_eq!(
        std::fs::read(&out).unwrap(),
        before,
        "the outcome file is untouched"
    );
    // Without --resume, the dry run warns that a real run would refuse it,
    // and the real run does, before any request.
    let fresh = RunLine::new(&all_ten).out(&out).args(["--dry-run"]);
    let output = common(fresh).run(None);
    assert!(text(&output.stdout).contains("a real run would refuse it"));
    assert_eq!(std::fs::read(&out).unwrap(), before);
    let real = common(RunLine::new(&all_ten).out(&out)).run(Some(KEY));
    assert_eq!(real.status.code(), Some(2), "{}", text(&real.stderr));
    let said = text(&real.stderr);
    assert!(said.contains("already holds outcomes"), "{said}");
    assert!(
        said.contains("--resume") && said.contains("--overwrite"),
        "{said}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), before, "refused, untouched");
    assert_eq!(server.counters().requests, 4, "neither run sent anything");
    let kept = dir.path().join("kept.jsonl");
    std::fs::copy(&out, &kept).unwrap();
    let replacing = RunLine::new(&first_four).out(&kept).args(["--overwrite"]);
    let output = common(replacing).run(Some(KEY));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(outcome_lines(&kept).len(), 4, "replaced, not appended");
    assert_eq!(server.counters().requests, 8);

    // A resume against a file that does not exist yet creates nothing.
    let missing = dir.path().join("missing.jsonl");
    let dry = RunLine::new(&all_ten)
        .out(&missing)
        .args(["--resume", "--dry-run"]);
    let output = common(dry).run(None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("requests: 10 "));
    assert!(!missing.exists(), "a dry run creates no outcome file");

    // What the real resume then does matches the plan: 6 requests.
    let resume = RunLine::new(&all_ten).out(&out).args(["--resume"]);
    let output = common(resume).run(Some(KEY));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(server.counters().requests, 14);
    assert_eq!(outcome_lines(&out).len(), 10);
}

#[test]
fn a_dry_run_refuses_bad_input_as_a_real_run_does() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "https://x/1.jpg\nwww.example.com/2.jpg\n").unwrap();
    let bad = bad.to_str().unwrap();
    let real = RunLine::new(bad).run(Some(KEY));
    let dry = RunLine::new(bad).args(["--dry-run"]).run(None);
    assert_eq!(real.status.code(), Some(2));
    assert_eq!(dry.status.code(), Some(2));
    assert_eq!(text(&dry.stderr), text(&real.stderr));
    assert!(
        text(&dry.stderr).contains("bad.txt:2"),
        "{}",
        text(&dry.stderr)
    );
    assert!(dry.stdout.is_empty());

    let good = url_list(dir.path(), "urls.txt", 2);
    for flags in [
        vec!["--models", "re_logo,nope"],
        vec!["--rps", "0"],
        vec!["--base-url", "ftp://x"],
    ] {
        let line = RunLine::new(&good).args(&flags);
        let real = line.run(Some(KEY));
        let dry = line.args(["--dry-run"]).run(None);
        assert_eq!(dry.status.code(), Some(2), "{flags:?}");
        assert_eq!(text(&dry.stderr), text(&real.stderr), "{flags:?}");
    }
}

/// A work whose job `n` is a transient failure on its first try when `n`
/// is odd, and a success otherwise; it counts every try.
struct FlakyOdd {
    tries: std::sync::atomic::AtomicU64,
}

impl Work for FlakyOdd {
    type Job = (u64, Arc<AtomicU64>);
    type Output = u64;
    fn attempt(&self, (n, tries_of_job): &Self::Job) -> Attempt<u64> {
        self.tries.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(5));
        if n % 2 == 1 && tries_of_job.fetch_add(1, Ordering::SeqCst) == 0 {
            Attempt::Transient(*n)
        } else {
            Attempt::Success(*n)
        }
    }
    fn panicked(&self, (n, _): &Self::Job, _: &str) -> u64 {
        *n
    }
}

#[test]
fn a_pool_budget_counts_retries_and_leaves_the_job_it_cannot_start_without_outcome() {
    let work = FlakyOdd {
        tries: AtomicU64::new(0),
    };
    let mut config = PoolConfig::default();
    config.rate = None;
    config.threads = Threads::Fixed(NonZeroUsize::new(4).unwrap());
    config.retry.base_delay = Duration::from_millis(1);
    config.budget = Some(25);
    let jobs: Vec<_> = (0..40u64)
        .map(|n| (n, Arc::new(AtomicU64::new(0))))
        .collect();
    let mut done = Vec::new();
    let summary = Pool::new(config, Stop::new()).run(&work, jobs, |finished| {
        done.push(finished.output);
        Ok(())
    });
    assert_eq!(summary.ending, Ending::BudgetSpent);
    assert_eq!(work.tries.load(Ordering::SeqCst), 25, "exactly the budget");
    let unique: HashSet<u64> = done.iter().copied().collect();
    assert_eq!(unique.len(), done.len(), "no job finished twice");
    assert_eq!(summary.finished, done.len() as u64);
    assert_eq!(summary.finished + summary.unfinished, 40);
    // Odd jobs took two tries: fewer than 25 jobs can have finished.
    assert!(done.len() < 25, "{}", done.len());

    // A budget that covers every try ends the run as completed.
    let work = FlakyOdd {
        tries: AtomicU64::new(0),
    };
    let mut config = PoolConfig::default();
    config.rate = None;
    config.retry.base_delay = Duration::from_millis(1);
    config.budget = Some(60);
    let jobs: Vec<_> = (0..40u64)
        .map(|n| (n, Arc::new(AtomicU64::new(0))))
        .collect();
    let summary = Pool::new(config, Stop::new()).run(&work, jobs, |_| Ok(()));
    assert_eq!(summary.ending, Ending::Completed);
    assert_eq!(work.tries.load(Ordering::SeqCst), 60);
}

/// The command the budget line says resumes the run.
fn resume_command(stderr: &str) -> String {
    let line = stderr
        .lines()
        .find(|line| line.starts_with("budget spent"))
        .unwrap_or_else(|| panic!("no budget line in: {stderr}"));
    line.split_once("to send them, run: ")
        .unwrap_or_else(|| panic!("no command in: {line}"))
        .1
        .to_string()
}

#[test]
fn a_budget_ends_the_run_with_exit_3_and_its_resume_command_finishes_every_job_once() {
    const JOBS: usize = 30;
    const BUDGET: u64 = 10;
    let mut config = MockConfig::default();
    config.rps = Some(40);
    config.latency = Duration::from_millis(50);
    config.faults = "500=0.2".parse().unwrap();
    config.seed = 7;
    let server = start_mock(config);
    let dir = tempfile::tempdir().unwrap();
    let input = url_list(dir.path(), "my photos.txt", JOBS);
    let out = dir.path().join("out.jsonl");
    let stats = dir.path().join("stats.json");
    let base = server.base_url();
    let budget = BUDGET.to_string();
    let output = RunLine::new(&input)
        .base_url(&base)
        .models("re_logo")
        .rps("40")
        .args(["--max-attempts", "30", "--max-requests", &budget])
        .stats_json(&stats)
        .out(&out)
        .run(Some(KEY));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert_eq!(server.counters().requests, BUDGET, "retries count too");
    let first = outcome_lines(&out);
    assert!(first.len() < JOBS, "{}", first.len());
    assert!(stderr.contains(&format!("{} jobs have no outcome yet", JOBS - first.len())));
    let figures = json_file(&stats);
    assert_eq!(figures["budget_spent"], true);
    assert_eq!(figures["interrupted"], false);

    // Run the printed command (a shell reads it) until the batch is done.
    let command = resume_command(&stderr);
    assert!(command.ends_with("--resume"), "{command}");
    let mut sent = BUDGET;
    for round in 0.. {
        assert!(round < 10, "the batch never finished");
        let output = clean_env(Command::new("sh").args(["-c", &command]), Some(KEY))
            .output()
            .unwrap();
        let now = server.counters().requests;
        assert!(now - sent <= BUDGET, "a resume keeps its budget");
        sent = now;
        match output.status.code() {
            Some(3) => continue,
            Some(0) => break,
            other => panic!("{other:?}: {}", text(&output.stderr)),
        }
    }
    assert_exactly_once(&out, JOBS);
    assert!(outcome_lines(&out).iter().all(|l| l["status"] == "ok"));
}

/// A mock with a month quota of `month`, no rate limit, 150 ms latency.
fn quota_gateway(month: u32) -> MockServer {
    let mut config = MockConfig::default();
    config.quota_month = Some(month);
    config.quota_day = Some(month * 10);
    config.latency = Duration::from_millis(150);
    start_mock(config)
}

fn warnings(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|line| line.contains("the month's quota is short"))
        .collect()
}

#[test]
fn a_run_longer_than_the_month_warns_once_after_the_first_reply_before_the_rest() {
    // At least 100 jobs: a smaller batch does not hold its first reply.
    const JOBS: usize = 120;
    let server = quota_gateway(25);
    let dir = tempfile::tempdir().unwrap();
    let input = url_list(dir.path(), "urls.txt", JOBS);
    let out = dir.path().join("out.jsonl");
    let stats = dir.path().join("stats.json");
    let against = |base: &str| {
        RunLine::new(&input)
            .base_url(base)
            .models("re_logo")
            .rps("50")
            .args(["--max-requests", "6"])
            .stats_json(&stats)
            .out(&out)
    };
    let output = against(&server.base_url()).run(Some(KEY));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    let warned = warnings(&stderr);
    assert_eq!(warned.len(), 1, "{stderr}");
    // After the first reply: 119 jobs to go, 24 requests left of 25.
    assert!(
        warned[0].contains("119 jobs still to send, 24 requests left this month"),
        "{stderr}"
    );
    // The second request waited for the first reply (150 ms).
    let arrivals = server.arrivals();
    assert_eq!(arrivals.len(), 6);
    let gap = arrivals[1].at.duration_since(arrivals[0].at).unwrap();
    assert!(gap >= Duration::from_millis(140), "{gap:?}");
    // The stats show what is left.
    assert!(
        stderr.contains("quota: month 19 of 25 left, day 244 of 250 left"),
        "{stderr}"
    );
    let figures = json_file(&stats);
    assert_eq!(figures["quota"]["month"]["remaining"], 19);
    assert_eq!(figures["quota"]["month"]["limit"], 25);
    assert_eq!(figures["quota"]["day"]["remaining"], 244);

    // A resume counts the jobs it has left: 114, then 113 after its first reply.
    let output = against(&server.base_url())
        .args(["--resume"])
        .run(Some(KEY));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    let warned = warnings(&stderr);
    assert_eq!(warned.len(), 1, "{stderr}");
    assert!(warned[0].contains("113 jobs still to send, 18 requests left this month"));

    // Enough left for the rest: no warning.
    let ample = quota_gateway(1000);
    let output = against(&ample.base_url())
        .args(["--overwrite"])
        .run(Some(KEY));
    let stderr = text(&output.stderr);
    assert!(warnings(&stderr).is_empty(), "{stderr}");
    assert!(stderr.contains("quota: month 994 of 1000 left"), "{stderr}");
}

#[test]
fn a_dry_run_checks_the_quota_with_one_request_only_when_asked() {
    let server = quota_gateway(25);
    let dir = tempfile::tempdir().unwrap();
    let input = url_list(dir.path(), "urls.txt", 30);
    let stats = dir.path().join("plan.json");
    let plan = RunLine::new(&input)
        .base_url(&server.base_url())
        .args(["--dry-run"]);
    let args = plan.clone().args(["--check-quota"]).stats_json(&stats);
    let without_key = args.run(None);
    assert_eq!(without_key.status.code(), Some(2));
    assert!(text(&without_key.stderr).contains("no client key"));
    assert_eq!(server.counters().requests, 0);

    let output = args.run(Some(KEY));
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(server.counters().requests, 1, "one request");
    let arrivals = server.arrivals();
    assert_eq!(arrivals[0].path, "/vision/v2/predict", "the cheapest call");
    assert!(
        stdout.starts_with("dry run: nothing was sent but --check-quota's one request\n"),
        "{stdout}"
    );
    assert!(stdout.contains("quota: month 24 of 25 left"), "{stdout}");
    assert!(
        stdout.contains("warning: this run would send 30 requests, 24 are left this month"),
        "{stdout}"
    );
    assert_eq!(json_file(&stats)["quota"]["month"]["remaining"], 24);

    // Without --check-quota a dry run asks nothing.
    let output = plan.run(Some(KEY));
    assert_eq!(output.status.code(), Some(0));
    assert!(text(&output.stdout).starts_with("dry run: nothing was sent\n"));
    assert_eq!(server.counters().requests, 1);
}

/// A redis-server of this test's own on a free loopback port; killed on drop.
#[cfg(feature = "redis")]
#[test]
fn a_shared_budget_holds_across_processes_and_refusals_do_not_spend_it() {
    let redis = Redis::start();
    let server = start_mock(MockConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let first = url_list(dir.path(), "first.txt", 5);
    let second = url_list(dir.path(), "second.txt", 5);
    let (out_a, out_b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    let (base, url) = (server.base_url(), redis.url());
    let batch = |input: &str, out: &Path, budget: &str, extra: &[&str]| {
        RunLine::new(input)
            .out(out)
            .base_url(&base)
            .models("re_logo")
            .rps("50")
            .args(["--shared-limit", &url, "--shared-budget", budget])
            .args(extra)
            .run(Some(KEY))
    };
    let a = batch(&first, &out_a, "7", &[]);
    assert_eq!(a.status.code(), Some(0), "{}", text(&a.stderr));
    assert_eq!(server.counters().requests, 5);
    // Another process on the key: 2 of the month's 7 are left.
    let b = batch(&second, &out_b, "7", &[]);
    let stderr = text(&b.stderr);
    assert_eq!(b.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("budget spent"), "{stderr}");
    assert_eq!(
        server.counters().requests,
        7,
        "the month's budget across processes"
    );
    assert_eq!(outcome_lines(&out_b).len(), 2);
    // A larger budget later: the refused start was not counted, 2 are left.
    let c = batch(&second, &out_b, "9", &["--resume"]);
    assert_eq!(c.status.code(), Some(3), "{}", text(&c.stderr));
    assert_eq!(server.counters().requests, 9);
    assert_eq!(outcome_lines(&out_b).len(), 4);
    // Without a shared limit to count it in, it is refused up front.
    let refused = RunLine::new(&first)
        .base_url(&base)
        .args(["--shared-budget", "3"])
        .run(Some(KEY));
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused.stderr).contains("--shared-budget: needs --shared-limit"));
    assert_eq!(server.counters().requests, 9);
}

/// The shared budget's month is Redis's, not the host's: a process whose
/// clock is 40 days ahead (`faketime`, a Debian package `.ci/run` installs)
/// counts in the month Redis's `TIME` names, as every other process does.
#[cfg(feature = "redis")]
#[test]
fn a_shared_budget_counts_in_redis_s_month_whatever_the_host_s_clock_says() {
    let redis = Redis::start();
    let server = start_mock(MockConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let input = url_list(dir.path(), "urls.txt", 3);
    let line = RunLine::new(&input)
        .out(dir.path().join("out.jsonl"))
        .base_url(&server.base_url())
        .models("re_logo")
        .rps("50")
        .args(["--shared-limit", &redis.url(), "--shared-budget", "10"]);
    let mut command = Command::new("faketime");
    common::clean_env(&mut command, Some(KEY));
    // Only the wall clock: std's timed waits need a true monotonic clock.
    let output = command
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .args(["-f", "+40d", env!("CARGO_BIN_EXE_restb")])
        .args(line.command(None).get_args())
        .output()
        .expect("faketime is installed (Debian's package; .ci/run installs it)");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let mut con = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let (now, _): (u64, u64) = redis::cmd("TIME").query(&mut con).unwrap();
    let date = Command::new("date")
        .args(["-u", "-d", &format!("@{now}"), "+%Y-%m"])
        .output()
        .unwrap();
    let month = text(&date.stdout).trim().to_string();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*budget*").query(&mut con).unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(
        keys[0].ends_with(&format!(":budget:{month}")),
        "{keys:?} not {month}"
    );
    let spent: u64 = redis::cmd("GET").arg(&keys[0]).query(&mut con).unwrap();
    assert_eq!(spent, 3);
}

/// A spent month quota holds every request until the month ends: far
/// longer than `--max-pause`, so the run stops at once, resumable (exit 3),
/// and says until when; a resume once the quota is back finishes the batch
/// with every job exactly once. (Within `--max-pause` of a month's end the
/// run would wait instead, as it should.)
#[test]
fn a_quota_spent_for_longer_than_max_pause_ends_the_run_resumably() {
    const JOBS: usize = 12;
    let mut config = MockConfig::default();
    config.quota_month = Some(5);
    let server = start_mock(config);
    let dir = tempfile::tempdir().unwrap();
    let input = url_list(dir.path(), "urls.txt", JOBS);
    let out = dir.path().join("out.jsonl");
    let stats = dir.path().join("stats.json");
    let against = |base: &str| {
        RunLine::new(&input)
            .base_url(base)
            .models("re_logo")
            .rps("20")
            .args(["--max-pause", "60"])
            .stats_json(&stats)
            .out(&out)
    };
    let child = against(&server.base_url())
        .command(Some(KEY))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Waiting the pause out would take an hour.
    let (status, stderr) = wait_with_limit(child, Duration::from_secs(60));
    assert_eq!(status, Some(3), "{stderr}");
    assert!(
        stderr.contains("the gateway holds every request until ")
            && stderr.contains(" 00:00:00 UTC (quota spent), longer than --max-pause (60 s)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("7 jobs have no outcome yet; to send them after then, run: "),
        "{stderr}"
    );
    let lines = outcome_lines(&out);
    assert_eq!(lines.len(), 5, "the month's five");
    assert!(lines.iter().all(|line| line["status"] == "ok"));
    let figures = json_file(&stats);
    assert_eq!(figures["long_pause"]["reason"], "quota spent");
    let until = figures["long_pause"]["until"].as_str().unwrap();
    assert!(
        until.ends_with("-01 00:00:00 UTC"),
        "the month's end: {until}"
    );

    let fresh = start_mock(MockConfig::default());
    let output = against(&fresh.base_url()).args(["--resume"]).run(Some(KEY));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_exactly_once(&out, JOBS);
}

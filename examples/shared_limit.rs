//! Two blocking tools on one client key share one allotment through Redis:
//! each runs its own restb pool, and both draw their start slots from the
//! same schedule (here two pools in one process, each with its own Redis
//! connection, exactly as two processes would).
//!
//! Run: `cargo run --example shared_limit -- redis://127.0.0.1:6379`
//! (without a URL it starts a redis-server of its own on a free loopback
//! port, if one is installed).

use restb::api::ClientKey;
use restb::limiter::{Rate, SharedPacing};
use restb::pool::{Attempt, Pool, PoolConfig, Work};
use restb::shared_limit::{RedisUrl, ScheduleKey, SharedLimit, SharedLimitConfig, SharedSchedule};
use restb::stop::Stop;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A tool's own blocking call (a stand-in that takes 30 ms).
struct Call;

impl Work for Call {
    type Job = u32;
    type Output = Duration;

    fn attempt(&self, _job: &u32) -> Attempt<Duration> {
        std::thread::sleep(Duration::from_millis(30));
        Attempt::Success(Duration::ZERO)
    }

    fn panicked(&self, _job: &u32, _message: &str) -> Duration {
        Duration::ZERO
    }
}

/// One tool: a pool at the key's full allotment, on the shared schedule.
fn tool(url: &RedisUrl, key: &ScheduleKey, rate: Rate, jobs: u32) -> (u64, Duration, String) {
    let limit = SharedLimit::connect(SharedLimitConfig::new(url.clone(), key.clone(), rate))
        .unwrap_or_else(|e| panic!("{e}"));
    let schedule = Arc::new(SharedSchedule::new(limit));
    let mut config = PoolConfig::default();
    config.rate = Some(rate);
    config.shared = Some(SharedPacing::new(schedule.clone()));
    let started = Instant::now();
    let summary = Pool::new(config, Stop::new()).run(&Call, 1..=jobs, |_| Ok(()));
    let trips = schedule.limit().round_trips();
    let trips = format!(
        "Redis round trip p50 {} us, p99 {} us",
        trips.p50_us, trips.p99_us
    );
    (summary.report.succeeded, started.elapsed(), trips)
}

fn main() {
    let mut own_redis = None;
    let url = match std::env::args().nth(1) {
        Some(url) => url,
        None => {
            let (child, url) = start_redis();
            own_redis = Some(child);
            url
        }
    };
    let url = RedisUrl::parse(&url).unwrap_or_else(|e| panic!("{e}"));
    let key = ScheduleKey::new(
        &ClientKey::new("example-key").unwrap(),
        "https://api-us.restb.ai",
    );
    let rate = Rate::per_second(10.0).expect("10/s is in range");
    println!("two tools on {url} sharing {rate} (schedule {key})");
    let started = Instant::now();
    std::thread::scope(|scope| {
        let tools: Vec<_> = ["nightly import", "backfill"]
            .into_iter()
            .map(|name| (name, scope.spawn(|| tool(&url, &key, rate, 20))))
            .collect();
        for (name, handle) in tools {
            let (done, took, trips) = handle.join().expect("a tool thread panicked");
            println!(
                "{name}: {done} calls in {:.1} s; {trips}",
                took.as_secs_f64()
            );
        }
    });
    // 40 calls at 10/s together: about 4 s, not the 2 s each would take alone.
    println!(
        "together: 40 calls in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if let Some(mut child) = own_redis {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A redis-server on a free loopback port, with no persistence.
fn start_redis() -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port();
    let dir = std::env::temp_dir();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--appendonly", "no", "--dir"])
        .arg(&dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server is installed (or pass a redis:// URL)");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, format!("redis://127.0.0.1:{port}"))
}

//! `restb demo`: the tutorial's workload against the built-in mock gateway.

use super::args::DemoArgs;
use super::stdout::print_out;
use super::table::results_table;
use super::{Exit, UsageError};
use parking_lot::Mutex;
use restb::api::{Client, ClientConfig, ClientKey, ImageSource};
use restb::input::Record;
use restb::job::{jobs_from_records, RestbWork};
use restb::limiter::Rate;
use restb::mock::{MockConfig, MockServer};
use restb::models;
use restb::outcome::OutcomeLine;
use restb::pool::{Pool, PoolConfig};
use restb::stop::Stop;
use std::time::Duration;

/// The tutorial's six demo images.
pub fn demo_images() -> Vec<String> {
    (1..=6)
        .map(|n| format!("https://demo.restb.ai/images/demo/demo-{n}.jpg"))
        .collect()
}

pub(super) fn demo(args: &DemoArgs, stop: &Stop) -> Result<Exit, UsageError> {
    let mut mock_config = MockConfig::tutorial();
    mock_config.rps = Some(args.rps.get());
    mock_config.latency = Duration::from_secs_f64(args.latency);
    let server = MockServer::start(mock_config)
        .map_err(|e| UsageError(format!("cannot start the mock gateway on loopback: {e}")))?;
    let key = ClientKey::new("demo-key").expect("a non-empty literal");
    let mut client_config = ClientConfig::default();
    client_config.base_url = server.base_url();
    let client = Client::new(key, &client_config).map_err(|e| UsageError(e.to_string()))?;
    let records: Vec<Record> = demo_images()
        .into_iter()
        .enumerate()
        .map(|(i, url)| Record {
            id: (i + 1).to_string(),
            image: ImageSource::Url(url),
            models: None,
            line: i + 1,
        })
        .collect();
    let jobs = jobs_from_records(records, &models::default_models(), !args.grouped);
    eprintln!(
        "demo: {} requests to a mock gateway on {} allowing {} per second, latency about {:.2} s",
        jobs.len(),
        server.base_url(),
        args.rps,
        args.latency
    );
    let mut pool_config = PoolConfig::default();
    pool_config.rate = Rate::per_second(f64::from(args.rps.get()));
    pool_config.align_to_windows = true;
    let pool = Pool::new(pool_config, stop.clone());
    let finished = Mutex::new(Vec::new());
    let summary = pool.run(&RestbWork::new(client), jobs, |done| {
        finished.lock().push(done);
        Ok(())
    });
    server.stop();
    let lines = finished
        .into_inner()
        .into_iter()
        .map(OutcomeLine::from_finished);
    print_out(&results_table(lines))?;
    eprintln!("{}", summary.report);
    Ok(Exit::from_ending(&summary.ending, summary.report.failed))
}

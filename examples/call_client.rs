//! Calling the Restb.ai client directly, one request at a time, from plain
//! blocking code. Against the real API set RESTB_CLIENT_KEY and pass no
//! argument; with `--mock` it starts the stand-in gateway on loopback.
//!
//! Run: `cargo run --example call_client -- --mock`

use restb::api::{Client, ClientConfig, ClientKey, ImageSource, Region, Verdict};
use restb::mock::{MockConfig, MockServer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let use_mock = std::env::args().any(|a| a == "--mock");
    let gateway = if use_mock {
        Some(MockServer::start(MockConfig::default())?)
    } else {
        None
    };
    let (key, base_url) = match &gateway {
        Some(mock) => ("demo-key".to_string(), mock.base_url()),
        None => (
            std::env::var("RESTB_CLIENT_KEY")
                .map_err(|_| "set RESTB_CLIENT_KEY, or pass --mock")?,
            Region::Us.base_url().to_string(),
        ),
    };
    let mut config = ClientConfig::default();
    config.base_url = base_url;
    let client = Client::new(ClientKey::new(&key).ok_or("empty key")?, &config)?;
    let image = ImageSource::Url("https://demo.restb.ai/images/demo/demo-1.jpg".into());
    let models = [
        "re_roomtype_global_v2".to_string(),
        "re_condition_r1r6_global".to_string(),
    ];
    let reply = client.predict(&image, &models);
    match reply.verdict {
        Verdict::Ok(solutions) => println!("{}", serde_json::to_string_pretty(&solutions)?),
        Verdict::RateLimited { retry_after } => {
            println!("rate limited; retry after {retry_after:?}")
        }
        other => println!("failed (HTTP {:?}): {other:?}", reply.http_status),
    }
    Ok(())
}

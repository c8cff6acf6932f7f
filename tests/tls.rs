//! TLS certificates are verified: a server with a self-signed certificate on
//! loopback (openssl s_server) is refused, and the run stops at once instead
//! of retrying every job against it.

mod common;

use restb::api::{Client, ClientConfig, ClientKey, ImageSource, Verdict};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn self_signed_server(dir: &std::path::Path) -> (Server, u16) {
    let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl is installed (.ci/run installs it)");
    assert!(made.success());
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("openssl")
        .args([
            "s_server",
            "-quiet",
            "-www",
            "-accept",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "openssl s_server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (server, port)
}

#[test]
fn a_self_signed_certificate_is_refused_and_ends_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, port) = self_signed_server(dir.path());
    let mut config = ClientConfig::default();
    config.base_url = format!("https://127.0.0.1:{port}");
    config.timeout = Duration::from_secs(5);
    let client = Client::new(ClientKey::new("tls-test-key").unwrap(), &config).unwrap();
    let reply = client.predict(
        &ImageSource::Url("https://x/1.jpg".into()),
        &["re_logo".to_string()],
    );
    assert_eq!(reply.http_status, None);
    match reply.verdict {
        Verdict::Fatal(message) => {
            assert!(message.contains("certificate"), "{message}");
            assert!(!message.contains("tls-test-key"));
        }
        other => panic!("expected a refused certificate, got {other:?}"),
    }

    let input = dir.path().join("urls.txt");
    std::fs::write(
        &input,
        "https://x/1.jpg\nhttps://x/2.jpg\nhttps://x/3.jpg\n",
    )
    .unwrap();
    let output = common::restb(Some("tls-test-key"))
        .args([
            "run",
            input.to_str().unwrap(),
            "--base-url",
            &config.base_url,
            "--rps",
            "50",
            "--threads",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stdout.lines().count(),
        0,
        "no job recorded: each is left for a resume: {stdout}"
    );
    assert!(stderr.contains("certificate"), "{stderr}");
    assert!(stderr.contains("3 jobs have no outcome"), "{stderr}");
}

//! A redis-server of the test's own on a free loopback port, with a
//! temporary directory and no persistence; killed on drop. No mock of Redis.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A redis-server of our own; killed on drop.
pub struct Redis {
    pub child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn ping(port: u16, password: Option<&str>) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let command = match password {
        Some(p) => format!("AUTH {p}\r\nPING\r\n"),
        None => "PING\r\n".to_string(),
    };
    let mut reply = [0u8; 64];
    let mut got = String::new();
    if stream.write_all(command.as_bytes()).is_err() {
        return false;
    }
    for _ in 0..4 {
        match stream.read(&mut reply) {
            Ok(n) if n > 0 => got.push_str(&String::from_utf8_lossy(&reply[..n])),
            _ => break,
        }
        if got.contains("PONG") {
            return true;
        }
    }
    false
}

impl Redis {
    pub fn start() -> Redis {
        Redis::start_with(None, None)
    }

    /// On `port` (a free one if `None`), requiring `password` if given.
    pub fn start_with(port: Option<u16>, password: Option<&str>) -> Redis {
        for _ in 0..5 {
            let port = port.unwrap_or_else(free_port);
            let dir = tempfile::tempdir().unwrap();
            let mut command = Command::new("redis-server");
            command
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--dir"])
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if let Some(password) = password {
                command.args(["--requirepass", password]);
            }
            let mut child = command.spawn().expect("redis-server is installed");
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if ping(port, password) {
                    return Redis {
                        child,
                        port,
                        _dir: dir,
                    };
                }
                if child.try_wait().unwrap().is_some() {
                    break; // the port was taken meanwhile: try another
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("redis-server did not start");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! Standard error going away under a run: the terminal hangs up (writes to it
//! fail with EIO) or the pipe's reader is gone (EPIPE). The run must stop or
//! finish by its own rules, never abort: a failed write to stderr used to
//! panic, and the panic hook's own write panicked again (SIGABRT, exit 134).

mod common;

use common::{clean_env, ids_exactly_once, start_mock, wait_with_limit, Batch};
use restb::mock::MockConfig;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs ARGV under a new pseudo-terminal (stdin, stdout and stderr all on it,
/// as an interactive `restb run` has), reads the terminal until OUT holds
/// LINES lines, then closes it: the kernel hangs up the terminal and sends
/// SIGHUP. Prints the child's exit code, or `signal N`. Bounded: 20 s for the
/// lines, then 20 s for the exit.
const UNDER_A_TERMINAL: &str = r#"
import os, pty, select, sys, time, signal
out, lines, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
pid, master = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)
def count():
    try:
        with open(out) as f:
            return sum(1 for _ in f)
    except OSError:
        return 0
deadline = time.time() + 20
while count() < lines and time.time() < deadline:
    if select.select([master], [], [], 0.05)[0]:
        try:
            os.read(master, 65536)
        except OSError:
            break
os.close(master)
deadline = time.time() + 20
while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    if time.time() > deadline:
        os.kill(pid, signal.SIGKILL)
        sys.exit("still running 20 s after the hang-up")
    time.sleep(0.02)
if os.WIFSIGNALED(status):
    print("signal", os.WTERMSIG(status))
else:
    print(os.WEXITSTATUS(status))
"#;

/// Regression: closing the terminal of an interactive run (SIGHUP, then EIO
/// on every write to it) killed restb with SIGABRT before it stopped its
/// workers, with no outcome written. It must stop as on any SIGHUP: exit 130,
/// whole lines, each job at most once.
#[test]
fn terminal_hangup_stops_cleanly_instead_of_aborting() {
    let mut mock_config = MockConfig::default();
    mock_config.latency = Duration::from_millis(400);
    let server = start_mock(mock_config);
    let batch = Batch::of(60);
    let mut command = Command::new("python3");
    command.args(["-c", UNDER_A_TERMINAL, batch.out(), "3"]);
    // Default dispositions whatever this test process inherited.
    command.args([
        "env",
        "--default-signal=HUP,INT,TERM",
        env!("CARGO_BIN_EXE_restb"),
    ]);
    clean_env(&mut command, Some("test-key-k")).args([
        "run",
        batch.input(),
        "--base-url",
        &server.base_url(),
        "--models",
        "re_logo",
        "--rps",
        "20",
        "-o",
        batch.out(),
    ]);
    let output = command.stderr(Stdio::inherit()).output().unwrap();
    let status = String::from_utf8_lossy(&output.stdout);
    assert_eq!(status.trim(), "130", "how restb ended");
    let done = ids_exactly_once(&batch.out);
    assert!(
        done.len() >= 3 && done.len() < 60,
        "{} outcomes",
        done.len()
    );
}

/// Regression: `(restb run ... 2>&1) | true` exited 134 although every job
/// succeeded: the final report's write to the closed pipe panicked.
#[test]
fn closed_stderr_pipe_leaves_the_exit_status_of_the_run() {
    let server = start_mock(MockConfig::default());
    let batch = Batch::of(5);
    let mut command = Command::new(env!("CARGO_BIN_EXE_restb"));
    let mut child = clean_env(&mut command, Some("test-key-k"))
        .args(["run", batch.input(), "--base-url", &server.base_url()])
        .args(["--models", "re_logo", "-o", batch.out()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before restb writes anything to standard error.
    drop(child.stderr.take());
    let (code, _) = wait_with_limit(child, Duration::from_secs(20));
    assert_eq!(code, Some(0));
    assert_eq!(ids_exactly_once(&batch.out).len(), 5);
}

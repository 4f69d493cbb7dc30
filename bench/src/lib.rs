//! What the benchmark binaries share: a quiet `hubgate serve` process on a free port, and
//! memory readings from `/proc`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a measuring tool: fail loudly

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hubgate_tests::free_port;

/// A `/proc/<pid>/status` figure (`VmHWM:`, `VmRSS:`) in MiB.
fn status_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Peak resident memory of a process so far (MiB).
pub fn peak_rss_mib(pid: u32) -> f64 {
    status_mib(pid, "VmHWM:")
}

/// Resident memory of a process now (MiB).
pub fn rss_mib(pid: u32) -> f64 {
    status_mib(pid, "VmRSS:")
}

/// `hubgate serve` with `config` on `port`, quiet.
pub fn spawn_serve(bin: &Path, config: &Path, port: u16) -> Child {
    Command::new(bin)
        .args(["serve", "--config"])
        .arg(config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hubgate")
}

/// A `hubgate serve` process, killed when dropped.
#[derive(Debug)]
pub struct Hubgate {
    pub child: Child,
    pub port: u16,
}

impl Hubgate {
    /// Starts `bin serve --config config` on a free port and waits until it listens.
    pub fn start(bin: &Path, config: &Path) -> Self {
        let port = free_port();
        let child = spawn_serve(bin, config, port);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "hubgate did not listen");
            std::thread::sleep(Duration::from_millis(5));
        }
        Self { child, port }
    }
}

impl Drop for Hubgate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

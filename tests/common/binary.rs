//! The built binary as a child process (`serve --config FILE`), for tests that need a real
//! process: a crash, a signal. Its stderr log lines are collected; stdout is drained.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use tokio::sync::mpsc;

use super::{ALLOWED_ORIGIN, CASHIER, WAIT};

/// The agent process; killed (SIGKILL) on drop, so a failing test leaves nothing behind.
pub struct Process {
    child: Child,
    logs: mpsc::UnboundedReceiver<String>,
}

impl Process {
    /// Starts `caisse-ap-relay serve --config FILE` and reads its bound address from stdout.
    pub fn start(config: &Path) -> (Process, SocketAddr) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_caisse-ap-relay"))
            .args(["serve", "--config"])
            .arg(config)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("a listening line").unwrap();
            if let Some(rest) = line.strip_prefix("listening on https://") {
                break rest.trim_end_matches('/').parse().unwrap();
            }
        };
        // Keep draining both pipes so the agent never blocks on a full one.
        std::thread::spawn(move || lines.for_each(drop));
        let (sender, logs) = mpsc::unbounded_channel();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        (Process { child, logs }, addr)
    }

    /// Sends `signal` (e.g. `HUP`) with `kill`.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// The next log line containing `needle`, within [`WAIT`].
    pub async fn log_line(&mut self, needle: &str) -> String {
        let wait = async {
            loop {
                let line = self.logs.recv().await.expect("the agent is still logging");
                if line.contains(needle) {
                    return line;
                }
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .unwrap_or_else(|_| panic!("a log line with {needle:?} in time"))
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Writes `dir/agent.toml`: data and certificates in `dir`, the `terminals` (name, address;
/// 600 s timeout) and till `till-1` holding [`CASHIER`].
pub fn write_config(dir: &Path, terminals: &[(&str, SocketAddr)]) -> PathBuf {
    let mut text = format!(
        r#"[server]
listen = "127.0.0.1:0"
allowed_origins = ["{ALLOWED_ORIGIN}"]
data_dir = "{data}"

[tls]
dir = "{certs}"

[[till]]
name = "till-1"
token = "{CASHIER}"
"#,
        data = dir.join("data").display(),
        certs = dir.join("certs").display(),
    );
    for (name, address) in terminals {
        text.push_str(&format!(
            "\n[[terminal]]\nname = \"{name}\"\naddress = \"{address}\"\ntimeout = \"600s\"\n"
        ));
    }
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).unwrap();
    path
}

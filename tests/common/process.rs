//! The built binary as a process: a configuration file for it, `serve` started with the
//! bound address read from stdout and stderr collected, and a graceful stop (SIGTERM).

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;

use super::{ALLOWED_ORIGIN, CASHIER, DISPLAY};

/// A running `caisse-ap-relay`; killed (SIGKILL) on drop, so a failing test leaves nothing.
pub struct Agent {
    child: Child,
    stderr: Option<JoinHandle<String>>,
}

impl Agent {
    /// Runs the binary with `args` (which must start the agent), `RUST_LOG=rust_log`, and
    /// waits for its `listening on https://ADDR/` line.
    pub fn start(args: &[&str], rust_log: &str) -> (Agent, SocketAddr) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_caisse-ap-relay"))
            .args(args)
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("a listening line").unwrap();
            if let Some(rest) = line.strip_prefix("listening on https://") {
                break rest.trim_end_matches('/').parse().unwrap();
            }
        };
        // Keep draining stdout so the agent never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let agent = Agent {
            child,
            stderr: Some(stderr),
        };
        (agent, addr)
    }

    /// Sends SIGTERM, waits for the exit and returns everything written on stderr.
    pub fn terminate(mut self) -> String {
        let pid = self.child.id().to_string();
        let status = Command::new("sh")
            .args(["-c", "kill -TERM \"$0\"", &pid])
            .status()
            .unwrap();
        assert!(status.success(), "SIGTERM sent");
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "a graceful stop exits 0: {exit}");
        self.stderr.take().unwrap().join().unwrap()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `dir/agent.toml`: data in `dir/data`, certificates in `dir/certs`, `terminals`
/// (name, address), tills `till-1` (cashier) and `screen` (display) with the test tokens.
pub fn write_config(dir: &Path, terminals: &[(&str, SocketAddr)]) -> PathBuf {
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nallowed_origins = [\"{ALLOWED_ORIGIN}\"]\n\
         data_dir = \"{}\"\n\n[tls]\ndir = \"{}\"\n",
        dir.join("data").display(),
        dir.join("certs").display(),
    );
    for (name, address) in terminals {
        text += &format!("\n[[terminal]]\nname = \"{name}\"\naddress = \"{address}\"\n");
    }
    text += &format!("\n[[till]]\nname = \"till-1\"\ntoken = \"{CASHIER}\"\n");
    text += &format!("\n[[till]]\nname = \"screen\"\ntoken = \"{DISPLAY}\"\nrole = \"display\"\n");
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).unwrap();
    path
}

//! Fixtures of the fault, crash and journal-fault tests: the journal read line by line (every
//! state a record went through, not only its latest), and the built binary run as a child
//! process with a test hook in its environment, its logs collected.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use tokio::sync::{mpsc, oneshot};

use caisse_ap_relay::engine::journal::FILE_NAME;
use caisse_ap_relay::engine::record::Record;

use std::sync::Arc;

use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use super::common::{connect_as, next_frame, pay, send, TestAgent, ALLOWED_ORIGIN, CASHIER, WAIT};

/// SIGABRT: how a process stopped by a crash point dies.
pub const SIGABRT: i32 = 6;

/// Every complete record line of `data_dir`'s journal, in file order; each line's checksum
/// must hold (a torn last line is ignored: a crash may leave one).
pub fn journal_lines(data_dir: &Path) -> Vec<Record> {
    let bytes = std::fs::read(data_dir.join(FILE_NAME)).unwrap_or_default();
    let lines = bytes.split_inclusive(|b| *b == b'\n');
    let complete = lines.filter_map(|line| line.strip_suffix(b"\n"));
    complete.map(decode_line).collect()
}

fn decode_line(line: &[u8]) -> Record {
    let (crc, json) = line.split_at(9);
    let crc = std::str::from_utf8(&crc[..8]).expect("hex checksum");
    let crc = u32::from_str_radix(crc, 16).expect("hex checksum");
    assert_eq!(crc, crc32fast::hash(json), "checksum of a journal line");
    serde_json::from_slice(json).expect("a journaled record")
}

/// The journal lines of transaction `id`, in order.
pub fn history(data_dir: &Path, id: &str) -> Vec<Record> {
    let lines = journal_lines(data_dir).into_iter();
    lines.filter(|r| r.id == id).collect()
}

/// The state names of `records`.
pub fn states(records: &[Record]) -> Vec<&'static str> {
    records.iter().map(|r| r.state.as_str()).collect()
}

/// The built agent, killed (SIGKILL) on drop so that a failing test leaves nothing behind.
pub struct Process {
    child: Child,
    /// Where it serves.
    pub addr: SocketAddr,
    logs: mpsc::UnboundedReceiver<String>,
    // Fires when stdout closes: the process is gone.
    gone: Option<oneshot::Receiver<()>>,
}

impl Process {
    /// Starts `caisse-ap-relay serve --config FILE` with `env` added, and waits for its
    /// `listening on https://ADDR/` line (off the runtime: other tests' agents run meanwhile).
    pub async fn start(config: &Path, env: &[(&str, &str)]) -> Process {
        let mut child = Command::new(env!("CARGO_BIN_EXE_caisse-ap-relay"))
            .args(["serve", "--config"])
            .arg(config)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let logs = collect_lines(child.stderr.take().unwrap());
        let stdout = child.stdout.take().unwrap();
        let (listening, gone) = (oneshot::channel(), oneshot::channel());
        std::thread::spawn(move || read_stdout(stdout, listening.0, gone.0));
        let addr = tokio::time::timeout(WAIT, listening.1)
            .await
            .expect("the agent listens in time")
            .expect("a listening line");
        Process {
            child,
            addr,
            logs,
            gone: Some(gone.1),
        }
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits (up to [`WAIT`]) for the process to exit by itself; returns how it ended.
    pub async fn exited(&mut self) -> ExitStatus {
        let gone = self.gone.take().expect("exited is awaited once");
        let _ = tokio::time::timeout(WAIT, gone)
            .await
            .expect("the agent exits in time");
        self.child.wait().unwrap()
    }

    /// Waits (up to [`WAIT`]) for a log line containing `text`.
    pub async fn wait_log(&mut self, text: &str) -> String {
        loop {
            let line = tokio::time::timeout(WAIT, self.logs.recv()).await;
            match line.expect("a log line in time") {
                Some(line) if line.contains(text) => return line,
                Some(_) => continue,
                None => panic!("no log line containing {text:?}"),
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether `status` is a death by SIGABRT (a crash point).
pub fn aborted(status: ExitStatus) -> bool {
    status.signal() == Some(SIGABRT)
}

/// Reports the address of the `listening on` line, drains the rest so that the agent never
/// blocks on a full pipe, and reports the end of the stream (the process is gone).
fn read_stdout(
    stdout: impl Read,
    listening: oneshot::Sender<SocketAddr>,
    gone: oneshot::Sender<()>,
) {
    let mut listening = Some(listening);
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let addr = line.strip_prefix("listening on https://");
        if let (Some(addr), Some(report)) = (addr, listening.take()) {
            let _ = report.send(addr.trim_end_matches('/').parse().unwrap());
        }
    }
    let _ = gone.send(());
}

fn collect_lines(stream: impl Read + Send + 'static) -> mpsc::UnboundedReceiver<String> {
    let (lines, logs) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    logs
}

/// Writes a configuration for the binary in `dir`: terminal `tpe-1` at `terminal` with
/// `timeout`, till `till-1` with the common cashier token; data in `dir/data`.
pub fn write_config(dir: &Path, terminal: SocketAddr, timeout: &str) -> PathBuf {
    let path = dir.join("agent.toml");
    let text = format!(
        r#"[server]
listen = "127.0.0.1:0"
allowed_origins = ["{ALLOWED_ORIGIN}"]
data_dir = "{data}"

[tls]
dir = "{certs}"

[[terminal]]
name = "tpe-1"
address = "{terminal}"
timeout = "{timeout}"

[[till]]
name = "till-1"
token = "{CASHIER}"
"#,
        data = dir.join("data").display(),
        certs = dir.join("certs").display(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Pays `id` (31.00 EUR on `tpe-1`) on the agent `process` and returns the messages about
/// `id` up to a final record or an `error`, or as far as they got before the socket broke.
pub async fn pay_and_follow(
    process: &Process,
    dir: &Arc<tempfile::TempDir>,
    id: &str,
) -> Vec<Value> {
    let agent = TestAgent::external(process.addr, Arc::clone(dir));
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay(id, "tpe-1", 3100)).await;
    let mut seen = Vec::new();
    while let Some(Ok(Message::Text(text))) = next_frame(&mut ws).await {
        let message: Value = serde_json::from_str(&text).unwrap();
        if message["id"] != id {
            continue;
        }
        seen.push(message.clone());
        let state = message["state"].as_str().unwrap_or_default();
        let finals = ["approved", "declined", "not_sent", "unknown"];
        if message["type"] == "error" || finals.contains(&state) {
            break;
        }
    }
    seen
}

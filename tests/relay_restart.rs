//! The built binary, killed with SIGKILL while a terminal holds a request: after a restart
//! the transaction is `unknown` (`agent_restart`) and the request was never sent again.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use caisse_ap_relay::sim::{Behaviour, Fault, Outcome};
use common::*;
use serde_json::json;

/// The agent process; killed (SIGKILL) on drop, so a failing test leaves nothing behind.
struct Process(Child);

impl Process {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `caisse-ap-relay serve --config FILE` and reads its bound address from stdout.
fn start_binary(config: &std::path::Path) -> (Process, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_caisse-ap-relay"))
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("a listening line").unwrap();
        if let Some(rest) = line.strip_prefix("listening on https://") {
            break rest.trim_end_matches('/').parse().unwrap();
        }
    };
    // Keep draining stdout so the agent never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (Process(child), addr)
}

fn write_config(dir: &std::path::Path, terminal: SocketAddr) -> std::path::PathBuf {
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
timeout = "600s"

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

#[tokio::test]
async fn a_killed_agent_settles_the_sent_transaction_as_unknown_without_resending() {
    let sim = spawn_sim(Behaviour {
        outcome: Outcome::Approved,
        fault: Some(Fault::Hang),
        delay: Duration::ZERO,
        magic_amounts: false,
    })
    .await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let config = write_config(dir.path(), sim.addr());

    let (mut first, addr) = start_binary(&config);
    let agent = TestAgent::external(addr, Arc::clone(&dir));
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("k-1", "tpe-1", 2500)).await;
    until_state(&mut ws, "k-1", "waiting_card").await;
    first.kill();

    let (mut second, addr) = start_binary(&config);
    let agent = TestAgent::external(addr, Arc::clone(&dir));
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    let replayed = next_message(&mut ws).await;
    assert_eq!(replayed["id"], "k-1");
    send(&mut ws, json!({"type": "get", "id": "k-1"})).await;
    let record = next_message(&mut ws).await;
    assert_eq!(record["state"], "unknown");
    assert_eq!(record["result"]["reason"], "agent_restart");
    assert_eq!(sim.request_count(), 1, "the request was never sent again");
    second.kill();
}

//! The bench's world: a temporary directory, the zero-delay simulated terminals and the
//! agent's configuration file naming them, with static till tokens.
//!
//! Names: terminals `t000`…, throughput tills `till-000`… (one per terminal), latency tills
//! `lat-00`… and the display till `idle` for idle connections. Each phase uses tills of its
//! own, so a `welcome` never replays another phase's records.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::net::TcpListener;

use crate::sim::{Behaviour, Simulator};

/// A directory under the system temp dir, removed on drop.
pub struct Workdir {
    path: PathBuf,
}

impl Workdir {
    /// Creates a fresh, uniquely named directory.
    pub fn create() -> io::Result<Workdir> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let name = format!("caisse-ap-relay-bench-{}-{nanos}", std::process::id());
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path)?;
        Ok(Workdir { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The agent's `data_dir` (journal).
    pub fn data_dir(&self) -> PathBuf {
        self.path.join("data")
    }

    /// The agent's `tls.dir` (generated CA and leaf).
    pub fn tls_dir(&self) -> PathBuf {
        self.path.join("certs")
    }

    /// The configuration file.
    pub fn config_file(&self) -> PathBuf {
        self.path.join("caisse-ap-relay.toml")
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Name of terminal `i`.
pub fn terminal_name(i: usize) -> String {
    format!("t{i:03}")
}

/// A till of the bench: its name and its static token (at least 16 characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Till {
    /// Till name.
    pub name: String,
    /// Static token.
    pub token: String,
}

impl Till {
    fn named(name: String) -> Till {
        let token = format!("bench-token-{name}-0123456789");
        Till { name, token }
    }

    /// Throughput till `i` (pays on terminal `i`).
    pub fn throughput(i: usize) -> Till {
        Till::named(format!("till-{i:03}"))
    }

    /// Latency till of lane `i` (pays on terminal `i`).
    pub fn latency(i: usize) -> Till {
        Till::named(format!("lat-{i:02}"))
    }

    /// The display till every idle connection uses.
    pub fn idle() -> Till {
        Till::named("idle".to_owned())
    }
}

/// Starts `count` zero-delay approving simulators on 127.0.0.1, port 0.
pub async fn spawn_terminals(count: usize) -> io::Result<Vec<Simulator>> {
    let mut sims = Vec::with_capacity(count);
    for _ in 0..count {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        sims.push(Simulator::spawn(listener, Behaviour::default()));
    }
    Ok(sims)
}

#[derive(Serialize)]
struct File {
    server: Server,
    tls: Tls,
    terminal: Vec<Terminal>,
    till: Vec<TillEntry>,
}

#[derive(Serialize)]
struct Server {
    listen: String,
    data_dir: PathBuf,
    max_connections_per_address: usize,
    /// "0s": the bench pays the same amount again and again on purpose.
    duplicate_window: &'static str,
}

#[derive(Serialize)]
struct Tls {
    dir: PathBuf,
}

#[derive(Serialize)]
struct Terminal {
    name: String,
    address: String,
    timeout: String,
}

#[derive(Serialize)]
struct TillEntry {
    name: String,
    token: String,
    role: &'static str,
}

/// Connections per client address the bench's agent allows.
const PER_ADDRESS: usize = 10_000;

/// The configuration text: listen on 127.0.0.1:0, one terminal per simulator, the
/// throughput and latency tills (cashiers) and the idle till (display).
pub fn config_text(work: &Workdir, sims: &[Simulator], tills: usize, lanes: usize) -> String {
    let terminal = sims
        .iter()
        .enumerate()
        .map(|(i, sim)| Terminal {
            name: terminal_name(i),
            address: sim.addr().to_string(),
            timeout: "10s".to_owned(),
        })
        .collect();
    let entry = |till: Till, role| TillEntry {
        name: till.name,
        token: till.token,
        role,
    };
    let cashiers = (0..tills)
        .map(Till::throughput)
        .chain((0..lanes).map(Till::latency));
    let mut till: Vec<TillEntry> = cashiers.map(|t| entry(t, "cashier")).collect();
    till.push(entry(Till::idle(), "display"));
    let file = File {
        server: Server {
            listen: "127.0.0.1:0".to_owned(),
            data_dir: work.data_dir(),
            // The idle clients come from a few loopback addresses, thousands each.
            max_connections_per_address: PER_ADDRESS,
            duplicate_window: "0s",
        },
        tls: Tls {
            dir: work.tls_dir(),
        },
        terminal,
        till,
    };
    toml::to_string(&file).expect("the bench configuration serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Role};

    #[tokio::test]
    async fn the_configuration_is_valid_for_the_agent() {
        let work = Workdir::create().unwrap();
        let sims = spawn_terminals(3).await.unwrap();
        let text = config_text(&work, &sims, 3, 2);
        let config = Config::from_str_named(&text, "bench.toml").expect("valid");
        assert_eq!(config.terminals.len(), 3);
        assert_eq!(config.terminals[2].name, "t002");
        assert_eq!(config.terminals[1].address, sims[1].addr().to_string());
        assert_eq!(config.tills.len(), 3 + 2 + 1);
        assert_eq!(config.tills[3].name, "lat-00");
        let idle = config.tills.last().unwrap();
        assert_eq!((idle.name.as_str(), idle.role), ("idle", Role::Display));
        assert_eq!(config.server.data_dir, work.data_dir());
    }

    #[test]
    fn the_workdir_disappears_on_drop() {
        let work = Workdir::create().unwrap();
        let path = work.path().to_path_buf();
        assert!(path.is_dir());
        drop(work);
        assert!(!path.exists());
    }
}

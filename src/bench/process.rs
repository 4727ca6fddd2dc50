//! The agent under test as a separate process: `current_exe() serve --config FILE`, found
//! through the `listening on https://ADDR/` line it prints, measured through `/proc`.
//!
//! Its stdout and stderr go to `agent.log` in the bench's directory (scanned line by line
//! for the listening address); the log's tail is quoted when the agent fails to start.
//! The process is stopped with SIGTERM (then SIGKILL after a grace period), and killed on
//! drop, so an error anywhere in the bench never leaves it running.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};
use tokio::sync::mpsc;

use super::client::Tls;
use super::BenchError;

/// Longest wait for the listening line and for the first TLS handshake.
const START_LIMIT: Duration = Duration::from_secs(30);
/// Longest wait for a graceful stop before SIGKILL.
const STOP_LIMIT: Duration = Duration::from_secs(15);
/// What `serve` prints once its port is bound.
const LISTENING: &str = "listening on https://";

/// A running agent process.
pub struct AgentProcess {
    child: Option<Child>,
    pid: Pid,
    spawned: Instant,
    addr: SocketAddr,
    listening_after: Duration,
    log: PathBuf,
}

impl AgentProcess {
    /// Spawns `exe serve --config config` and waits for its listening line.
    pub async fn spawn(exe: &Path, config: &Path, log: &Path) -> Result<AgentProcess, BenchError> {
        let io = |what: &str| {
            let what = what.to_owned();
            move |source| BenchError::Io { what, source }
        };
        let log_file = OpenOptions::new().create(true).append(true).open(log);
        let log_file = Arc::new(Mutex::new(log_file.map_err(io("agent log"))?));
        let spawned = Instant::now();
        let mut child = Command::new(exe)
            .args(["serve", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io("spawning the agent"))?;
        let (found, mut listening) = mpsc::unbounded_channel();
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        scan(stdout, log_file.clone(), found.clone());
        scan(stderr, log_file, found);
        let pid = Pid::from_child(&child);
        let mut agent = AgentProcess {
            child: Some(child),
            pid,
            spawned,
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            listening_after: Duration::ZERO,
            log: log.to_path_buf(),
        };
        agent.addr = match tokio::time::timeout(START_LIMIT, listening.recv()).await {
            Ok(Some(addr)) => addr,
            Ok(None) => return Err(agent.failed("the agent exited before listening")),
            Err(_) => return Err(agent.failed("the agent printed no listening line")),
        };
        agent.listening_after = spawned.elapsed();
        Ok(agent)
    }

    /// The time from spawn to the listening line.
    pub fn started(&self) -> Duration {
        self.listening_after
    }

    /// Where it accepts HTTPS and WSS.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The time from spawn to the first completed TLS handshake, trying again at once
    /// after each refused attempt.
    pub async fn ready(&self, tls: &Tls) -> Result<Duration, BenchError> {
        let source = IpAddr::V4(Ipv4Addr::LOCALHOST);
        loop {
            if tls.connect(self.addr, source).await.is_ok() {
                return Ok(self.spawned.elapsed());
            }
            if self.spawned.elapsed() > START_LIMIT {
                return Err(self.failed("the agent never completed a TLS handshake"));
            }
            tokio::task::yield_now().await;
        }
    }

    /// Resident memory (VmRSS) in KiB.
    pub fn rss_kib(&self) -> Result<u64, BenchError> {
        let status = proc_file(self.pid, "status")?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| BenchError::Agent("no VmRSS in /proc/PID/status".to_owned()))
    }

    /// CPU time (user + system) used so far.
    pub fn cpu_time(&self) -> Result<Duration, BenchError> {
        cpu_time(self.pid)
    }

    /// Freezes the agent (SIGSTOP) or thaws it (SIGCONT): frozen, it takes no CPU while
    /// another agent is measured.
    pub fn freeze(&self, frozen: bool) {
        let signal = if frozen { Signal::STOP } else { Signal::CONT };
        let _ = kill_process(self.pid, signal);
    }

    /// Stops the agent with SIGTERM and waits for it (SIGKILL after [`STOP_LIMIT`]).
    pub async fn stop(mut self) -> Result<(), BenchError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = self.pid;
        let _ = kill_process(pid, Signal::CONT);
        let _ = kill_process(pid, Signal::TERM);
        let waiting = tokio::task::spawn_blocking(move || child.wait());
        match tokio::time::timeout(STOP_LIMIT, waiting).await {
            Ok(Ok(Ok(_status))) => Ok(()),
            Ok(Ok(Err(source))) => Err(BenchError::Io {
                what: "waiting for the agent".to_owned(),
                source,
            }),
            Ok(Err(join)) => Err(BenchError::Agent(format!("waiting for the agent: {join}"))),
            Err(_) => {
                let _ = kill_process(pid, Signal::KILL);
                Err(self.failed("the agent did not stop within its grace period"))
            }
        }
    }

    /// An error quoting the end of the agent's log.
    fn failed(&self, what: &str) -> BenchError {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(10).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        BenchError::Agent(format!(
            "{what}; end of {}:\n{}",
            self.log.display(),
            tail.join("\n")
        ))
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Copies `pipe` to `log` line by line on a thread, sending the listening address once seen.
fn scan(
    pipe: impl Read + Send + 'static,
    log: Arc<Mutex<File>>,
    found: mpsc::UnboundedSender<SocketAddr>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { return };
            if let Some(addr) = listening_addr(&line) {
                let _ = found.send(addr);
            }
            let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
            let _ = writeln!(log, "{line}");
        }
    });
}

/// The address in a `listening on https://ADDR/` line.
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find(LISTENING)? + LISTENING.len()..];
    rest.split('/').next()?.parse().ok()
}

fn proc_file(pid: Pid, name: &str) -> Result<String, BenchError> {
    let path = format!("/proc/{}/{name}", pid.as_raw_nonzero());
    std::fs::read_to_string(&path).map_err(|source| BenchError::Io { what: path, source })
}

/// CPU time (user + system) of process `pid`, from `/proc/PID/stat`.
pub fn cpu_time(pid: Pid) -> Result<Duration, BenchError> {
    let stat = proc_file(pid, "stat")?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    // `after` starts at field 3, so utime and stime are its 12th and 13th.
    let field = |i| after.split_whitespace().nth(i)?.parse::<u64>().ok();
    let ticks = field(11).zip(field(12)).map(|(user, system)| user + system);
    let ticks = ticks.ok_or_else(|| BenchError::Agent("unreadable /proc/PID/stat".to_owned()))?;
    let per_second = rustix::param::clock_ticks_per_second().max(1);
    Ok(Duration::from_secs_f64(ticks as f64 / per_second as f64))
}

/// CPU time of this (the bench) process.
pub fn own_cpu_time() -> Result<Duration, BenchError> {
    cpu_time(rustix::process::getpid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_line_gives_the_address() {
        let addr = listening_addr("listening on https://127.0.0.1:40123/");
        assert_eq!(addr, Some("127.0.0.1:40123".parse().unwrap()));
        let logged = listening_addr("2026-11-23 INFO listening on https://[::1]:8443/ x");
        assert_eq!(logged, Some("[::1]:8443".parse().unwrap()));
        assert_eq!(listening_addr("listening on https://localhost:8443/"), None);
        assert_eq!(listening_addr("started"), None);
    }

    #[test]
    fn own_cpu_time_is_readable() {
        let before = own_cpu_time().expect("/proc/self/stat");
        let started = Instant::now();
        let mut spin = 0u64;
        while started.elapsed() < Duration::from_millis(100) {
            spin = std::hint::black_box(spin.wrapping_add(1));
        }
        let spent = own_cpu_time().expect("/proc/self/stat") - before;
        assert!(
            spent > Duration::ZERO,
            "100 ms of spinning shows up as CPU time"
        );
    }
}

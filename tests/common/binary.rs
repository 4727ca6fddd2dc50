//! The built binary as a child process, for tests that need a real process (a crash, a
//! signal, the log output): a configuration file for it, `serve` started and its bound
//! address read from stdout, its stderr lines collected, and the ways to stop it.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use caisse_ap_relay::engine::probe::NO_START_PROBE_VAR;
use tokio::sync::{mpsc, oneshot};

use super::{ALLOWED_ORIGIN, CASHIER, DISPLAY, WAIT};

/// SIGABRT: how a process stopped by a crash point dies.
pub const SIGABRT: i32 = 6;

/// A running `caisse-ap-relay`; killed (SIGKILL) on drop, so a failing test leaves nothing.
pub struct Process {
    child: Child,
    /// Where it serves.
    pub addr: SocketAddr,
    logs: mpsc::UnboundedReceiver<String>,
    printed: mpsc::UnboundedReceiver<String>,
    // Fires when stdout closes: the process is gone.
    gone: Option<oneshot::Receiver<()>>,
}

impl Process {
    /// Starts `caisse-ap-relay serve --config FILE` with `env` added.
    pub async fn start(config: &Path, env: &[(&str, &str)]) -> Process {
        let args = [
            OsStr::new("serve"),
            OsStr::new("--config"),
            config.as_os_str(),
        ];
        Process::run(args, env).await
    }

    /// Runs the binary with `args` (which must start the agent) and `env` added to
    /// `RUST_LOG=info NO_COLOR=1` and no probe at start (requests are counted exactly), and waits for its `listening on https://ADDR/` line (off
    /// the runtime: other tests' agents run meanwhile).
    pub async fn run<S: AsRef<OsStr>>(
        args: impl IntoIterator<Item = S>,
        env: &[(&str, &str)],
    ) -> Process {
        let mut command = Command::new(env!("CARGO_BIN_EXE_caisse-ap-relay"));
        command.args(args);
        Process::spawn(command, env).await
    }

    /// [`Process::start`] under a limit of `open_files` descriptors (soft and hard, so the
    /// agent cannot raise it), set by the shell's `ulimit -n` before it `exec`s the agent.
    pub async fn start_with_open_files(config: &Path, open_files: u64) -> Process {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("ulimit -n {open_files} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_caisse-ap-relay"))
            .args([
                OsStr::new("serve"),
                OsStr::new("--config"),
                config.as_os_str(),
            ]);
        Process::spawn(command, &[]).await
    }

    /// Descriptors the process holds now (Linux `/proc`).
    pub fn open_files(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).map_or(0, |dir| dir.count())
    }

    async fn spawn(mut command: Command, env: &[(&str, &str)]) -> Process {
        let mut child = command
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env(NO_START_PROBE_VAR, "1")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let logs = collect_lines(child.stderr.take().unwrap());
        let stdout = child.stdout.take().unwrap();
        let (listening, gone) = (oneshot::channel(), oneshot::channel());
        let (lines, printed) = mpsc::unbounded_channel();
        std::thread::spawn(move || read_stdout(stdout, listening.0, lines, gone.0));
        let addr = tokio::time::timeout(WAIT, listening.1)
            .await
            .expect("the agent listens in time")
            .expect("a listening line");
        Process {
            child,
            addr,
            logs,
            printed,
            gone: Some(gone.1),
        }
    }

    /// Sends `signal` (e.g. `HUP`, `TERM`) with `kill`.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// CPU time (user + system) the process used so far, from `/proc/PID/stat`.
    pub fn cpu_time(&self) -> std::time::Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .expect("the agent's /proc stat");
        // Fields after the command name (in parentheses): state is 3, utime 14, stime 15.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        let per_second = rustix::param::clock_ticks_per_second();
        std::time::Duration::from_secs_f64(ticks as f64 / per_second as f64)
    }

    /// Waits (up to [`WAIT`]) for a line on stdout (the console banner) containing `text`.
    pub async fn printed_line(&mut self, text: &str) -> String {
        loop {
            let line = tokio::time::timeout(WAIT, self.printed.recv()).await;
            match line.expect("a printed line in time") {
                Some(line) if line.contains(text) => return line,
                Some(_) => continue,
                None => panic!("no printed line containing {text:?}"),
            }
        }
    }

    /// Waits (up to [`WAIT`]) for a log line containing `text`.
    pub async fn log_line(&mut self, text: &str) -> String {
        loop {
            let line = tokio::time::timeout(WAIT, self.logs.recv()).await;
            match line.expect("a log line in time") {
                Some(line) if line.contains(text) => return line,
                Some(_) => continue,
                None => panic!("no log line containing {text:?}"),
            }
        }
    }

    /// Sends SIGTERM, asserts a graceful exit (status 0) and returns the stderr lines not
    /// yet read by [`Process::log_line`].
    pub async fn terminate(mut self) -> String {
        self.signal("TERM");
        let exit = self.exited().await;
        assert!(exit.success(), "a graceful stop exits 0: {exit}");
        let mut text = String::new();
        while let Some(line) = tokio::time::timeout(WAIT, self.logs.recv())
            .await
            .expect("stderr closes in time")
        {
            text += &line;
            text.push('\n');
        }
        text
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
    lines: mpsc::UnboundedSender<String>,
    gone: oneshot::Sender<()>,
) {
    let mut listening = Some(listening);
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let addr = line.strip_prefix("listening on https://");
        if let (Some(addr), Some(report)) = (addr, listening.take()) {
            let _ = report.send(addr.trim_end_matches('/').parse().unwrap());
        }
        let _ = lines.send(line);
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

/// The 8-digit code `caisse-ap-relay pair` printed in `stdout`.
pub fn pairing_code(stdout: &str) -> String {
    stdout
        .split(|c: char| !c.is_ascii_digit())
        .find(|word| word.len() == 8)
        .unwrap_or_else(|| panic!("no code in {stdout}"))
        .to_owned()
}

/// Writes `dir/agent.toml`: data in `dir/data`, certificates in `dir/certs`, `terminals`
/// (name, address; a 600 s timeout, never reached in a test), tills `till-1` (cashier) and
/// `screen` (display) with the test tokens. The safety guards are off (v1 behaviour, as in
/// `common::config`).
pub fn write_config(dir: &Path, terminals: &[(&str, SocketAddr)]) -> PathBuf {
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nallowed_origins = [\"{ALLOWED_ORIGIN}\"]\n\
         data_dir = \"{}\"\nduplicate_window = \"0s\"\n\n[tls]\ndir = \"{}\"\n",
        dir.join("data").display(),
        dir.join("certs").display(),
    );
    for (name, address) in terminals {
        text += &format!(
            "\n[[terminal]]\nname = \"{name}\"\naddress = \"{address}\"\ntimeout = \"600s\"\n\
             guard_unknown = false\n"
        );
    }
    text += &format!("\n[[till]]\nname = \"till-1\"\ntoken = \"{CASHIER}\"\n");
    text += &format!("\n[[till]]\nname = \"screen\"\ntoken = \"{DISPLAY}\"\nrole = \"display\"\n");
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).unwrap();
    path
}

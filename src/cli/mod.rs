//! The command line: one subcommand per file, each with its arguments and its `run`.
//!
//! Exit codes: 0 success, 2 bad configuration or arguments; `pay` has its own (see there).

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::Config;

mod bench;
mod ca;
mod discover;
mod pair;
mod pay;
mod receipt_key;
mod report;
mod resolve;
mod serve;
mod simulate;
mod till;

/// Lets browser point-of-sale pages take payments on Caisse-AP over IP terminals.
#[derive(Debug, Parser)]
#[command(name = "caisse-ap-relay", version, about)]
pub struct Cli {
    /// Log format on stderr (`RUST_LOG` sets the level).
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
    pub log_format: LogFormat,
    /// What to do; without one, `serve`.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Readable lines.
    Human,
    /// One JSON object per line, for collectors.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent (the default).
    Serve(serve::ServeArgs),
    /// Run a simulated Caisse-AP terminal on raw TCP.
    Simulate(simulate::SimulateArgs),
    /// Run one transaction straight against a terminal, without the agent.
    Pay(pay::PayArgs),
    /// Export the local CA certificate and its fingerprint.
    Ca(ca::CaArgs),
    /// Day totals per terminal and method from the journal, to compare with the terminal's
    /// end-of-day ticket.
    Report(report::ReportArgs),
    /// Resolve an `unknown` transaction after checking the terminal's ticket (resolver `cli`).
    Resolve(resolve::ResolveArgs),
    /// Print a one-time code (8 digits, 10 minutes) that pairs a till's browser.
    Pair(pair::PairArgs),
    /// List tills, or revoke a paired one.
    Till(till::TillArgs),
    /// Run the benchmark suite against this binary's agent.
    Bench(bench::BenchArgs),
    /// Find Caisse-AP terminals on a private subnet and print `[[terminal]]` blocks.
    Discover(discover::DiscoverArgs),
    /// Print the receipt public key (a JWK, one line) for backends to pin.
    ReceiptKey(receipt_key::ReceiptKeyArgs),
}

impl Cli {
    /// Runs the chosen command and returns the process exit code.
    pub fn run(self) -> ExitCode {
        init_logs(self.log_format);
        let command = self
            .command
            .unwrap_or_else(|| Command::Serve(serve::ServeArgs::default()));
        match command {
            Command::Serve(args) => serve::run(args),
            Command::Simulate(args) => simulate::run(args),
            Command::Pay(args) => pay::run(args),
            Command::Ca(args) => ca::run(args),
            Command::Report(args) => report::run(args),
            Command::Pair(args) => pair::run(args),
            Command::Resolve(args) => resolve::run(args),
            Command::Till(args) => till::run(args),
            Command::Bench(args) => bench::run(args),
            Command::Discover(args) => discover::run(args),
            Command::ReceiptKey(args) => receipt_key::run(args),
        }
    }
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: escape codes cost formatting on every line and clutter
    // a service's log file or journald.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The single-threaded runtime of a one-shot command (`pay`, `discover`, `resolve`); when it
/// cannot start, the error is printed and the command exits with `code`.
fn one_shot_runtime(code: u8) -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| {
            eprintln!("error: cannot start the async runtime: {err}");
            ExitCode::from(code)
        })
}

/// The configuration a command works with: `--config FILE`, else `./caisse-ap-relay.toml`,
/// else `None` (the demo default). A bad file prints its one-line error and gives exit code 2.
fn locate_config(explicit: Option<&Path>) -> Result<Option<Config>, ExitCode> {
    match Config::locate(explicit) {
        Ok(found) => Ok(found.map(|(_, config)| config)),
        Err(err) => {
            eprintln!("{err}");
            Err(ExitCode::from(2))
        }
    }
}

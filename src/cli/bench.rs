//! `caisse-ap-relay bench [--quick]`: runs the benchmark suite ([`crate::bench`]) against
//! this very binary started as `serve`, prints the figures table, then the final line
//! `bench: key=value …`. Exit 0 when the run completed (whatever the figures), 1 otherwise.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::bench::{self, Plan};

/// Arguments of `bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// A short smoke run (seconds, small counts) instead of the full figures.
    #[arg(long)]
    pub quick: bool,
    /// The agent binary to measure (default: this program), e.g. to compare two builds.
    #[arg(long)]
    pub agent: Option<PathBuf>,
    /// Override: added-latency samples per path.
    #[arg(long)]
    pub samples: Option<usize>,
    /// Override: latency lanes run at once.
    #[arg(long)]
    pub lanes: Option<usize>,
    /// Override: tills (and terminals) in the throughput run.
    #[arg(long)]
    pub tills: Option<usize>,
    /// Override: length of the throughput run, in seconds.
    #[arg(long)]
    pub seconds: Option<u64>,
    /// Override: idle WebSocket clients.
    #[arg(long)]
    pub clients: Option<usize>,
}

impl BenchArgs {
    /// The full or quick plan with the overrides applied.
    fn plan(&self) -> Plan {
        let base = if self.quick {
            Plan::quick()
        } else {
            Plan::full()
        };
        Plan {
            latency_samples: self.samples.unwrap_or(base.latency_samples),
            lanes: self.lanes.unwrap_or(base.lanes).max(1),
            tills: self.tills.unwrap_or(base.tills).max(1),
            duration: self.seconds.map_or(base.duration, Duration::from_secs),
            idle_clients: self.clients.unwrap_or(base.idle_clients),
            journal_appends: base.journal_appends,
        }
    }
}

/// Runs `bench`.
pub fn run(args: BenchArgs) -> ExitCode {
    let plan = args.plan();
    let exe = match args.agent.map_or_else(std::env::current_exe, Ok) {
        Ok(exe) => exe,
        Err(err) => {
            eprintln!("cannot find this program's path: {err}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    let figures = match runtime {
        Ok(runtime) => runtime.block_on(bench::run(plan, &exe)),
        Err(err) => {
            eprintln!("cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match figures {
        Ok(figures) => {
            print!("{}", figures.table());
            println!("{}", figures.line());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("bench failed: {err}");
            ExitCode::FAILURE
        }
    }
}

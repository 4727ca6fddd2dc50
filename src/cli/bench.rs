//! `caisse-ap-relay bench [--quick]`: runs the benchmark suite ([`crate::bench`]) against
//! this very binary started as `serve`, prints the figures table, then the final line
//! `bench: key=value …`. Exit 0 when the run completed (whatever the figures), 1 otherwise.

use std::path::PathBuf;
use std::process::ExitCode;

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
}

/// Runs `bench`.
pub fn run(args: BenchArgs) -> ExitCode {
    let plan = if args.quick {
        Plan::quick()
    } else {
        Plan::full()
    };
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

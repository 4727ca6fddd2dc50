//! `caisse-ap-relay serve`: STUB, owned by the relay work.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `serve`.
#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// Configuration file (default `./caisse-ap-relay.toml`; none → the demo).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Runs `serve`.
pub fn run(_args: ServeArgs) -> ExitCode {
    todo!()
}

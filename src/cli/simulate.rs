//! `caisse-ap-relay simulate`: STUB, owned by the foundation work.

use std::process::ExitCode;

/// Arguments of `simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {}

/// Runs `simulate`.
pub fn run(_args: SimulateArgs) -> ExitCode {
    todo!()
}

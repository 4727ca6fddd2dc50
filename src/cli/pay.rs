//! `caisse-ap-relay pay`: STUB, owned by the foundation work.

use std::process::ExitCode;

/// Arguments of `pay`.
#[derive(Debug, clap::Args)]
pub struct PayArgs {}

/// Runs `pay`.
pub fn run(_args: PayArgs) -> ExitCode {
    todo!()
}

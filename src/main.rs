//! The `caisse-ap-relay` binary: parses the command line and runs the chosen command.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    caisse_ap_relay::cli::Cli::parse().run()
}

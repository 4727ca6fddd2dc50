//! `caisse-ap-relay discover`: sweeps a private or loopback subnet for Caisse-AP terminals
//! and prints a ready `[[terminal]]` block for each (see [`crate::discover`] for the rules
//! that keep it safe). Exit codes: 0 swept (even if nothing was found), 2 refused subnet
//! or bad configuration.

use std::path::PathBuf;
use std::process::ExitCode;

use ipnet::Ipv4Net;

use crate::discover::{self, range};

/// Arguments of `discover`.
#[derive(Debug, clap::Args)]
pub struct DiscoverArgs {
    /// Subnet to sweep, private or loopback, a /22 or smaller (default: the host's private
    /// /24s). Public ranges are refused.
    #[arg(long, value_name = "CIDR", value_parser = parse_subnet)]
    pub subnet: Option<Ipv4Net>,
    /// The Caisse-AP port (some terminals use 20002).
    #[arg(long, default_value_t = discover::DEFAULT_PORT)]
    pub port: u16,
    /// Configuration whose terminals are left alone (default `./caisse-ap-relay.toml`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

fn parse_subnet(text: &str) -> Result<Ipv4Net, String> {
    range::subnet(text).map_err(|e| e.to_string())
}

/// Runs `discover`.
pub fn run(args: DiscoverArgs) -> ExitCode {
    let config = match super::locate_config(args.config.as_deref()) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let subnets = match args.subnet {
        Some(net) => vec![net],
        None => range::local_subnets(),
    };
    if subnets.is_empty() {
        eprintln!("error: no private IPv4 address on this host; give --subnet");
        return ExitCode::from(2);
    }
    let terminals: Vec<(String, String)> = config
        .map(|c| c.terminals)
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.name, t.address))
        .collect();
    let runtime = match super::one_shot_runtime(2) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(sweep_all(&subnets, args.port, &terminals));
    ExitCode::SUCCESS
}

async fn sweep_all(subnets: &[Ipv4Net], port: u16, terminals: &[(String, String)]) {
    let configured = discover::configured_addresses(terminals).await;
    for net in subnets {
        let hosts = range::hosts(*net);
        eprintln!("sweeping {net} on port {port} ({} addresses)…", hosts.len());
        let findings = discover::sweep(&hosts, port, &configured).await;
        if findings.is_empty() {
            println!("# {net}: no open port {port}");
        }
        for finding in &findings {
            println!("{}", discover::describe(finding));
        }
    }
}

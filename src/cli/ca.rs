//! `caisse-ap-relay ca export`: shows the local CA certificate and its fingerprint, so an
//! operator can install it on the tills and check it there by eye.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::certs::Certificates;
use crate::config::TlsConfig;

/// Arguments of `ca`.
#[derive(Debug, clap::Args)]
pub struct CaArgs {
    /// What to do with the CA.
    #[command(subcommand)]
    pub command: CaCommand,
}

/// The `ca` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum CaCommand {
    /// Print (or write) the local CA certificate as PEM, then its SHA-256 fingerprint.
    Export(ExportArgs),
}

/// Arguments of `ca export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Write the PEM to this file instead of printing it.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Configuration file whose `[tls]` section names the certificates (default
    /// `./caisse-ap-relay.toml`; none → the demo default `certs/`). The CA is created if absent.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Runs `ca`.
pub fn run(args: CaArgs) -> ExitCode {
    let CaCommand::Export(args) = args.command;
    let tls = match super::locate_config(args.config.as_deref()) {
        Ok(config) => config.map(|config| config.tls).unwrap_or_default(),
        Err(code) => return code,
    };
    let result = export(&args, &tls);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn export(args: &ExportArgs, tls: &TlsConfig) -> anyhow::Result<()> {
    let certificates = Certificates::load_or_create(tls)?;
    let (Some(pem), Some(fingerprint)) = (certificates.ca_pem(), certificates.fingerprint()) else {
        anyhow::bail!("no local CA: the agent serves its own certificate");
    };
    let mut stdout = std::io::stdout().lock();
    match &args.out {
        Some(out) => std::fs::write(out, &pem).with_context(|| format!("{}", out.display()))?,
        None => stdout.write_all(pem.as_bytes())?,
    }
    writeln!(stdout, "SHA-256 fingerprint: {fingerprint}")?;
    Ok(())
}

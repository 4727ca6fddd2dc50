//! `caisse-ap-relay serve`: runs the agent, from the configuration file or the embedded demo.
//!
//! Prints `listening on https://ADDR/` once the port is bound (tests bind port 0 and read it).
//! Without a configuration file it runs the demo: an in-process simulated terminal `demo`,
//! a random till token printed on the console, and the CA fingerprint to check.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::agent::{Agent, Options};
use crate::config::{Config, Secret};
use crate::sim::{Behaviour, Simulator};

/// Arguments of `serve`.
#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// Configuration file (default `./caisse-ap-relay.toml`; none → the demo).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Runs `serve`: exit 2 on a bad configuration, 1 when the agent cannot start.
pub fn run(args: ServeArgs) -> ExitCode {
    let located = match Config::locate(args.config.as_deref()) {
        Ok(located) => located,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(located.map(|(_, config)| config))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Option<Config>) -> anyhow::Result<()> {
    raise_fd_limit();
    let (config, demo) = match config {
        Some(config) => (config, None),
        None => start_demo().await?,
    };
    let listen = config.server.listen;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let agent = Agent::start(&config, listener, Options::default()).await?;
    let addr = agent.local_addr()?;
    println!("listening on https://{addr}/");
    if let Some(demo) = &demo {
        print_demo_banner(&agent, addr.port(), &demo.token);
    }
    agent.serve(shutdown_signal()).await;
    drop(demo);
    Ok(())
}

/// Raises the soft open-files limit to the hard one: every browser and terminal dialog holds
/// a descriptor, and the usual soft default (1024) would refuse clients long before the
/// connection cap (`WebOptions::max_connections`).
fn raise_fd_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open files limit raised"),
        Err(err) => tracing::warn!(%err, "cannot raise the open files limit"),
    }
}

/// The demo's in-process terminal and its till token.
struct Demo {
    _terminal: Simulator,
    token: String,
}

async fn start_demo() -> anyhow::Result<(Config, Option<Demo>)> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .context("cannot start the demo terminal")?;
    let terminal = Simulator::spawn(listener, Behaviour::demo());
    let token = random_token()?;
    let config = Config::demo(terminal.addr().to_string(), Secret(token.clone()));
    let demo = Demo {
        _terminal: terminal,
        token,
    };
    Ok((config, Some(demo)))
}

fn random_token() -> anyhow::Result<String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("no system randomness for the demo token"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn print_demo_banner(agent: &Agent, port: u16, token: &str) {
    let fingerprint = agent.certificates().fingerprint().unwrap_or_default();
    println!("demo mode: no configuration file found");
    println!("  open        https://localhost:{port}/");
    println!("  till token  {token}");
    println!("  CA SHA-256  {fingerprint}");
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

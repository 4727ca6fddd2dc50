//! `caisse-ap-relay serve`: runs the agent, from the configuration file or the embedded demo.
//!
//! Prints `listening on https://ADDR/` once the port is bound (tests bind port 0 and read it),
//! then `onboarding on http://ADDR/` when the onboarding site is served.
//! Without a configuration file it runs the demo: an in-process simulated terminal `demo`,
//! random cashier and operator tokens printed on the console, and the CA fingerprint to check.
//! SIGHUP re-reads the configuration file (see [`crate::agent::reload`]); the demo has none.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::agent::reload::ReloadHandle;
use crate::agent::{Agent, AgentError, Options};
use crate::config::{Config, Secret};
use crate::sim::{Behaviour, Simulator};

/// Arguments of `serve`.
#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// Configuration file (default `./caisse-ap-relay.toml`; none → the demo).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Runs `serve`: exit 2 on a bad configuration or receipt key, 1 when the agent cannot start.
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
    match runtime.block_on(serve(located)) {
        Ok(()) => ExitCode::SUCCESS,
        // Configuration-like: the operator must fix a named file.
        Err(err)
            if matches!(
                err.downcast_ref(),
                Some(AgentError::Receipt(_) | AgentError::Webhook(_))
            ) =>
        {
            eprintln!("{err}");
            ExitCode::from(2)
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(located: Option<(PathBuf, Config)>) -> anyhow::Result<()> {
    // First: SIGHUP's and SIGTERM's default actions would end the process.
    let hangups = Hangups::listen();
    let stop = shutdown_signal();
    raise_fd_limit();
    let (file, config, demo) = match located {
        Some((file, config)) => (Some(file), config, None),
        None => {
            let (config, demo) = start_demo().await?;
            (None, config, Some(demo))
        }
    };
    let listen = config.server.listen;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let agent = Agent::start(&config, listener, options()).await?;
    let addr = agent.local_addr()?;
    println!("listening on https://{addr}/");
    if let Some(onboarding) = agent.onboarding_addr() {
        println!("onboarding on http://{onboarding}/");
    }
    let ca = config.tls.dir.join("ca.pem");
    match &demo {
        Some(demo) => print_demo_banner(&agent, addr.port(), demo, &ca),
        None => print_banner(&agent, addr.port()),
    }
    let reloads = reload_on_hangup(hangups, agent.reload_handle(), file);
    tokio::select! {
        () = agent.serve(stop) => {}
        never = reloads => match never {},
    }
    drop(demo);
    Ok(())
}

/// The agent's options: the defaults, but no probe at start under the tests' hook.
fn options() -> Options {
    let mut options = Options::default();
    options.engine.probe_at_start = !no_start_probe();
    options
}

/// Whether the tests' hook [`NO_START_PROBE_VAR`](crate::engine::probe::NO_START_PROBE_VAR)
/// is set; a release build has no such hook.
#[cfg(debug_assertions)]
fn no_start_probe() -> bool {
    std::env::var_os(crate::engine::probe::NO_START_PROBE_VAR).is_some()
}

#[cfg(not(debug_assertions))]
fn no_start_probe() -> bool {
    false
}

/// Reloads `file` on every SIGHUP, forever; without a file (the demo) says so.
async fn reload_on_hangup(
    mut hangups: Hangups,
    handle: ReloadHandle,
    file: Option<PathBuf>,
) -> std::convert::Infallible {
    loop {
        hangups.next().await;
        match &file {
            // A refused file is logged by `reload_file`; the running configuration stays.
            Some(file) => {
                let _ = handle.reload_file(file).await;
            }
            None => tracing::info!("SIGHUP: nothing to reload, the demo has no configuration file"),
        }
    }
}

/// The SIGHUP stream (never fires where there is none).
struct Hangups {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangups {
    fn listen() -> Hangups {
        #[cfg(unix)]
        {
            let kind = tokio::signal::unix::SignalKind::hangup();
            let signal = tokio::signal::unix::signal(kind)
                .inspect_err(
                    |err| tracing::warn!(%err, "cannot listen for SIGHUP; reload disabled"),
                )
                .ok();
            Hangups { signal }
        }
        #[cfg(not(unix))]
        Hangups {}
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal {
            if signal.recv().await.is_some() {
                return;
            }
        }
        std::future::pending().await
    }
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

/// The demo's in-process terminal and its tills' tokens.
struct Demo {
    _terminal: Simulator,
    token: String,
    operator_token: String,
}

async fn start_demo() -> anyhow::Result<(Config, Demo)> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .context("cannot start the demo terminal")?;
    let terminal = Simulator::spawn(listener, Behaviour::demo());
    let token = random_token()?;
    let operator_token = random_token()?;
    let config = Config::demo(
        terminal.addr().to_string(),
        Secret(token.clone()),
        Secret(operator_token.clone()),
    );
    let demo = Demo {
        _terminal: terminal,
        token,
        operator_token,
    };
    Ok((config, demo))
}

fn random_token() -> anyhow::Result<String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("no system randomness for the demo token"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn print_demo_banner(agent: &Agent, port: u16, demo: &Demo, ca: &std::path::Path) {
    let fingerprint = agent.certificates().fingerprint().unwrap_or_default();
    println!("demo mode: no configuration file found");
    println!("  open        https://localhost:{port}/");
    println!("  till token  {}", demo.token);
    println!(
        "  operator    {}  (status page: https://localhost:{port}/status)",
        demo.operator_token
    );
    println!("  CA SHA-256  {fingerprint}");
    println!(
        "Your browser will warn about the certificate: trust {} (README → Certificates), \
         or proceed past the warning for this local demo.",
        ca.display()
    );
}

/// What a shop needs at start (README): the CA fingerprint to compare on each till, the
/// onboarding page's URL and the POS page's.
fn print_banner(agent: &Agent, port: u16) {
    if let Some(fingerprint) = agent.certificates().fingerprint() {
        println!("  CA SHA-256  {fingerprint}");
    }
    if let Some(onboarding) = agent.onboarding_addr() {
        println!("  onboarding  http://{}/", url_host(onboarding));
    }
    println!(
        "  POS page    https://localhost:{port}/ (from another machine: https://AGENT:{port}/)"
    );
}

/// `addr` as a URL host: an unspecified address (`0.0.0.0`, `::`) becomes this host's name.
fn url_host(addr: std::net::SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        let names = crate::certs::HostNames::detect();
        let host = Some(names.hostname()).filter(|h| !h.is_empty());
        return format!("{}:{}", host.unwrap_or("localhost"), addr.port());
    }
    addr.to_string()
}

/// Resolves on Ctrl-C or SIGTERM. SIGTERM is caught from the call on, not from the first
/// poll, so a stop sent as soon as the banner is printed ends the agent gracefully instead of
/// by the signal's default action.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        #[cfg(unix)]
        let terminate = async move {
            match terminate {
                Some(mut signal) => {
                    signal.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate => {}
        }
    }
}

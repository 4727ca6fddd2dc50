//! `caisse-ap-relay simulate`: a Caisse-AP terminal simulator on raw TCP.
//!
//! Stdout is machine-readable for scripts and tests: the first line is
//! `listening on ADDR` (the real port when `--listen` asks for port 0), then one
//! `request FRAME` line per request received. Runs until Ctrl-C.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::sim::{Behaviour, Fault, Outcome, Simulator};

/// Arguments of `simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Address to listen on; port 0 picks a free port (printed on the first line).
    #[arg(long, default_value = "127.0.0.1:8888")]
    pub listen: String,
    /// Pause before answering, e.g. `2s` (default 0, or 1.5s with `--demo`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub delay: Option<Duration>,
    /// Answer: approved, declined:AF, cb-contactless, amex, partial:AMOUNT (minor units), full-pan.
    #[arg(long, default_value = "approved")]
    pub outcome: Outcome,
    /// Misbehaviour: split, keep-open, garbage, wrong-echo, close, hang, slow-accept, reset.
    #[arg(long)]
    pub fault: Option<Fault>,
    /// The demo terminal: the amount's cents pick the outcome (,91 to ,97; see the docs).
    #[arg(long)]
    pub demo: bool,
}

impl SimulateArgs {
    fn behaviour(&self) -> Behaviour {
        let base = if self.demo {
            Behaviour::demo()
        } else {
            Behaviour::default()
        };
        Behaviour {
            outcome: self.outcome.clone(),
            fault: self.fault,
            delay: self.delay.unwrap_or(base.delay),
            ..base
        }
    }
}

/// Runs `simulate`.
pub fn run(args: SimulateArgs) -> ExitCode {
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .and_then(|runtime| runtime.block_on(simulate(args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let sim = Simulator::spawn(listener, args.behaviour());
    println!("listening on {}", sim.addr());
    tracing::info!(addr = %sim.addr(), "simulator listening");
    let mut printed = 0;
    loop {
        tokio::select! {
            signal = tokio::signal::ctrl_c() => return signal.context("cannot wait for Ctrl-C"),
            () = sim.wait_requests(printed + 1) => {
                for frame in &sim.requests()[printed..] {
                    println!("request {frame}");
                    printed += 1;
                }
            }
        }
    }
}

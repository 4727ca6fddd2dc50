//! The benchmark suite behind `caisse-ap-relay bench`: the agent runs as a separate process
//! (`serve` with a generated configuration) in front of zero-delay simulated terminals that
//! live in the bench's own process, and the bench measures it from outside.
//!
//! Phases, in order: a first start that creates the certificates; a second start, timed to
//! the first completed TLS handshake; idle RSS; RSS with many idle clients ([`idle`]); added
//! latency against a direct TCP baseline ([`latency`]); throughput with many tills
//! ([`throughput`]), with terminals keeping the socket open, then closing it after
//! answering; then, agent stopped, the cross-checks against the journal and the
//! simulators; last, receipts and webhooks on three more agents ([`webhooks`]). [`report`]
//! prints the figures. What is measured where, and the limits found,
//! are written up in BENCHMARKS.md. Nothing here reaches beyond loopback.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::time::Duration;

use thiserror::Error;

use crate::engine::journal::Journal;
use crate::engine::record::{Record, State};
use crate::sim::{Behaviour, Fault, Simulator};

mod client;
mod idle;
mod journal;
mod latency;
mod process;
mod report;
mod setup;
mod stats;
mod throughput;
mod webhooks;

use client::{ClientError, Tls};
use process::AgentProcess;
pub use report::Figures;
use report::{Checks, Cpu};
use setup::Workdir;

/// What a bench run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Plan {
    /// Added-latency samples per path.
    pub latency_samples: usize,
    /// Latency lanes run at once (one terminal and one till each).
    pub lanes: usize,
    /// Tills (and terminals) in the throughput run.
    pub tills: usize,
    /// Length of the throughput run.
    pub duration: Duration,
    /// Idle WebSocket clients.
    pub idle_clients: usize,
    /// Appends in the standalone journal measurement.
    pub journal_appends: usize,
}

impl Plan {
    /// The figures: 2,000 latency samples, 200 × 200 for 30 s, 10,000 idle clients.
    pub fn full() -> Plan {
        Plan {
            latency_samples: 2000,
            lanes: 4,
            tills: 200,
            duration: Duration::from_secs(30),
            idle_clients: 10_000,
            journal_appends: 1000,
        }
    }

    /// A smoke run that finishes in well under a minute.
    pub fn quick() -> Plan {
        Plan {
            latency_samples: 40,
            lanes: 2,
            tills: 20,
            duration: Duration::from_secs(5),
            idle_clients: 500,
            journal_appends: 100,
        }
    }

    /// File descriptors the bench process needs: clients, simulators and their sockets.
    fn descriptors(&self) -> u64 {
        (self.idle_clients + 4 * self.tills.max(self.lanes) + 256) as u64
    }
}

/// Why the bench could not finish.
#[derive(Debug, Error)]
pub enum BenchError {
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: io::Error,
    },
    /// The agent process misbehaved (did not start, stop, or answer).
    #[error("{0}")]
    Agent(String),
    /// A client step failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A result the bench relies on was wrong (a payment not approved, a duplicate).
    #[error("check failed: {0}")]
    Check(String),
}

fn io_error(what: &str) -> impl FnOnce(io::Error) -> BenchError + '_ {
    move |source| BenchError::Io {
        what: what.to_owned(),
        source,
    }
}

/// Runs `plan` against the agent binary `exe` (normally `std::env::current_exe()`).
pub async fn run(plan: Plan, exe: &Path) -> Result<Figures, BenchError> {
    raise_nofile(plan.descriptors())?;
    let work = Workdir::create().map_err(io_error("creating the bench directory"))?;
    let sims = setup::spawn_terminals(plan.tills.max(plan.lanes))
        .await
        .map_err(io_error("starting the simulated terminals"))?;
    let text = setup::config_text(&work, &sims, plan.tills, plan.lanes);
    std::fs::write(work.config_file(), text).map_err(io_error("writing the configuration"))?;
    let scratch = work.path().join("journal-alone");
    let journal_alone = journal::run(&scratch, plan.journal_appends).await?;
    let log = work.path().join("agent.log");
    let first = AgentProcess::spawn(exe, &work.config_file(), &log).await?;
    let first_start = first.started();
    first.stop().await?;
    let ca = std::fs::read_to_string(work.tls_dir().join("ca.pem"))
        .map_err(io_error("reading the agent's CA"))?;
    let tls = Tls::trusting(&ca)?;
    let agent = AgentProcess::spawn(exe, &work.config_file(), &log).await?;
    let mut figures = Figures {
        plan,
        journal_alone,
        first_start,
        start: agent.ready(&tls).await?,
        idle_rss_kib: agent.rss_kib()?,
        ..Figures::default()
    };
    measure(&mut figures, &agent, &tls, &sims).await?;
    agent.stop().await?;
    let journal = Journal::read(&work.data_dir()).map_err(io_error("reading the journal"))?;
    figures.checks = check(&figures, &journal, &sims);
    figures.webhooks = webhooks::run(&plan, exe).await?;
    Ok(figures)
}

/// The phases that need the running agent: idle clients, latency, throughput.
async fn measure(
    figures: &mut Figures,
    agent: &AgentProcess,
    tls: &Tls,
    sims: &[Simulator],
) -> Result<(), BenchError> {
    let plan = figures.plan;
    let clients = idle::open(agent.addr(), tls, plan.idle_clients).await?;
    figures.clients_rss_kib = agent.rss_kib()?;
    clients.close().await;
    let lanes = &sims[..plan.lanes];
    answering(lanes, Some(Fault::AnswerClose));
    figures.latency = latency::run(agent.addr(), tls, lanes, plan.latency_samples).await?;
    let sessions = throughput::open(agent.addr(), tls, plan.tills).await?;
    answering(sims, None);
    let before = (agent.cpu_time()?, process::own_cpu_time()?);
    let (keep_open, sessions) = throughput::run(sessions, plan.duration, "open").await?;
    figures.throughput = keep_open;
    figures.cpu = cpu_since(agent, before)?;
    answering(sims, Some(Fault::AnswerClose));
    let before = (agent.cpu_time()?, process::own_cpu_time()?);
    figures.throughput_close = throughput::run(sessions, plan.duration, "close").await?.0;
    figures.cpu_close = cpu_since(agent, before)?;
    Ok(())
}

/// Makes `sims` approve at once, with `fault` (keep the socket open when `None`).
pub(super) fn answering(sims: &[Simulator], fault: Option<Fault>) {
    for sim in sims {
        sim.set_behaviour(Behaviour::with_fault(fault));
    }
}

/// CPU time of the agent and the bench since `before`.
fn cpu_since(agent: &AgentProcess, before: (Duration, Duration)) -> Result<Cpu, BenchError> {
    Ok(Cpu {
        agent: agent.cpu_time()?.saturating_sub(before.0),
        bench: process::own_cpu_time()?.saturating_sub(before.1),
    })
}

/// Compares what the tills saw with the journal and with what the terminals received.
fn check(figures: &Figures, journal: &[Record], sims: &[Simulator]) -> Checks {
    let durable: HashMap<&str, State> = journal.iter().map(|r| (r.id.as_str(), r.state)).collect();
    let latency = &figures.latency;
    let seen = latency
        .relayed_ids
        .iter()
        .map(|id| (id.as_str(), State::Approved))
        .chain(
            [&figures.throughput, &figures.throughput_close]
                .into_iter()
                .flat_map(|run| run.finals.iter())
                .map(|(id, s)| (id.as_str(), *s)),
        );
    let mut finals = 0;
    let mut mismatches = 0;
    for (id, state) in seen {
        finals += 1;
        mismatches += u64::from(durable.get(id) != Some(&state));
    }
    let payments = |sim: &Simulator| {
        sim.requests()
            .iter()
            .filter(|f| !is_identification(f))
            .count()
    };
    Checks {
        client_finals: finals,
        journal_finals: journal.iter().filter(|r| r.state.is_final()).count() as u64,
        journal_mismatches: mismatches,
        terminal_requests: sims.iter().map(payments).sum::<usize>() as u64,
        expected_requests: finals + latency.direct_count as u64,
    }
}

/// An identification request (the agent's health probe), not a payment.
fn is_identification(frame: &str) -> bool {
    frame.contains("CD001I")
}

/// Raises this process's soft RLIMIT_NOFILE to the hard limit when below `needed` (the agent,
/// spawned afterwards, inherits it); fails when even the hard limit is too low.
fn raise_nofile(needed: u64) -> Result<(), BenchError> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current.is_none_or(|soft| soft >= needed) {
        return Ok(());
    }
    if limit.maximum.is_some_and(|hard| hard < needed) {
        return Err(BenchError::Check(format!(
            "RLIMIT_NOFILE hard limit {:?} is below the {needed} descriptors needed; raise it (ulimit -Hn)",
            limit.maximum
        )));
    }
    limit.current = limit.maximum;
    setrlimit(Resource::Nofile, limit).map_err(|err| io_error("raising RLIMIT_NOFILE")(err.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_are_not_payments() {
        assert!(is_identification("CZ0040300CJ012012345678901CA00201CD001I"));
        assert!(!is_identification(
            "CZ0040300CJ012012345678901CA00201CB0042500CD0010CE003978"
        ));
    }

    #[test]
    fn the_quick_plan_is_smaller_everywhere() {
        let (full, quick) = (Plan::full(), Plan::quick());
        assert!(quick.latency_samples < full.latency_samples);
        assert!(quick.tills < full.tills && quick.idle_clients < full.idle_clients);
        assert!(quick.duration < full.duration);
        assert!(quick.lanes <= quick.tills);
    }

    #[test]
    fn a_low_need_leaves_the_limit_alone() {
        raise_nofile(16).expect("16 descriptors are always allowed");
    }
}

//! Throughput: every till loops paying on its own terminal with fresh ids for a fixed time,
//! all starting together. Each `pay` must end in exactly one final `transaction`; a final
//! that answers no open `pay` is a duplicate; a `pay` without a final (error, timeout,
//! closed socket) is lost and stops that till.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tokio::sync::Barrier;

use super::client::{Session, Tls};
use super::latency::AMOUNT;
use super::setup::{terminal_name, Till};
use super::stats::Summary;
use super::BenchError;
use crate::engine::record::State;

/// What the throughput run saw from the tills' side.
#[derive(Debug, Clone, Default)]
pub struct Throughput {
    /// `pay` messages sent.
    pub pays: u64,
    /// Every pay that got its final state: id and state.
    pub finals: Vec<(String, State)>,
    /// Final messages that answered no open `pay`.
    pub duplicates: u64,
    /// Pays without a final state, with why (first few).
    pub failures: Vec<String>,
    /// Pays without a final state.
    pub lost: u64,
    /// `pay` refused with `terminal_busy` and sent again.
    pub busy_refusals: u64,
    /// Time from the common start to the last till's end.
    pub elapsed: Duration,
    /// Pay → final latency.
    pub latency: Summary,
}

impl Throughput {
    /// Final states per second.
    pub fn tps(&self) -> f64 {
        self.finals.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// What one till did.
#[derive(Default)]
struct TillRun {
    pays: u64,
    finals: Vec<(String, State)>,
    latencies: Vec<Duration>,
    duplicates: u64,
    busy_refusals: u64,
    failure: Option<String>,
}

/// Runs `tills` tills for `duration`; opens every session first, then starts them together.
pub async fn run(
    agent: SocketAddr,
    tls: &Tls,
    tills: usize,
    duration: Duration,
) -> Result<Throughput, BenchError> {
    let barrier = Arc::new(Barrier::new(tills + 1));
    let mut tasks = Vec::with_capacity(tills);
    for index in 0..tills {
        let token = Till::throughput(index).token;
        let session = Session::open(tls, agent, IpAddr::V4(Ipv4Addr::LOCALHOST), &token).await?;
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            till(session, index, Instant::now() + duration).await
        }));
    }
    barrier.wait().await;
    let started = Instant::now();
    let runs = join_all(tasks).await;
    let elapsed = started.elapsed();
    let mut total = Throughput {
        elapsed,
        ..Throughput::default()
    };
    let mut latencies = Vec::new();
    for run in runs {
        let run = run.map_err(|err| BenchError::Agent(format!("till task failed: {err}")))?;
        total.pays += run.pays;
        total.duplicates += run.duplicates;
        total.busy_refusals += run.busy_refusals;
        total.lost += run.pays - run.finals.len() as u64;
        total.finals.extend(run.finals);
        latencies.extend(run.latencies);
        total.failures.extend(run.failure);
    }
    total.latency = Summary::of(latencies);
    Ok(total)
}

/// One till's loop until `deadline`, then a barrier round trip to catch late duplicates.
async fn till(mut session: Session, index: usize, deadline: Instant) -> TillRun {
    let name = Till::throughput(index).name;
    let terminal = terminal_name(index);
    let mut run = TillRun::default();
    while Instant::now() < deadline {
        let id = format!("{name}-{}", run.pays);
        run.pays += 1;
        let started = Instant::now();
        match session.pay(&id, &terminal, AMOUNT).await {
            Ok(paid) => {
                run.latencies.push(started.elapsed());
                run.finals.push((id, paid.state));
            }
            Err(err) => {
                run.failure = Some(format!("{id}: {err}"));
                break;
            }
        }
    }
    if run.failure.is_none() {
        if let Err(err) = session.barrier().await {
            run.failure = Some(format!("{name} barrier: {err}"));
        }
    }
    run.duplicates = session.stray_finals;
    run.busy_refusals = session.busy_refusals;
    run
}

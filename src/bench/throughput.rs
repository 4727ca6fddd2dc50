//! Throughput: every till loops paying on its own terminal with fresh ids for a fixed time,
//! all starting together. Each `pay` must end in exactly one final `transaction`; a final
//! that answers no open `pay` is a duplicate; a `pay` without a final (error, timeout,
//! closed socket) is lost and stops that till. The sessions are opened once ([`open`]) and
//! kept across runs (terminals keeping the socket open, then closing it after answering),
//! so that no `welcome` replays an earlier run's results.

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

/// Opens the sessions of `tills` tills.
pub async fn open(agent: SocketAddr, tls: &Tls, tills: usize) -> Result<Vec<Session>, BenchError> {
    let mut sessions = Vec::with_capacity(tills);
    for index in 0..tills {
        let token = Till::throughput(index).token;
        let source = IpAddr::V4(Ipv4Addr::LOCALHOST);
        sessions.push(Session::open(tls, agent, source, &token).await?);
    }
    Ok(sessions)
}

/// Runs one till per session for `duration`, all starting together; `run` names the ids.
/// Returns the figures and the sessions, for the next run.
pub async fn run(
    sessions: Vec<Session>,
    duration: Duration,
    run: &str,
) -> Result<(Throughput, Vec<Session>), BenchError> {
    let barrier = Arc::new(Barrier::new(sessions.len() + 1));
    let mut tasks = Vec::with_capacity(sessions.len());
    for (index, session) in sessions.into_iter().enumerate() {
        let barrier = barrier.clone();
        let run = run.to_owned();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            till(session, index, &run, Instant::now() + duration).await
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
    let mut sessions = Vec::with_capacity(runs.len());
    for run in runs {
        let (run, session) =
            run.map_err(|err| BenchError::Agent(format!("till task failed: {err}")))?;
        sessions.push(session);
        total.pays += run.pays;
        total.duplicates += run.duplicates;
        total.busy_refusals += run.busy_refusals;
        total.lost += run.pays - run.finals.len() as u64;
        total.finals.extend(run.finals);
        latencies.extend(run.latencies);
        total.failures.extend(run.failure);
    }
    total.latency = Summary::of(latencies);
    Ok((total, sessions))
}

/// One till's loop until `deadline`, then a barrier round trip to catch late duplicates.
async fn till(
    mut session: Session,
    index: usize,
    label: &str,
    deadline: Instant,
) -> (TillRun, Session) {
    let name = Till::throughput(index).name;
    let terminal = terminal_name(index);
    let mut run = TillRun::default();
    let (strays, refusals) = (session.stray_finals, session.busy_refusals);
    while Instant::now() < deadline {
        let id = format!("{name}-{label}-{}", run.pays);
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
    run.duplicates = session.stray_finals - strays;
    run.busy_refusals = session.busy_refusals - refusals;
    (run, session)
}

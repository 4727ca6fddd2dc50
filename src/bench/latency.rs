//! Added latency: the same payment straight to a simulator over TCP (the driver with
//! [`NoHooks`], as `pay` does) and through the agent (`pay` → final `transaction`),
//! interleaved, in several lanes at once (one terminal and one till each).
//!
//! The lanes' simulators close the connection right after answering (`answer-close`), so
//! neither path waits a drain: the direct one ends at the close, the agent announces the
//! result when the answer decides it (api.md §7.1). The difference is the agent's own cost:
//! TLS, WebSocket, JSON, the two journal fsyncs on the path (`accepted`, `connecting` and
//! `sent` together once the TCP connect is done, then the final state) and scheduling. Answer → till is measured from the
//! simulator's last answer byte to the final record's arrival at the till.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use futures_util::future::try_join_all;

use super::client::{Marks, Session, Tls};
use super::setup::{terminal_name, Till};
use super::stats::Summary;
use super::BenchError;
use crate::engine::record::State;
use crate::protocol::{Action, Currency, Method, PaymentRequest};
use crate::sim::Simulator;
use crate::terminal::{self, NoHooks, Outcome, Timeouts};

/// The amount every bench payment asks for (25.00 EUR, the spec's example).
pub const AMOUNT: u64 = 2500;

/// Latency of both paths, and what was paid.
#[derive(Debug, Clone, Default)]
pub struct Latency {
    /// Straight to the simulator.
    pub direct: Summary,
    /// Through the agent.
    pub relayed: Summary,
    /// Payments sent straight to a simulator, warm-ups included.
    pub direct_count: usize,
    /// Ids paid through the agent, warm-ups included (all approved).
    pub relayed_ids: Vec<String>,
    /// `pay` refused with `terminal_busy` and sent again.
    pub busy_refusals: u64,
    /// When `accepted`, `connecting` and `sent` reached the till, from `pay`.
    pub marks: [Summary; 3],
    /// From the terminal's last answer byte to the final record at the till.
    pub answer_to_till: Summary,
}

/// The raw samples of one lane or of several runs merged, before [`Samples::summarise`].
#[derive(Debug, Default)]
pub struct Samples {
    direct: Vec<Duration>,
    relayed: Vec<Duration>,
    answer_to_till: Vec<Duration>,
    marks: Vec<Marks>,
    ids: Vec<String>,
    busy_refusals: u64,
}

/// Percentiles of each intermediate mark (missing marks left out).
fn summarise(marks: &[Marks]) -> [Summary; 3] {
    let of =
        |pick: fn(&Marks) -> Option<Duration>| Summary::of(marks.iter().filter_map(pick).collect());
    [of(|m| m.accepted), of(|m| m.connecting), of(|m| m.sent)]
}

impl Samples {
    /// Adds `other`'s samples to these.
    pub fn merge(&mut self, other: Samples) {
        self.direct.extend(other.direct);
        self.relayed.extend(other.relayed);
        self.answer_to_till.extend(other.answer_to_till);
        self.marks.extend(other.marks);
        self.ids.extend(other.ids);
        self.busy_refusals += other.busy_refusals;
    }

    /// Payments made through the agent, warm-ups included.
    pub fn paid(&self) -> usize {
        self.ids.len()
    }

    /// The percentiles of both paths and the ids paid.
    pub fn summarise(self) -> Latency {
        Latency {
            direct: Summary::of(self.direct),
            relayed: Summary::of(self.relayed),
            direct_count: self.ids.len(),
            relayed_ids: self.ids,
            busy_refusals: self.busy_refusals,
            marks: summarise(&self.marks),
            answer_to_till: Summary::of(self.answer_to_till),
        }
    }
}

/// Samples each path `samples` times in total, spread over `sims.len()` lanes.
pub async fn run(
    agent: SocketAddr,
    tls: &Tls,
    sims: &[Simulator],
    samples: usize,
) -> Result<Latency, BenchError> {
    Ok(sample(agent, tls, sims, samples, 0).await?.summarise())
}

/// The raw samples of [`run`]; `round` tells the payment ids of successive calls against
/// the same agent apart.
pub async fn sample(
    agent: SocketAddr,
    tls: &Tls,
    sims: &[Simulator],
    samples: usize,
    round: usize,
) -> Result<Samples, BenchError> {
    let per_lane = samples.div_ceil(sims.len().max(1));
    let lanes = sims
        .iter()
        .enumerate()
        .map(|(i, sim)| lane(agent, tls, i, sim, per_lane, round));
    let mut all = Samples::default();
    for lane in try_join_all(lanes).await? {
        all.merge(lane);
    }
    Ok(all)
}

/// One lane: a warm-up pair, then `count` pairs, alternating which path goes first.
async fn lane(
    agent: SocketAddr,
    tls: &Tls,
    index: usize,
    sim: &Simulator,
    count: usize,
    round: usize,
) -> Result<Samples, BenchError> {
    let terminal = sim.addr();
    let till = Till::latency(index);
    let source = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut session = Session::open(tls, agent, source, &till.token).await?;
    // After `welcome` the agent sends the till's recent records (an earlier round's
    // finals): the barrier takes them, and they answer no `pay` of this round.
    session.barrier().await?;
    session.stray_finals = 0;
    let name = terminal_name(index);
    let mut lane = Samples::default();
    for n in 0..=count {
        let id = format!("{}-{round}-{n}", till.name);
        lane.ids.push(id.clone());
        let (d, r) = if n % 2 == 0 {
            let d = direct_once(terminal).await?;
            (d, relayed_once(&mut session, &id, &name, sim).await?)
        } else {
            let r = relayed_once(&mut session, &id, &name, sim).await?;
            (direct_once(terminal).await?, r)
        };
        if n > 0 {
            lane.direct.push(d);
            lane.relayed.push(r.0);
            lane.marks.push(r.1);
            lane.answer_to_till.push(r.2);
        }
    }
    session.barrier().await?;
    if session.stray_finals > 0 {
        return Err(BenchError::Check(format!(
            "{} duplicate finals",
            session.stray_finals
        )));
    }
    lane.busy_refusals = session.busy_refusals;
    Ok(lane)
}

/// The bench's payment request.
pub fn request() -> PaymentRequest {
    let eur = Currency::parse("EUR").expect("EUR is in the table");
    PaymentRequest::new(AMOUNT, eur, Action::Debit, Method::Card, "01").expect("valid request")
}

async fn direct_once(terminal: SocketAddr) -> Result<Duration, BenchError> {
    let started = Instant::now();
    let outcome = terminal::transact(
        &terminal.to_string(),
        &request(),
        &Timeouts::default(),
        &mut NoHooks,
    )
    .await;
    match outcome {
        Outcome::Approved(_) => Ok(started.elapsed()),
        other => Err(BenchError::Check(format!(
            "direct payment not approved: {other:?}"
        ))),
    }
}

/// One payment through the agent: pay → final, the marks, and answer → till.
async fn relayed_once(
    session: &mut Session,
    id: &str,
    terminal: &str,
    sim: &Simulator,
) -> Result<(Duration, Marks, Duration), BenchError> {
    let started = Instant::now();
    let paid = session.pay(id, terminal, AMOUNT).await?;
    let answered = sim.last_answer_at().unwrap_or(started);
    let answer_to_till = paid.arrived.saturating_duration_since(answered);
    match paid.state {
        State::Approved => Ok((started.elapsed(), paid.marks, answer_to_till)),
        other => Err(BenchError::Check(format!("payment {id} ended {other:?}"))),
    }
}

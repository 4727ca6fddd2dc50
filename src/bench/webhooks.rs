//! Receipts and webhooks (contract §8–9): what signing a receipt costs, how long a final
//! result takes to reach a webhook endpoint, and what webhooks cost a payment.
//!
//! Signing is timed in the bench's process with the agent's own code. Then three more
//! agents run at once, each with its own directory and simulators (so the main run's
//! cross-checks stay exact) and the same configuration but for its webhooks ([`Hooks`]):
//! none; `healthy` (`events = "final"`, a loopback endpoint of the bench answering 200 at
//! once); `healthy` plus `stuck` (`events = "all"`, an endpoint that reads each request and
//! never answers). The latency run is split into [`ROUNDS`] rounds; in each, every agent is
//! measured in turn (the order rotating), the two others frozen (SIGSTOP) so that neither
//! their background work nor the machine's noise of that moment falls on one variant only.
//! Each variant's added latency is compared with the no-webhook one of the same phase, and
//! so is its agent's CPU time per payment (counted during its turns, which last until its
//! healthy endpoint got the turn's finals). The delivery delay is the healthy endpoint's
//! arrival time minus the final record's `updated_at` (the agent's clock is the same
//! machine's; `updated_at` has millisecond resolution), beside the hanging endpoint; the
//! endpoints only note the arrival and keep the body, parsed once the run is over.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::client::Tls;
use super::latency::{self, Latency, Samples};
use super::process::AgentProcess;
use super::setup::{self, Workdir};
use super::stats::{ms, Summary};
use super::{io_error, BenchError, Plan};
use crate::engine::record::{now_rfc3339, parse_rfc3339, Record, State, TxResult};
use crate::protocol::{Action, Method};
use crate::receipt::Receipts;
use crate::sim::{Fault, Simulator};

/// A Standard Webhooks secret for the bench's endpoints.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// How long the bench waits for the last deliveries after the last payment.
const SETTLE: Duration = Duration::from_secs(10);
/// The longest a turn waits for its last deliveries.
const TURN_SETTLE: Duration = Duration::from_secs(2);
/// Payments per lane in each variant's turn of a round: short turns, so that a burst of
/// the machine's noise falls on every variant alike.
const PER_TURN: usize = 4;

/// What the receipt and webhook phase measured.
#[derive(Debug, Clone, Default)]
pub struct WebhookFigures {
    /// Sealing one final record (claims, JSON, Ed25519, base64url).
    pub sign: Summary,
    /// Final record's `updated_at` → `transaction.final` received by the healthy endpoint
    /// of the agent that also has the hanging one.
    pub delivery: Summary,
    /// Finals paid through the agents with a healthy endpoint.
    pub paid: usize,
    /// Finals their healthy endpoints received.
    pub delivered: usize,
    /// The agent without webhooks (this phase's baseline).
    pub nohooks: Run,
    /// The agent with the healthy endpoint only.
    pub healthy: Run,
    /// The agent with the healthy and the hanging endpoints.
    pub hanging: Run,
}

impl WebhookFigures {
    /// Each variant's run, by the name its bench keys use.
    pub fn variants(&self) -> [(&'static str, &Run); 3] {
        [
            ("nohooks", &self.nohooks),
            ("healthy", &self.healthy),
            ("hanging", &self.hanging),
        ]
    }
}

/// What one variant's agent measured.
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// Its latency run.
    pub latency: Latency,
    /// The agent's CPU time (user + system) during its turns: frozen otherwise, so this is
    /// all it used for those payments, their webhooks and whatever else it did meanwhile.
    pub agent_cpu: Duration,
}

impl Run {
    /// The agent's CPU time per payment, in ms.
    pub fn cpu_per_payment_ms(&self) -> f64 {
        let paid = self.latency.relayed_ids.len().max(1);
        ms(self.agent_cpu) / paid as f64
    }
}

/// The webhooks of one of the phase's agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hooks {
    None,
    Healthy,
    HealthyAndHanging,
}

/// One agent of the phase, what it needs and what it measured.
struct Variant {
    agent: AgentProcess,
    tls: Tls,
    sims: Vec<Simulator>,
    healthy: Option<Endpoint>,
    _stuck: Option<Endpoint>,
    _work: Workdir,
    samples: Samples,
    cpu: Duration,
}

impl Variant {
    async fn start(plan: &Plan, exe: &Path, hooks: Hooks) -> Result<Variant, BenchError> {
        let work = Workdir::create().map_err(io_error("creating the webhook bench directory"))?;
        let sims = setup::spawn_terminals(plan.lanes)
            .await
            .map_err(io_error("starting the webhook bench's terminals"))?;
        let mut text = setup::config_text(&work, &sims, 0, plan.lanes);
        let healthy = match hooks {
            Hooks::None => None,
            _ => Some(Endpoint::spawn(true).await?),
        };
        let stuck = match hooks {
            Hooks::HealthyAndHanging => Some(Endpoint::spawn(false).await?),
            _ => None,
        };
        if let Some(healthy) = &healthy {
            text += &webhook("healthy", healthy.addr, "final");
        }
        if let Some(stuck) = &stuck {
            text += &webhook("stuck", stuck.addr, "all");
        }
        std::fs::write(work.config_file(), text).map_err(io_error("writing the configuration"))?;
        let log = work.path().join("agent.log");
        let agent = AgentProcess::spawn(exe, &work.config_file(), &log).await?;
        let ca = std::fs::read_to_string(work.tls_dir().join("ca.pem"))
            .map_err(io_error("reading the agent's CA"))?;
        let tls = Tls::trusting(&ca)?;
        agent.ready(&tls).await?;
        // As in the main latency run: terminals close after answering, so the direct `pay`
        // ends at the decision too (a kept-open socket would add its 300 ms drain to it only).
        super::answering(&sims, Some(Fault::AnswerClose));
        Ok(Variant {
            agent,
            tls,
            sims,
            healthy,
            _stuck: stuck,
            _work: work,
            samples: Samples::default(),
            cpu: Duration::ZERO,
        })
    }

    /// One turn: `samples` payments with the agent thawed, its CPU time counted.
    /// The agent stays thawed until its healthy endpoint got the turn's finals (at most
    /// [`TURN_SETTLE`]), so no delivery waits for the next turn.
    async fn turn(&mut self, samples: usize, round: usize) -> Result<(), BenchError> {
        let before = self.agent.cpu_time()?;
        self.agent.freeze(false);
        let measured = latency::sample(self.agent.addr(), &self.tls, &self.sims, samples, round);
        let measured = measured.await;
        if let (Some(healthy), Ok(measured)) = (&self.healthy, &measured) {
            let owed = self.samples.paid() + measured.paid();
            let deadline = Instant::now() + TURN_SETTLE;
            while healthy.count() < owed && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        self.agent.freeze(true);
        self.cpu += self.agent.cpu_time()?.saturating_sub(before);
        self.samples.merge(measured?);
        Ok(())
    }

    /// Finals paid, and the healthy endpoint's deliveries (when it has one).
    fn deliveries(&self) -> (usize, Vec<Duration>) {
        let delays = self.healthy.as_ref().map(Endpoint::delays);
        (self.samples.paid(), delays.unwrap_or_default())
    }
}

/// Runs the phase with `exe`, `plan.journal_appends` signatures and `plan.latency_samples`
/// payments per variant.
pub async fn run(plan: &Plan, exe: &Path) -> Result<WebhookFigures, BenchError> {
    let work = Workdir::create().map_err(io_error("creating the webhook bench directory"))?;
    let sign = sign_cost(&work.path().join("receipt-alone"), plan.journal_appends)?;
    let mut variants = Vec::new();
    for hooks in [Hooks::None, Hooks::Healthy, Hooks::HealthyAndHanging] {
        let variant = Variant::start(plan, exe, hooks).await?;
        variant.agent.freeze(true);
        variants.push(variant);
    }
    let per_turn = PER_TURN * plan.lanes;
    let rounds = plan.latency_samples.div_ceil(per_turn);
    for round in 0..rounds {
        for turn in 0..variants.len() {
            variants[(round + turn) % 3].turn(per_turn, round).await?;
        }
    }
    for variant in &variants {
        variant.agent.freeze(false);
    }
    let owed: usize = variants.iter().skip(1).map(|v| v.deliveries().0).sum();
    let deadline = Instant::now() + SETTLE;
    let received =
        |variants: &[Variant]| -> usize { variants.iter().map(|v| v.deliveries().1.len()).sum() };
    while received(&variants) < owed && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered = received(&variants);
    let delays = variants[2].deliveries().1;
    let mut runs = Vec::new();
    for variant in variants {
        // The rest of the variant (endpoints, directory) goes once its agent stopped.
        let Variant {
            agent,
            samples,
            cpu,
            ..
        } = variant;
        agent.stop().await?;
        runs.push(Run {
            latency: samples.summarise(),
            agent_cpu: cpu,
        });
    }
    let [nohooks, healthy, hanging] = <[Run; 3]>::try_from(runs)
        .map_err(|_| BenchError::Check("three webhook variants".to_owned()))?;
    Ok(WebhookFigures {
        sign,
        delivered,
        delivery: Summary::of(delays),
        paid: owed,
        nohooks,
        healthy,
        hanging,
    })
}

/// Seals `count` approved records with a fresh key in `dir`, one at a time.
fn sign_cost(dir: &Path, count: usize) -> Result<Summary, BenchError> {
    let receipts =
        Receipts::load_or_create(dir, "bench").map_err(|err| BenchError::Agent(err.to_string()))?;
    let mut samples = Vec::with_capacity(count);
    for seq in 0..count as u64 {
        let mut record = approved(seq);
        let started = Instant::now();
        receipts.seal(&mut record);
        samples.push(started.elapsed());
    }
    Ok(Summary::of(samples))
}

fn approved(seq: u64) -> Record {
    let now = now_rfc3339();
    Record {
        id: format!("receipt-{seq}"),
        till: "till-000".to_owned(),
        terminal: "t000".to_owned(),
        amount: latency::AMOUNT,
        currency: "EUR".to_owned(),
        action: Action::Debit,
        method: Method::Card,
        refund_of: None,
        confirm_duplicate: false,
        state: State::Approved,
        result: Some(TxResult {
            ae: Some("10".to_owned()),
            approved_amount: Some(latency::AMOUNT),
            authorization: Some("123456".to_owned()),
            ..TxResult::default()
        }),
        resolution: None,
        created_at: now.clone(),
        updated_at: now,
        seq,
        receipt: None,
    }
}

fn webhook(name: &str, addr: SocketAddr, events: &str) -> String {
    format!(
        "\n[[webhook]]\nname = \"{name}\"\nurl = \"http://{addr}/hook\"\nsecret = \"{SECRET}\"\nevents = \"{events}\"\n"
    )
}

/// What an endpoint received: when, and the body.
type Received = Arc<Mutex<Vec<(SystemTime, Vec<u8>)>>>;

/// A webhook endpoint in the bench's process: answers 200 (or never), and keeps each
/// request's arrival time and body.
struct Endpoint {
    addr: SocketAddr,
    received: Received,
}

impl Endpoint {
    async fn spawn(answers: bool) -> Result<Endpoint, BenchError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(io_error("binding a webhook endpoint"))?;
        let addr = listener
            .local_addr()
            .map_err(io_error("binding a webhook endpoint"))?;
        let received = Received::default();
        let kept = Arc::clone(&received);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(serve(tcp, answers, Arc::clone(&kept)));
            }
        });
        Ok(Endpoint { addr, received })
    }

    /// Requests received (the healthy endpoint's webhook takes finals only).
    fn count(&self) -> usize {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// The delay of each `transaction.final` received.
    fn delays(&self) -> Vec<Duration> {
        let received = self.received.lock().unwrap_or_else(|e| e.into_inner());
        received
            .iter()
            .filter_map(|(arrived, body)| final_delay(body, *arrived))
            .collect()
    }
}

/// Serves one connection's requests (keep-alive) until the agent closes it.
async fn serve(mut tcp: TcpStream, answers: bool, received: Received) {
    let mut buffer = Vec::new();
    while let Some(body) = next_body(&mut tcp, &mut buffer).await {
        let arrived = SystemTime::now();
        if !answers {
            std::future::pending::<()>().await;
        }
        received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((arrived, body));
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        if tcp.write_all(ok).await.is_err() {
            return;
        }
    }
}

/// The next request's body (read by its `content-length`); `None` when the peer closed.
async fn next_body(tcp: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<Vec<u8>> {
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|value| value.trim().parse().ok())?;
            if buffer.len() >= end + 4 + length {
                let body = buffer[end + 4..end + 4 + length].to_vec();
                buffer.drain(..end + 4 + length);
                return Some(body);
            }
        }
        let mut chunk = [0u8; 8192];
        let n = tcp.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

/// For a `transaction.final` body: arrival minus the record's `updated_at`.
fn final_delay(body: &[u8], arrived: SystemTime) -> Option<Duration> {
    let event: serde_json::Value = serde_json::from_slice(body).ok()?;
    if event["type"] != "transaction.final" {
        return None;
    }
    let updated = parse_rfc3339(event["data"]["updated_at"].as_str()?)?;
    arrived.duration_since(SystemTime::from(updated)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_is_timed_once_per_record() {
        let dir = tempfile::tempdir().unwrap();
        let summary = sign_cost(dir.path(), 5).unwrap();
        assert_eq!(summary.count, 5);
        assert!(summary.p50 > Duration::ZERO);
    }

    #[test]
    fn only_final_deliveries_have_a_delay() {
        let at = SystemTime::from(parse_rfc3339("2026-03-01T10:00:00.500Z").unwrap());
        let final_body =
            br#"{"type":"transaction.final","data":{"updated_at":"2026-03-01T10:00:00.000Z"}}"#;
        assert_eq!(
            final_delay(final_body, at),
            Some(Duration::from_millis(500))
        );
        let update =
            br#"{"type":"transaction.updated","data":{"updated_at":"2026-03-01T10:00:00.000Z"}}"#;
        assert_eq!(final_delay(update, at), None);
    }
}

//! Receipts and webhooks (contract §8–9): what signing a receipt costs, how long a final
//! result takes to reach a webhook endpoint, and whether a hanging endpoint slows payments.
//!
//! Signing is timed in the bench's process with the agent's own code. Then a second agent
//! runs (own directory, own simulators, so the main run's cross-checks stay exact) with two
//! webhooks on loopback endpoints of the bench: `healthy` answers 200 at once, `stuck` reads
//! each request and never answers. The latency run is repeated against it: its added latency
//! is the payment latency with a hanging endpoint, to compare with the main run's. The
//! delivery delay is the endpoint's arrival time minus the final record's `updated_at` (the
//! agent's clock is the same machine's; `updated_at` has millisecond resolution).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::client::Tls;
use super::latency::{self, Latency};
use super::process::AgentProcess;
use super::setup::{self, Workdir};
use super::stats::Summary;
use super::{io_error, BenchError, Plan};
use crate::engine::record::{now_rfc3339, parse_rfc3339, Record, State, TxResult};
use crate::protocol::{Action, Method};
use crate::receipt::Receipts;
use crate::sim::Fault;

/// A Standard Webhooks secret for the bench's endpoints.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// How long the bench waits for the last deliveries after the last payment.
const SETTLE: Duration = Duration::from_secs(10);

/// What the receipt and webhook phase measured.
#[derive(Debug, Clone, Default)]
pub struct WebhookFigures {
    /// Sealing one final record (claims, JSON, Ed25519, base64url).
    pub sign: Summary,
    /// Final record's `updated_at` → `transaction.final` received by the healthy endpoint.
    pub delivery: Summary,
    /// Finals paid / delivered to the healthy endpoint.
    pub paid: usize,
    /// Finals delivered to the healthy endpoint.
    pub delivered: usize,
    /// The latency run repeated with a hanging webhook endpoint.
    pub with_hanging: Latency,
}

/// Runs the phase with `exe`, `plan.journal_appends` signatures and `plan.latency_samples`
/// payments.
pub async fn run(plan: &Plan, exe: &Path) -> Result<WebhookFigures, BenchError> {
    let work = Workdir::create().map_err(io_error("creating the webhook bench directory"))?;
    let sign = sign_cost(&work.path().join("receipt-alone"), plan.journal_appends)?;
    let sims = setup::spawn_terminals(plan.lanes)
        .await
        .map_err(io_error("starting the webhook bench's terminals"))?;
    let healthy = Endpoint::spawn(true).await?;
    let stuck = Endpoint::spawn(false).await?;
    let mut text = setup::config_text(&work, &sims, 0, plan.lanes);
    text += &webhook("healthy", healthy.addr, "final");
    text += &webhook("stuck", stuck.addr, "all");
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
    let with_hanging = latency::run(agent.addr(), &tls, &sims, plan.latency_samples).await?;
    let paid = with_hanging.relayed_ids.len();
    let deadline = Instant::now() + SETTLE;
    while healthy.delays().len() < paid && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    agent.stop().await?;
    let delays = healthy.delays();
    Ok(WebhookFigures {
        sign,
        delivered: delays.len(),
        delivery: Summary::of(delays),
        paid,
        with_hanging,
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

/// A webhook endpoint in the bench's process: answers 200 (or never), and keeps the delay
/// of each `transaction.final` it received.
struct Endpoint {
    addr: SocketAddr,
    delays: Arc<Mutex<Vec<Duration>>>,
}

impl Endpoint {
    async fn spawn(answers: bool) -> Result<Endpoint, BenchError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(io_error("binding a webhook endpoint"))?;
        let addr = listener
            .local_addr()
            .map_err(io_error("binding a webhook endpoint"))?;
        let delays = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&delays);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(serve(tcp, answers, Arc::clone(&kept)));
            }
        });
        Ok(Endpoint { addr, delays })
    }

    fn delays(&self) -> Vec<Duration> {
        self.delays
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Serves one connection's requests (keep-alive) until the agent closes it.
async fn serve(mut tcp: TcpStream, answers: bool, delays: Arc<Mutex<Vec<Duration>>>) {
    let mut buffer = Vec::new();
    while let Some(body) = next_body(&mut tcp, &mut buffer).await {
        let arrived = SystemTime::now();
        if !answers {
            std::future::pending::<()>().await;
        }
        if let Some(delay) = final_delay(&body, arrived) {
            delays.lock().unwrap_or_else(|e| e.into_inner()).push(delay);
        }
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

//! Webhooks (contract §9) against real HTTP endpoints on loopback: delivery signed as the
//! Standard Webhooks specification says (checked with the `standardwebhooks` npm package),
//! a 500 then a success with the same `webhook-id`, an endpoint down across a `kill -9` of
//! the agent, a hanging endpoint while tills pay, and bad configurations refused.

use crate::common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use caisse_ap_relay::config::{Secret, WebhookConfig};
use caisse_ap_relay::sim::Behaviour;
use common::binary::{write_config, Process};
use common::independent::{node_with_input, succeeded};
use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// A Standard Webhooks secret (24 random bytes).
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// How the endpoint answers one request.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Status(u16),
    /// Reads the request and never answers.
    Hang,
}

/// One request the endpoint received.
#[derive(Debug)]
struct Received {
    head: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// A webhook endpoint on loopback answering from `plan` (then 200).
struct Endpoint {
    addr: SocketAddr,
    received: mpsc::UnboundedReceiver<Received>,
}

impl Endpoint {
    async fn start(plan: &[Answer]) -> Endpoint {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Endpoint::on(listener, plan)
    }

    fn on(listener: TcpListener, plan: &[Answer]) -> Endpoint {
        let addr = listener.local_addr().unwrap();
        let plan = Arc::new(Mutex::new(plan.iter().copied().collect::<VecDeque<_>>()));
        let (sender, received) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (plan, sender) = (Arc::clone(&plan), sender.clone());
                tokio::spawn(async move {
                    let Some(request) = read_request(tcp).await else {
                        return;
                    };
                    let (mut tcp, received) = request;
                    let _ = sender.send(received);
                    let answer = plan.lock().unwrap().pop_front();
                    match answer.unwrap_or(Answer::Status(200)) {
                        Answer::Hang => std::future::pending::<()>().await,
                        Answer::Status(status) => {
                            let head = format!(
                                "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            );
                            let _ = tcp.write_all(head.as_bytes()).await;
                        }
                    }
                });
            }
        });
        Endpoint { addr, received }
    }

    fn url(&self) -> String {
        format!("http://{}/hooks/caisse-ap", self.addr)
    }

    async fn next(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(15), self.received.recv())
            .await
            .expect("a delivery in time")
            .unwrap()
    }
}

async fn read_request(mut tcp: TcpStream) -> Option<(TcpStream, Received)> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = tcp.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map(|(_, v)| v.parse().unwrap())
        .expect("a Content-Length");
    while raw.len() < head_end + 4 + length {
        let n = tcp.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let body = String::from_utf8(raw[head_end + 4..head_end + 4 + length].to_vec()).unwrap();
    let head = head.lines().next().unwrap_or("").to_owned();
    Some((
        tcp,
        Received {
            head,
            headers,
            body,
        },
    ))
}

fn webhook(name: &str, url: String, all_events: bool) -> WebhookConfig {
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .unwrap();
    WebhookConfig {
        name: name.into(),
        url,
        secret: Secret(key),
        all_events,
        ca: None,
    }
}

async fn agent_with_webhooks(sim: SocketAddr, webhooks: Vec<WebhookConfig>) -> TestAgent {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut config = config(dir.path(), vec![terminal("tpe-1", sim, WAIT)]);
    config.webhooks = webhooks;
    spawn_agent_with(dir, &config, options()).await
}

/// Checks `received` with the `standardwebhooks` package; its parsed event (`None` when
/// the package is not installed, outside CI).
fn verified(received: &Received) -> Option<Value> {
    let headers: serde_json::Map<String, Value> =
        ["webhook-id", "webhook-timestamp", "webhook-signature"]
            .iter()
            .map(|name| (name.to_string(), json!(received.header(name).unwrap())))
            .collect();
    let input = json!({"secret": SECRET, "headers": headers, "body": received.body});
    let output = node_with_input("verify-webhook.mjs", &[], input.to_string().as_bytes())?;
    Some(serde_json::from_str(&succeeded(&output)).unwrap())
}

#[tokio::test]
async fn final_results_are_posted_signed_and_all_events_get_every_change() {
    let sim = spawn_sim(Behaviour::default()).await;
    let mut finals = Endpoint::start(&[]).await;
    let mut every = Endpoint::start(&[]).await;
    let agent = agent_with_webhooks(
        sim.addr(),
        vec![
            webhook("backend", finals.url(), false),
            webhook("audit", every.url(), true),
        ],
    )
    .await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("w.1", "tpe-1", 1245)).await;
    let last = until_final(&mut ws, "w.1").await.pop().unwrap();

    let delivery = finals.next().await;
    assert!(
        delivery.head.starts_with("POST /hooks/caisse-ap HTTP/1.1"),
        "{}",
        delivery.head
    );
    assert_eq!(delivery.header("content-type"), Some("application/json"));
    let event = delivery.json();
    assert_eq!(event["type"], "transaction.final");
    assert_eq!(event["timestamp"], last["updated_at"]);
    assert_eq!(event["data"]["id"], "w.1");
    assert_eq!(event["data"]["state"], "approved");
    assert_eq!(
        event["data"]["receipt"], last["receipt"],
        "the stored receipt, unchanged"
    );
    let webhook_id = format!("w.1.{}", event["data"]["seq"]);
    assert_eq!(delivery.header("webhook-id"), Some(webhook_id.as_str()));
    if let Some(checked) = verified(&delivery) {
        assert_eq!(checked, event);
    }
    // A body changed on the way no longer verifies.
    let forged = Received {
        body: delivery.body.replace("approved", "declined"),
        head: String::new(),
        headers: delivery.headers.clone(),
    };
    let headers: serde_json::Map<String, Value> = forged
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let input = json!({"secret": SECRET, "headers": headers, "body": forged.body});
    if let Some(output) = node_with_input("verify-webhook.mjs", &[], input.to_string().as_bytes()) {
        assert!(!output.status.success());
    }

    let mut types = Vec::new();
    while types.last() != Some(&"transaction.final".to_owned()) {
        let event = every.next().await.json();
        types.push(event["type"].as_str().unwrap().to_owned());
    }
    assert!(types.len() >= 3, "{types:?}");
    assert!(
        types[..types.len() - 1]
            .iter()
            .all(|t| t == "transaction.updated"),
        "{types:?}"
    );
}

#[tokio::test]
async fn a_refused_delivery_is_retried_with_the_same_webhook_id() {
    let sim = spawn_sim(Behaviour::default()).await;
    let mut endpoint = Endpoint::start(&[Answer::Status(500)]).await;
    let agent =
        agent_with_webhooks(sim.addr(), vec![webhook("backend", endpoint.url(), false)]).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("r-1", "tpe-1", 100)).await;
    until_final(&mut ws, "r-1").await;

    let first = endpoint.next().await;
    let second = endpoint.next().await;
    assert_eq!(first.header("webhook-id"), second.header("webhook-id"));
    assert_eq!(first.body, second.body);
    if let Some(checked) = verified(&second) {
        assert_eq!(checked["data"]["id"], "r-1");
    }
    // The endpoint has the retry before the agent's webhook thread counts its answer.
    let metrics = settled_metrics(&agent).await;
    for line in [
        r#"relay_webhook_deliveries_total{webhook="backend",result="refused"} 1"#,
        r#"relay_webhook_deliveries_total{webhook="backend",result="delivered"} 1"#,
        r#"relay_webhook_pending{webhook="backend"} 0"#,
    ] {
        assert!(metrics.contains(line), "{line} not in {metrics}");
    }
    let (mut office, _) = connect_as(&agent, OPERATOR).await;
    send(&mut office, json!({"type": "status"})).await;
    let status = next_message(&mut office).await;
    let hook = &status["webhooks"][0];
    assert_eq!(
        (hook["name"].as_str(), hook["pending"].as_u64()),
        (Some("backend"), Some(0))
    );
    assert_eq!(hook["last_error"], "HTTP 500");
}

/// `/metrics` of `agent` once webhook `backend` owes nothing and its delivered count has
/// stopped moving: every attempt it made is then settled (and remembered in its log).
async fn settled_metrics(agent: &TestAgent) -> String {
    let idle = r#"relay_webhook_pending{webhook="backend"} 0"#;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, _, body) = https_get(agent, "/metrics").await;
        let text = String::from_utf8(body).unwrap();
        if text.contains(idle) {
            return text;
        }
        assert!(tokio::time::Instant::now() < deadline, "still owed: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn delivered(metrics: &str) -> Option<&str> {
    let prefix = r#"relay_webhook_deliveries_total{webhook="backend",result="delivered"} "#;
    metrics.lines().find_map(|line| line.strip_prefix(prefix))
}

#[tokio::test]
async fn an_owed_delivery_survives_a_killed_agent_and_an_endpoint_that_was_down() {
    let sim = spawn_sim(Behaviour::default()).await;
    // Bound but not listening: connections are refused, and no other socket can take the
    // port before the endpoint comes up on it.
    let down = tokio::net::TcpSocket::new_v4().unwrap();
    down.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = down.local_addr().unwrap();
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let config = write_config(dir.path(), &[("tpe-1", sim.addr())]);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text += &format!(
        "\n[[webhook]]\nname = \"backend\"\nurl = \"http://{addr}/hook\"\nsecret = \"{SECRET}\"\n"
    );
    std::fs::write(&config, text).unwrap();

    let mut first = Process::start(&config, &[]).await;
    let agent = TestAgent::external(first.addr, Arc::clone(&dir));
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("k-1", "tpe-1", 700)).await;
    let last = until_final(&mut ws, "k-1").await.pop().unwrap();
    first.log_line("webhook delivery failed").await;
    first.kill();

    let mut endpoint = Endpoint::on(down.listen(64).unwrap(), &[]);
    let second = Process::start(&config, &[]).await;
    let delivery = endpoint.next().await;
    assert_eq!(delivery.json()["type"], "transaction.final");
    assert_eq!(delivery.json()["data"]["receipt"], last["receipt"]);
    let expected = format!("k-1.{}", last["seq"]);
    assert_eq!(delivery.header("webhook-id"), Some(expected.as_str()));
    // The endpoint reads a request before answering it: stopping the agent now could cut
    // the attempt, which then stays owed (at least once). Stop once it is acknowledged.
    let metrics = settled_metrics(&TestAgent::external(second.addr, Arc::clone(&dir))).await;
    assert_eq!(delivered(&metrics), Some("1"));
    second.terminate().await;

    // Delivered: a third start owes nothing. Its first delivery, of a new payment, is the
    // barrier: a repeat of k-1 would be owed from the start, so it would come first or
    // keep the backlog above zero and the delivered count above one.
    let third = Process::start(&config, &[]).await;
    let agent = TestAgent::external(third.addr, Arc::clone(&dir));
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("k-2", "tpe-1", 800)).await;
    until_final(&mut ws, "k-2").await;
    assert_eq!(endpoint.next().await.json()["data"]["id"], "k-2");
    let metrics = settled_metrics(&agent).await;
    assert_eq!(
        delivered(&metrics),
        Some("1"),
        "k-1 delivered once, not again"
    );
    assert!(endpoint.received.try_recv().is_err(), "{metrics}");
    third.terminate().await;
}

/// Contract §9: an owed delivery is dropped only with its record (journal retention), with
/// an error in the log; the agent goes on delivering the rest.
#[tokio::test]
async fn a_delivery_still_owed_when_retention_drops_its_record_is_logged_as_an_error() {
    let sim = spawn_sim(Behaviour::default()).await;
    let mut refusing = Endpoint::start(&[Answer::Status(500); 64]).await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let config = write_config(dir.path(), &[("tpe-1", sim.addr())]);
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replacen("[server]\n", "[server]\njournal_retention = \"1s\"\n", 1);
    let text = text
        + &format!(
            "\n[[webhook]]\nname = \"backend\"\nurl = \"{}\"\nsecret = \"{SECRET}\"\n",
            refusing.url()
        );
    std::fs::write(&config, text).unwrap();

    let mut first = Process::start(&config, &[]).await;
    let agent = TestAgent::external(first.addr, Arc::clone(&dir));
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("k-1", "tpe-1", 700)).await;
    until_final(&mut ws, "k-1").await;
    assert_eq!(refusing.next().await.json()["data"]["id"], "k-1");
    first.log_line("webhook delivery failed").await;
    // Past its retention, the record goes when the next start compacts the journal.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    first.terminate().await;
    // The same webhook (its name) now at an endpoint that accepts: whatever reaches it
    // comes from the second start.
    let mut endpoint = Endpoint::start(&[]).await;
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace(&refusing.url(), &endpoint.url())).unwrap();

    let mut second = Process::start(&config, &[]).await;
    let line = second.log_line("owed webhook deliveries dropped").await;
    assert!(
        line.contains("ERROR") && line.contains("webhook=backend") && line.contains("final:k-1"),
        "{line}"
    );
    let agent = TestAgent::external(second.addr, Arc::clone(&dir));
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, json!({"type": "get", "id": "k-1"})).await;
    assert_eq!(
        next_message(&mut ws).await["code"],
        "not_found",
        "retention"
    );
    send(&mut ws, pay("k-2", "tpe-1", 800)).await;
    let last = until_final(&mut ws, "k-2").await.pop().unwrap();
    assert_eq!(last["state"], "approved");
    // k-1, were it still owed, would be tried first, at start, and counted.
    assert_eq!(endpoint.next().await.json()["data"]["id"], "k-2");
    let metrics = settled_metrics(&agent).await;
    assert_eq!(delivered(&metrics), Some("1"), "{metrics}");
    assert!(endpoint.received.try_recv().is_err());
    second.terminate().await;
}

#[tokio::test]
async fn a_hanging_endpoint_delays_neither_payments_nor_another_webhook_nor_shutdown() {
    let sim = spawn_sim(Behaviour::default()).await;
    let mut stuck = Endpoint::start(&[Answer::Hang; 64]).await;
    let mut healthy = Endpoint::start(&[]).await;
    let agent = agent_with_webhooks(
        sim.addr(),
        vec![
            webhook("stuck", stuck.url(), true),
            webhook("healthy", healthy.url(), false),
        ],
    )
    .await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    for i in 0..6 {
        let id = format!("h-{i}");
        send(&mut ws, pay(&id, "tpe-1", 100 + i)).await;
        assert_eq!(
            until_final(&mut ws, &id).await.pop().unwrap()["state"],
            "approved"
        );
        assert_eq!(healthy.next().await.json()["data"]["id"], id.as_str());
    }
    stuck.next().await;
    // `stop` fails the test if the agent takes longer than 5 s to stop.
    agent.stop().await;
}

/// More deliveries owed to a dead endpoint than attempts may run: the worker waits for an
/// attempt to end instead of waking again and again for deliveries it cannot start (it
/// once spun a core for each attempt's 10 s, slowing every payment).
#[tokio::test]
async fn a_backlog_owed_to_a_hanging_endpoint_leaves_the_agent_idle() {
    let sim = spawn_sim(Behaviour::default()).await;
    let mut stuck = Endpoint::start(&[Answer::Hang; 64]).await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let config = write_config(dir.path(), &[("tpe-1", sim.addr())]);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text += &format!(
        "\n[[webhook]]\nname = \"stuck\"\nurl = \"{}\"\nsecret = \"{SECRET}\"\nevents = \"all\"\n",
        stuck.url()
    );
    std::fs::write(&config, text).unwrap();
    let agent_process = Process::start(&config, &[]).await;
    let agent = TestAgent::external(agent_process.addr, Arc::clone(&dir));
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    for i in 0..4 {
        let id = format!("s-{i}");
        send(&mut ws, pay(&id, "tpe-1", 100 + i)).await;
        until_final(&mut ws, &id).await;
    }
    // Four payments owe more than four `all` deliveries; four attempts hang for 10 s.
    for _ in 0..4 {
        stuck.next().await;
    }
    let before = agent_process.cpu_time();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let used = agent_process.cpu_time() - before;
    assert!(
        used < Duration::from_millis(500),
        "an idle agent with hanging attempts used {used:?} of CPU in 3 s"
    );
    agent_process.terminate().await;
}

#[test]
fn bad_webhook_configurations_exit_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "url = \"http://192.0.2.10/hook\"",
            "webhook[1].url",
            "not loopback",
        ),
        (
            "url = \"ftp://127.0.0.1/hook\"",
            "webhook[1].url",
            "https://",
        ),
        ("secret = \"whsec_short\"", "webhook[1].secret", "whsec_"),
        (
            "secret = \"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"",
            "webhook[1].secret",
            "whsec_",
        ),
        (
            "events = \"some\"",
            "webhook[1].events",
            "\"final\" or \"all\"",
        ),
    ];
    for (line, field, says) in cases {
        let mut block = vec![
            "name = \"backend\"".to_owned(),
            "url = \"https://pos.example.com/hook\"".to_owned(),
            format!("secret = \"{SECRET}\""),
        ];
        let key = line.split(' ').next().unwrap();
        block.retain(|l| !l.starts_with(key));
        block.push(line.to_owned());
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, format!("[[webhook]]\n{}\n", block.join("\n"))).unwrap();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_caisse-ap-relay"))
            .args(["serve", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{line}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(field) && stderr.contains(says),
            "{line}: {stderr}"
        );
        assert!(
            !stderr.contains("MfKQ9r8G"),
            "the secret is never printed: {stderr}"
        );
    }
}

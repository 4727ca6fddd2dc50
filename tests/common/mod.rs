//! Shared fixtures of the relay's integration tests: a real agent on 127.0.0.1:0 with a
//! temporary data and certificate directory, simulated terminals, and browser-like WebSocket
//! and HTTPS clients that trust only the agent's generated CA.
#![allow(dead_code)]

pub mod binary;
pub mod independent;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use caisse_ap_relay::agent::reload::ReloadHandle;
use caisse_ap_relay::agent::{Agent, Options};
use caisse_ap_relay::config::{Config, Role, Secret, TerminalConfig, TillConfig};
use caisse_ap_relay::sim::{Behaviour, Simulator};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

/// How long any awaited event may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(5);
/// Token of the cashier till `till-1`.
pub const CASHIER: &str = "cashier-token-0123456789";
/// Token of the display till `screen`.
pub const DISPLAY: &str = "display-token-0123456789";
/// Token of the cashier till `till-2`, restricted to terminal `tpe-2`.
pub const RESTRICTED: &str = "restricted-token-0123456789";
/// Token of the operator till `office`.
pub const OPERATOR: &str = "operator-token-0123456789";
/// The agent's name in the test configuration (its receipts' `iss`).
pub const AGENT_NAME: &str = "shop-test";
/// An origin listed in the test configuration.
pub const ALLOWED_ORIGIN: &str = "https://pos.example.com";

/// A browser's socket to the agent.
pub type Ws = WebSocketStream<TlsStream<TcpStream>>;

/// A running in-process agent; stops gracefully on drop of the shutdown sender.
pub struct TestAgent {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The generated CA, PEM.
    pub ca_pem: String,
    /// Its temporary directory (data + certs).
    pub dir: Arc<tempfile::TempDir>,
    /// Applies a new configuration (in-process agents only).
    pub reload: Option<ReloadHandle>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestAgent {
    /// An agent running elsewhere (the built binary) at `addr`, certificates in `dir/certs`.
    pub fn external(addr: SocketAddr, dir: Arc<tempfile::TempDir>) -> TestAgent {
        let ca_pem = std::fs::read_to_string(dir.path().join("certs/ca.pem")).unwrap();
        TestAgent {
            addr,
            ca_pem,
            dir,
            reload: None,
            stop: None,
            task: None,
        }
    }

    /// Stops the agent gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("agent stops in time")
                .expect("agent task");
        }
    }
}

/// A terminal entry at `addr` with a `timeout` deadline, its unresolved-unknown guard off
/// (v1 behaviour: tests of other features pay again after an `unknown`; tests/suite/relay_guards.rs
/// turns it on).
pub fn terminal(name: &str, addr: impl ToString, timeout: Duration) -> TerminalConfig {
    TerminalConfig {
        name: name.to_owned(),
        address: addr.to_string(),
        pos_number: "01".to_owned(),
        timeout,
        guard_unknown: false,
        ticket: None,
        send_reference: false,
    }
}

/// A till entry with a static `token`, limited to `terminals` when given.
pub fn till(name: &str, token: &str, role: Role, terminals: Option<&[&str]>) -> TillConfig {
    TillConfig {
        name: name.to_owned(),
        token: Some(Secret(token.to_owned())),
        terminals: terminals.map(|list| list.iter().map(|t| t.to_string()).collect()),
        role,
    }
}

/// A configuration with `terminals`, tills `till-1` (cashier, all terminals), `screen`
/// (display), `till-2` (cashier, only `tpe-2`) and `office` (operator), in `dir`. The possible-duplicate guard
/// is off (v1 behaviour, see [`terminal`]).
pub fn config(dir: &std::path::Path, terminals: Vec<TerminalConfig>) -> Config {
    let mut config = Config::demo(
        "127.0.0.1:9".into(),
        Secret(CASHIER.into()),
        Secret(OPERATOR.into()),
    );
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.server.data_dir = dir.join("data");
    config.server.allowed_origins = vec![ALLOWED_ORIGIN.to_owned()];
    config.server.name = Some(AGENT_NAME.to_owned());
    config.tls.dir = dir.join("certs");
    config.tls.extra_names = Vec::new();
    config.server.duplicate_window = Duration::ZERO;
    config.terminals = terminals;
    config.tills = vec![
        till("till-1", CASHIER, Role::Cashier, None),
        till("screen", DISPLAY, Role::Display, None),
        till("till-2", RESTRICTED, Role::Cashier, Some(&["tpe-2"])),
        till("office", OPERATOR, Role::Operator, None),
    ];
    config
}

/// Short periods for tests: `waiting_card` after 50 ms of silence, `hello` within 1 s; no
/// probe at start, so that a terminal's requests can be counted exactly.
pub fn options() -> Options {
    let mut options = Options::default();
    options.engine.probe_at_start = false;
    options.engine.settle = Duration::from_millis(50);
    options.engine.drain = Duration::from_millis(50);
    options.web.hello_timeout = Duration::from_secs(1);
    options
}

/// Starts an agent with `terminals` and the test tills, in a fresh temporary directory.
pub async fn spawn_agent(terminals: Vec<TerminalConfig>) -> TestAgent {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    spawn_agent_in(dir, terminals, options()).await
}

/// Starts an agent on `dir` (reused across restarts) with `options`.
pub async fn spawn_agent_in(
    dir: Arc<tempfile::TempDir>,
    terminals: Vec<TerminalConfig>,
    options: Options,
) -> TestAgent {
    let config = config(dir.path(), terminals);
    spawn_agent_with(dir, &config, options).await
}

/// Starts an agent on `dir` with `config` (e.g. [`config`] with more tills) and `options`.
pub async fn spawn_agent_with(
    dir: Arc<tempfile::TempDir>,
    config: &Config,
    options: Options,
) -> TestAgent {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let agent = Agent::start(config, listener, options)
        .await
        .expect("agent starts");
    let addr = agent.local_addr().unwrap();
    let reload = Some(agent.reload_handle());
    let ca_pem = std::fs::read_to_string(dir.path().join("certs/ca.pem")).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(agent.serve(async {
        let _ = stopped.await;
    }));
    TestAgent {
        addr,
        ca_pem,
        dir,
        reload,
        stop: Some(stop),
        task: Some(task),
    }
}

/// A simulated terminal on 127.0.0.1:0.
pub async fn spawn_sim(behaviour: Behaviour) -> Simulator {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    Simulator::spawn(listener, behaviour)
}

/// An address where nothing listens (connect refused).
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// A listener that never accepts and whose queue is full: a connect to it hangs. Keep the
/// returned values alive for as long as the address must hang.
pub async fn black_hole() -> (tokio::net::TcpListener, TcpStream, SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let filler = TcpStream::connect(addr).await.unwrap();
    (listener, filler, addr)
}

fn tls_connector(ca_pem: &str) -> TlsConnector {
    let roots = caisse_ap_relay::certs::root_store(ca_pem).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

pub async fn tls_connect(agent: &TestAgent) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(agent.addr).await.unwrap();
    tls_over(agent, tcp).await
}

/// The TLS client handshake with the agent over `tcp`, trusting only its generated CA.
pub async fn tls_over(agent: &TestAgent, tcp: TcpStream) -> TlsStream<TcpStream> {
    try_tls_over(agent, tcp)
        .await
        .expect("TLS handshake trusting the generated CA")
}

async fn try_tls_over(agent: &TestAgent, tcp: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    tls_connector(&agent.ca_pem).connect(name, tcp).await
}

/// Opens `wss://localhost:PORT/ws` with an optional `Origin`, as a browser does.
pub async fn ws_connect(agent: &TestAgent, origin: Option<&str>) -> Result<Ws, WsError> {
    let tcp = TcpStream::connect(agent.addr).await.unwrap();
    ws_over(agent, tcp, origin).await
}

/// [`ws_connect`] over an already connected `tcp` (e.g. bound to another loopback address);
/// a failed TLS handshake is an error too.
pub async fn ws_over(
    agent: &TestAgent,
    tcp: TcpStream,
    origin: Option<&str>,
) -> Result<Ws, WsError> {
    let tls = try_tls_over(agent, tcp).await?;
    let url = format!("wss://localhost:{}/ws", agent.addr.port());
    let mut request = url.into_client_request().unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
    }
    // The client may send big frames: the test of the agent's limit needs it.
    let config = WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None);
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, tls, Some(config)).await?;
    Ok(ws)
}

/// Connects and says hello with `token`; returns the socket and the `welcome`.
pub async fn connect_as(agent: &TestAgent, token: &str) -> (Ws, Value) {
    let mut ws = ws_connect(agent, Some(ALLOWED_ORIGIN)).await.unwrap();
    send(&mut ws, json!({"type": "hello", "token": token})).await;
    let welcome = next_message(&mut ws).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    (ws, welcome)
}

/// Sends one JSON message.
pub async fn send(ws: &mut Ws, message: Value) {
    ws.send(Message::text(message.to_string())).await.unwrap();
}

/// The next frame that is not a ping or pong, within [`WAIT`].
pub async fn next_frame(ws: &mut Ws) -> Option<Result<Message, WsError>> {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time");
        match frame {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => return other,
        }
    }
}

/// The next JSON message, within [`WAIT`].
pub async fn next_message(ws: &mut Ws) -> Value {
    match next_frame(ws).await {
        Some(Ok(Message::Text(text))) => serde_json::from_str(&text).unwrap(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// A record the agent replayed (after `welcome`, or in answer to `watch`): it says so with
/// `"replay": true` (§7.1); returned without that flag, to compare with the live record.
pub fn unreplayed(mut record: Value) -> Value {
    let flag = record.as_object_mut().and_then(|o| o.remove("replay"));
    assert_eq!(flag, Some(Value::Bool(true)), "a replay says so: {record}");
    record
}

/// Transaction messages of `id` up to and including a final state; other messages fail.
pub async fn until_final(ws: &mut Ws, id: &str) -> Vec<Value> {
    let finals = ["approved", "declined", "not_sent", "unknown"];
    until(ws, id, |record| {
        finals.iter().any(|s| record["state"] == *s)
    })
    .await
}

/// Transaction messages of `id` up to and including the first that `last` accepts; other
/// messages fail.
pub async fn until(ws: &mut Ws, id: &str, last: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let message = next_message(ws).await;
        assert_eq!(message["type"], "transaction", "{message}");
        if message["id"] != id {
            continue;
        }
        let done = last(&message);
        seen.push(message);
        if done {
            return seen;
        }
    }
}

/// The `error` a request gets (any other reply fails).
pub async fn error_of(ws: &mut Ws, message: Value) -> Value {
    send(ws, message).await;
    let reply = next_message(ws).await;
    assert_eq!(reply["type"], "error", "{reply}");
    reply
}

/// Transaction messages of `id` until one in `state`.
pub async fn until_state(ws: &mut Ws, id: &str, state: &str) -> Value {
    loop {
        let message = next_message(ws).await;
        assert_eq!(message["type"], "transaction", "{message}");
        if message["id"] == id && message["state"] == state {
            return message;
        }
    }
}

/// A `pay` message of `amount` EUR cents on `terminal`.
pub fn pay(id: &str, terminal: &str, amount: u64) -> Value {
    json!({"type": "pay", "id": id, "terminal": terminal, "amount": amount, "currency": "EUR"})
}

/// The close code of the next frame, which must be a close frame.
pub async fn close_code(ws: &mut Ws) -> u16 {
    match next_frame(ws).await {
        Some(Ok(Message::Close(Some(frame)))) => frame.code.into(),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

/// One HTTPS GET over a fresh connection: status, headers (lowercase names) and body.
pub async fn https_get(agent: &TestAgent, path: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    https_get_with(agent, path, &[]).await
}

/// [`https_get`] with extra request headers.
pub async fn https_get_with(
    agent: &TestAgent,
    path: &str,
    extra: &[(&str, &str)],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut tls = tls_connect(agent).await;
    let extra: String = extra.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost:{}\r\n{extra}Connection: close\r\n\r\n",
        agent.addr.port()
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, tls.read_to_end(&mut raw))
        .await
        .expect("response in time")
        .ok();
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, dechunk(&head, &raw[split + 4..]))
}

fn dechunk(head: &str, body: &[u8]) -> Vec<u8> {
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return body.to_vec();
    }
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(std::str::from_utf8(&rest[..end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.extend_from_slice(&rest[end + 2..end + 2 + size]);
        rest = &rest[end + 2 + size + 2..];
    }
    out
}

/// The value of header `name` (lowercase) in headers from [`https_get`].
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Path of a file in the agent's directory.
pub fn path_in(agent: &TestAgent, name: &str) -> PathBuf {
    agent.dir.path().join(name)
}

/// A pairing code for a new till `name` with `role`, issued into the agent's store (as
/// `caisse-ap-relay pair` does).
pub fn issue_code(agent: &TestAgent, name: &str, role: Role) -> String {
    let till = caisse_ap_relay::access::Till {
        name: name.to_owned(),
        role,
        terminals: None,
    };
    let store = caisse_ap_relay::access::Store::open(&path_in(agent, "data")).unwrap();
    store
        .issue_code(&till, std::time::SystemTime::now())
        .unwrap()
        .code
}

/// Sends `pair` with `code` on a new socket: the socket and the agent's reply.
pub async fn pair(agent: &TestAgent, code: &str) -> (Ws, Value) {
    let mut ws = ws_connect(agent, None).await.unwrap();
    send(&mut ws, json!({"type": "pair", "code": code})).await;
    let reply = next_message(&mut ws).await;
    (ws, reply)
}

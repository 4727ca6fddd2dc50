//! Hostile clients against the real agent on 127.0.0.1:0: foreign origins, token guessing,
//! oversize and malformed frames, huge values, and a thousand connections that never finish
//! their TLS handshake or speak garbage. Each test shows the agent refuses cleanly, sends
//! nothing to a terminal, and keeps serving an honest till meanwhile.

use crate::common;

use std::io::{ErrorKind, Read};
use std::net::Ipv4Addr;
use std::time::Duration;

use caisse_ap_relay::agent::Options;
use caisse_ap_relay::sim::{Behaviour, Simulator};
use common::*;
use futures_util::SinkExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Connections opened by the flood tests.
const FLOOD: usize = 1000;

/// An approving terminal and an agent using it, with `web` applied to the test options.
async fn agent_with(web: impl FnOnce(&mut Options)) -> (Simulator, TestAgent) {
    raise_fd_limit();
    let sim = spawn_sim(Behaviour::default()).await;
    let mut options = options();
    web(&mut options);
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let terminals = vec![terminal("tpe-1", sim.addr(), WAIT)];
    let agent = spawn_agent_in(dir, terminals, options).await;
    (sim, agent)
}

/// A flood test holds two descriptors per connection (ours and the agent's), up to two
/// thousand connections, and two tests may run at once.
fn raise_fd_limit() {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap();
    assert!(
        limit >= 8 * FLOOD as u64 + 1024,
        "open files limit {limit} too low"
    );
}

/// An honest till is served: `welcome`, then payment `id` is approved by the terminal.
async fn honest_payment(agent: &TestAgent, id: &str) {
    let (mut ws, _) = connect_as(agent, CASHIER).await;
    send(&mut ws, pay(id, "tpe-1", 1245)).await;
    let states = until_final(&mut ws, id).await;
    assert_eq!(states.last().unwrap()["state"], "approved");
}

/// The next message, which must be an `error` with `code`.
async fn expect_error(ws: &mut Ws, code: &str) -> serde_json::Value {
    let message = next_message(ws).await;
    assert_eq!(message["type"], "error", "{message}");
    assert_eq!(message["code"], code, "{message}");
    message
}

/// The socket still answers: `terminals` gets `terminals`.
async fn still_usable(ws: &mut Ws) {
    send(ws, json!({"type": "terminals"})).await;
    assert_eq!(next_message(ws).await["type"], "terminals");
}

/// A TCP connection to the agent from `local` (another loopback address).
async fn tcp_from(agent: &TestAgent, local: Ipv4Addr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind((local, 0).into()).unwrap();
    socket.connect(agent.addr).await.unwrap()
}

/// Sends `hello` with `token` from `local` and returns the first reply and the socket.
async fn hello_from(agent: &TestAgent, local: Ipv4Addr, token: &str) -> (Ws, serde_json::Value) {
    let tcp = tcp_from(agent, local).await;
    let mut ws = ws_over(agent, tcp, Some(ALLOWED_ORIGIN)).await.unwrap();
    send(&mut ws, json!({"type": "hello", "token": token})).await;
    let reply = next_message(&mut ws).await;
    (ws, reply)
}

#[tokio::test]
async fn foreign_origins_are_refused_with_403() {
    let (_sim, agent) = agent_with(|_| {}).await;
    let port = agent.addr.port();
    let foreign = [
        "https://evil.example".to_owned(),
        "null".to_owned(),
        format!("{ALLOWED_ORIGIN}.evil.example"),
        ALLOWED_ORIGIN.to_uppercase(),
        format!("http://localhost:{port}"),
        format!("https://localhost:{port}.evil.example"),
    ];
    for origin in &foreign {
        match ws_connect(&agent, Some(origin)).await {
            Err(WsError::Http(response)) => assert_eq!(response.status(), 403, "{origin}"),
            other => panic!("{origin}: expected 403, got {other:?}"),
        }
    }
    honest_payment(&agent, "after-origins").await;
}

#[tokio::test]
async fn guessing_tokens_blocks_the_address_but_not_another() {
    let (_sim, agent) = agent_with(|_| {}).await;
    let home = Ipv4Addr::new(127, 0, 0, 1);
    for guess in 0..5 {
        let (mut ws, reply) = hello_from(&agent, home, &format!("guess-{guess}")).await;
        assert_eq!(reply["code"], "unauthorized", "{reply}");
        assert_eq!(close_code(&mut ws).await, 4401);
    }
    // Even the right token is refused from the guessing address...
    let (mut ws, reply) = hello_from(&agent, home, CASHIER).await;
    assert_eq!(reply["code"], "rate_limited", "{reply}");
    assert_eq!(close_code(&mut ws).await, 4401);
    // ...while another address is not affected.
    let (_ws, reply) = hello_from(&agent, Ipv4Addr::new(127, 0, 0, 2), CASHIER).await;
    assert_eq!(reply["type"], "welcome", "{reply}");
}

/// A text message of `len` bytes sent as fragments of 8 KiB, each under the frame limit.
async fn send_fragmented(ws: &mut Ws, len: usize) {
    let chunk = 8 * 1024;
    let fragments = len.div_ceil(chunk);
    for i in 0..fragments {
        let opcode = if i == 0 {
            OpCode::Data(Data::Text)
        } else {
            OpCode::Data(Data::Continue)
        };
        let frame = Frame::message(vec![b' '; chunk], opcode, i + 1 == fragments);
        if ws.send(Message::Frame(frame)).await.is_err() {
            return; // The agent may close before the last fragment.
        }
    }
}

#[tokio::test]
async fn oversize_messages_close_1009_before_and_after_hello() {
    let (_sim, agent) = agent_with(|_| {}).await;
    let mut ws = ws_connect(&agent, Some(ALLOWED_ORIGIN)).await.unwrap();
    ws.send(Message::text("x".repeat(70_000))).await.unwrap();
    assert_eq!(close_code(&mut ws).await, 1009);

    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send_fragmented(&mut ws, 80 * 1024).await;
    assert_eq!(close_code(&mut ws).await, 1009);
    honest_payment(&agent, "after-oversize").await;
}

#[tokio::test]
async fn deeply_nested_json_is_an_error_and_the_socket_stays_usable() {
    let (_sim, agent) = agent_with(|_| {}).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    // As deep as fits in one 64 KiB frame.
    let nests = [
        "[".repeat(65_000),
        "{\"a\":".repeat(13_000),
        "[{\"type\":".repeat(7_000),
    ];
    for nested in nests {
        ws.send(Message::text(nested)).await.unwrap();
        let error = expect_error(&mut ws, "bad_request").await;
        assert!(error["message"]
            .as_str()
            .unwrap()
            .starts_with("malformed JSON"));
        still_usable(&mut ws).await;
    }
}

#[tokio::test]
async fn huge_numbers_and_strings_are_refused_and_reach_no_terminal() {
    let (sim, agent) = agent_with(|_| {}).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    let long = "x".repeat(60_000);
    let order = |field: &str, value: serde_json::Value| {
        let mut message = pay("big", "tpe-1", 100);
        message[field] = value;
        message.to_string()
    };
    let cases = [
        (
            "bad_request",
            order("amount", json!(18_446_744_073_709_551_615u64)),
        ),
        ("bad_request", order("amount", json!(1_000_000_000_000u64))),
        ("bad_request", order("amount", json!(-1))),
        ("bad_request", order("amount", json!(1e300))),
        ("bad_request", order("amount", json!(long))),
        ("bad_request", order("id", json!(long))),
        ("bad_request", order("currency", json!(long))),
        ("bad_request", order("action", json!(long))),
        ("unknown_terminal", order("terminal", json!(long))),
        (
            "bad_request",
            r#"{"type":"pay","id":"n","terminal":"tpe-1","amount":1e400,"currency":"EUR"}"#
                .to_owned(),
        ),
        (
            "bad_request",
            format!(
                r#"{{"type":"pay","id":"n","terminal":"tpe-1","amount":1{},"currency":"EUR"}}"#,
                "0".repeat(60_000)
            ),
        ),
        ("bad_request", json!({"type": long}).to_string()),
        (
            "not_found",
            json!({"type": "resolve", "id": "nope", "outcome": "approved", "note": long})
                .to_string(),
        ),
        (
            "bad_request",
            json!({"type": "hello", "token": long}).to_string(),
        ),
    ];
    for (code, text) in cases {
        ws.send(Message::text(text)).await.unwrap();
        expect_error(&mut ws, code).await;
    }
    assert_eq!(
        sim.request_count(),
        0,
        "no refused order reached the terminal"
    );
    send(&mut ws, pay("fine", "tpe-1", 100)).await;
    assert_eq!(
        until_final(&mut ws, "fine").await.last().unwrap()["state"],
        "approved"
    );
    assert_eq!(sim.request_count(), 1);
}

/// A text frame whose payload is not UTF-8.
fn invalid_utf8() -> Message {
    Message::Frame(Frame::message(
        vec![b'{', 0xff, 0xfe, b'}'],
        OpCode::Data(Data::Text),
        true,
    ))
}

#[tokio::test]
async fn binary_frames_get_an_error_and_invalid_utf8_closes_1007() {
    let (_sim, agent) = agent_with(|_| {}).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    ws.send(Message::binary(vec![0u8, 159, 146, 150]))
        .await
        .unwrap();
    expect_error(&mut ws, "bad_request").await;
    still_usable(&mut ws).await;
    ws.send(invalid_utf8()).await.unwrap();
    assert_eq!(close_code(&mut ws).await, 1007);

    let mut ws = ws_connect(&agent, Some(ALLOWED_ORIGIN)).await.unwrap();
    ws.send(invalid_utf8()).await.unwrap();
    assert_eq!(close_code(&mut ws).await, 1007);
    honest_payment(&agent, "after-utf8").await;
}

/// The start of a TLS ClientHello: a record header announcing 512 bytes, then a few of them.
const PARTIAL_CLIENT_HELLO: [u8; 11] = [
    0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
];

/// Flood connections per source address: below the per-address cap (64).
const PER_SOURCE: usize = 50;

/// The source address of flood connection `i`: 127.0.1.0 onwards, `PER_SOURCE` each, never
/// the honest till's 127.0.0.1.
fn flood_source(i: usize) -> Ipv4Addr {
    let n = u32::try_from(i / PER_SOURCE).unwrap();
    Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 1, 0)) + n)
}

/// `FLOOD` raw connections: half silent, half stopping inside their ClientHello.
async fn stalled_handshakes(agent: &TestAgent) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(FLOOD);
    for i in 0..FLOOD {
        let mut tcp = tcp_from(agent, flood_source(i)).await;
        if i % 2 == 1 {
            tcp.write_all(&PARTIAL_CLIENT_HELLO).await.unwrap();
        }
        held.push(tcp);
    }
    held
}

/// Whether the agent has closed this connection, without waiting: reads until it would
/// block (open) or it sees the end or a reset (closed).
fn closed_by_agent(mut tcp: &std::net::TcpStream) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(err) if err.kind() == ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// Waits for the agent to close `tcp` (end of stream or reset).
async fn await_close(tcp: &mut TcpStream) {
    let mut buf = [0u8; 256];
    let drain = async {
        while let Ok(n) = tcp.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    tokio::time::timeout(WAIT, drain)
        .await
        .expect("the agent closes the connection");
}

fn into_std(held: Vec<TcpStream>) -> Vec<std::net::TcpStream> {
    held.into_iter().map(|t| t.into_std().unwrap()).collect()
}

#[tokio::test]
async fn stalled_tls_handshakes_do_not_keep_others_waiting() {
    let (_sim, agent) = agent_with(|o| o.web.handshake_timeout = Duration::from_secs(120)).await;
    let held = stalled_handshakes(&agent).await;
    honest_payment(&agent, "beside-the-stalled").await;
    // Served while every stalled connection was still held open by the agent.
    let held = into_std(held);
    let closed = held.iter().filter(|t| closed_by_agent(t)).count();
    assert_eq!(closed, 0);
    // Stopping does not wait for their handshake deadline (asserted by `stop`).
    agent.stop().await;
}

#[tokio::test]
async fn the_handshake_deadline_frees_stalled_connections() {
    let (_sim, agent) = agent_with(|o| {
        o.web.handshake_timeout = Duration::from_millis(300);
        o.web.max_connections = FLOOD + 10;
    })
    .await;
    let mut held = stalled_handshakes(&agent).await;
    for tcp in &mut held {
        await_close(tcp).await;
    }
    // The permits came back: more than `max_connections` in all were served.
    let mut again = stalled_handshakes(&agent).await;
    honest_payment(&agent, "after-the-deadline").await;
    for tcp in &mut again {
        await_close(tcp).await;
    }
}

#[tokio::test]
async fn at_the_cap_the_oldest_unauthenticated_connection_makes_room() {
    let cap = 3;
    let (_sim, agent) = agent_with(|o| {
        o.web.max_connections = cap;
        o.web.handshake_timeout = Duration::from_secs(120);
    })
    .await;
    let mut silent = Vec::new();
    for i in 0..cap {
        let tcp = tcp_from(&agent, flood_source(i)).await.into_std().unwrap();
        silent.push(tcp);
        // Admitted in this order: the first is the oldest.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    honest_payment(&agent, "over-the-cap").await;
    // Served at once, long before the deadline: the oldest silent connection made room.
    let closed: Vec<bool> = silent.iter().map(closed_by_agent).collect();
    assert_eq!(closed, [true, false, false]);
}

/// A small deterministic generator for garbage bytes (xorshift64).
fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// One garbage client of kind `i % 3`: random bytes, plaintext HTTP/0.9, or a TLS client
/// that stops in the middle of its request head (slowloris).
async fn garbage_client(
    agent: &TestAgent,
    i: usize,
) -> Option<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut tcp = tcp_from(agent, flood_source(i)).await;
    match i % 3 {
        0 => tcp
            .write_all(&garbage(i as u64, 64 + i % 512))
            .await
            .unwrap(),
        1 => tcp.write_all(b"GET /\r\n").await.unwrap(),
        _ => {
            let mut tls = tls_over(agent, tcp).await;
            let head = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: a";
            tls.write_all(head.as_bytes()).await.unwrap();
            return Some(tls);
        }
    }
    None
}

#[tokio::test]
async fn garbage_connections_do_not_stop_the_agent() {
    let (_sim, agent) = agent_with(|o| o.web.handshake_timeout = Duration::from_secs(2)).await;
    let mut slow = Vec::new();
    for i in 0..FLOOD {
        slow.extend(garbage_client(&agent, i).await);
    }
    honest_payment(&agent, "beside-the-garbage").await;
    let (status, _, _) = https_get(&agent, "/healthz").await;
    assert_eq!(status, 200);
    // The request-head deadline closes the slow ones.
    for tls in &mut slow {
        let mut buf = Vec::new();
        let read = tokio::time::timeout(WAIT, tls.read_to_end(&mut buf)).await;
        assert!(
            read.is_ok(),
            "a slow request head is closed by the deadline"
        );
    }
}

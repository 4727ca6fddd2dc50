//! The idle-socket flood of the loopback penetration test (issue 12, finding 1), against
//! the real binary under a 1,024 open-files limit: thousands of sockets that never speak,
//! on the TLS port and on the plain-HTTP onboarding port, from many 127.x source addresses.
//! Contract §7.4: no such flood may make a payment fail or a till's `hello` wait more than
//! a second. The figures (connections held, payment latency) are printed for the report.

use crate::common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream as StdStream};
use std::time::{Duration, Instant};

use caisse_ap_relay::agent::ONBOARDING_CONNECTIONS;
use caisse_ap_relay::sim::Behaviour;
use common::binary::Process;
use common::*;
use tokio::net::TcpSocket;

/// The agent's descriptor limit: low enough that the flood would exhaust it.
const OPEN_FILES: u64 = 1024;
/// Idle sockets per port: more than the limit, as in the penetration test.
const FLOOD: usize = 1100;
/// Flood sockets per source address: below the per-address cap.
const PER_SOURCE: usize = 50;
/// Sockets from one single address, above the per-address cap (64).
const ONE_SOURCE: usize = 100;
/// The functional bound of the contract; measured figures are far below.
const ONE_SECOND: Duration = Duration::from_secs(1);

/// `count` idle TCP connections to `to`, from `PER_SOURCE` each of 127.`net`.0.0 onwards.
async fn idle_sockets(to: SocketAddr, net: u8, count: usize, per_source: usize) -> Vec<StdStream> {
    let base = u32::from(Ipv4Addr::new(127, net, 0, 1));
    let mut held = Vec::with_capacity(count);
    for i in 0..count {
        let source = Ipv4Addr::from(base + u32::try_from(i / per_source).unwrap());
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind((source, 0).into()).unwrap();
        let tcp = socket.connect(to).await.unwrap();
        held.push(tcp.into_std().unwrap());
    }
    held
}

/// How many of `sockets` the agent still holds open (reads until it would block).
fn still_open(sockets: &[StdStream]) -> usize {
    let mut buf = [0u8; 64];
    sockets
        .iter()
        .filter(|tcp| loop {
            match (&**tcp).read(&mut buf) {
                Ok(0) => break false,
                Ok(_) => continue,
                Err(err) if err.kind() == ErrorKind::WouldBlock => break true,
                Err(_) => break false,
            }
        })
        .count()
}

/// A free loopback port for the onboarding site.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// `GET /ca.pem` on the onboarding port from 127.0.0.1: the status line.
fn onboarding_get(addr: SocketAddr) -> String {
    let mut tcp = StdStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    tcp.write_all(b"GET /ca.pem HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    answer.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_flood_on_both_ports_neither_fails_a_payment_nor_delays_hello() {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap();
    assert!(
        limit >= 4 * FLOOD as u64,
        "open files limit {limit} too low"
    );
    let sim = spawn_sim(Behaviour::default()).await;
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let path = binary::write_config(dir.path(), &[("tpe-1", sim.addr())]);
    let onboarding: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let text = std::fs::read_to_string(&path).unwrap().replacen(
        "[server]\n",
        &format!("[server]\nonboarding = \"{onboarding}\"\n"),
        1,
    );
    std::fs::write(&path, text).unwrap();
    let process = Process::start_with_open_files(&path, OPEN_FILES).await;
    let agent = TestAgent::external(process.addr, dir);
    let (mut till, _) = connect_as(&agent, CASHIER).await;
    let before = process.open_files();

    let plain = idle_sockets(onboarding, 1, FLOOD, PER_SOURCE).await;
    let tls = idle_sockets(agent.addr, 2, FLOOD, PER_SOURCE).await;
    let single = idle_sockets(agent.addr, 3, ONE_SOURCE, ONE_SOURCE).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let during = process.open_files();

    let started = Instant::now();
    send(&mut till, pay("during-flood", "tpe-1", 1250)).await;
    let states = until_final(&mut till, "during-flood").await;
    let payment = started.elapsed();
    assert_eq!(states.last().unwrap()["state"], "approved");

    let started = Instant::now();
    let (_display, welcome) = connect_as(&agent, DISPLAY).await;
    let hello = started.elapsed();
    assert_eq!(welcome["type"], "welcome");

    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || onboarding_get(onboarding))
        .await
        .unwrap();
    let setup = started.elapsed();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");

    let held = (still_open(&plain), still_open(&tls), still_open(&single));
    eprintln!(
        "flood figures: agent open files {before} before, {during} during (limit {OPEN_FILES}); \
         held: onboarding {}/{FLOOD}, TLS {}/{FLOOD}, one address {}/{ONE_SOURCE}; \
         payment {payment:?}, hello {hello:?}, onboarding GET {setup:?}",
        held.0, held.1, held.2
    );
    assert!(during < OPEN_FILES as usize, "descriptors left: {during}");
    assert!(
        held.0 <= ONBOARDING_CONNECTIONS,
        "onboarding holds {}",
        held.0
    );
    assert!(
        held.1 < OPEN_FILES as usize - ONBOARDING_CONNECTIONS,
        "TLS holds {}",
        held.1
    );
    assert!(held.2 <= 64, "one address holds {}", held.2);
    assert!(payment < ONE_SECOND && hello < ONE_SECOND && setup < ONE_SECOND);
}

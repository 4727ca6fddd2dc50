//! `discover` on loopback ONLY (127.0.0.0/8): simulators on several 127.0.0.x addresses, a
//! port that accepts and never answers, one that answers garbage, a closed one, a configured
//! terminal that must not be probed, and the sweep's own time bound. The refusal of public
//! ranges is a unit test of the range check (`discover::range`): no sweep here, or anywhere,
//! ever targets an address outside 127.0.0.0/8. Also the operator page's search over the
//! WebSocket (`discover`): operators only, one a minute, the session answering meanwhile.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

use caisse_ap_relay::discover::{self, range, Answer};
use caisse_ap_relay::sim::{Behaviour, Simulator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const BIN: &str = env!("CARGO_BIN_EXE_caisse-ap-relay");

async fn bind(host: u8, port: u16) -> TcpListener {
    let addr = SocketAddr::from((Ipv4Addr::new(127, 0, 0, host), port));
    TcpListener::bind(addr).await.unwrap()
}

/// Accepts and holds every connection, reading and never writing.
fn silent(listener: TcpListener) {
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut sink = [0u8; 256];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
            });
        }
    });
}

/// Answers every connection with bytes that are not Caisse-AP.
fn garbage(listener: TcpListener) {
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
}

/// The LAN: two terminals (.2, .3), a silent port (.4), a garbage port (.5), nothing on .6,
/// a configured terminal on .7; all on one port.
struct Lan {
    port: u16,
    terminals: Vec<Simulator>,
    configured: Simulator,
}

async fn lan() -> Lan {
    let first = bind(2, 0).await;
    let port = first.local_addr().unwrap().port();
    let second = bind(3, port).await;
    silent(bind(4, port).await);
    garbage(bind(5, port).await);
    let configured = Simulator::spawn(bind(7, port).await, Behaviour::default());
    let terminals = vec![
        Simulator::spawn(first, Behaviour::default()),
        Simulator::spawn(second, Behaviour::default()),
    ];
    Lan {
        port,
        terminals,
        configured,
    }
}

#[tokio::test]
async fn the_sweep_finds_the_terminals_and_leaves_the_configured_one_alone() {
    let lan = lan().await;
    let net = range::subnet("127.0.0.0/28").unwrap();
    let hosts = range::hosts(net);
    let configured = [(lan.configured.addr(), "tpe-1".to_string())];
    let started = Instant::now();
    let findings = discover::sweep(&hosts, lan.port, &configured).await;
    let took = started.elapsed();
    let at = |host: u8| {
        let address = SocketAddr::from((Ipv4Addr::new(127, 0, 0, host), lan.port));
        findings
            .iter()
            .find(|f| f.address == address)
            .map(|f| &f.answer)
    };
    for host in [2, 3] {
        let Some(Answer::Terminal(identity)) = at(host) else {
            panic!("127.0.0.{host}: {findings:?}");
        };
        assert_eq!(identity.version, "0300");
        assert_eq!(identity.pos_id.as_deref(), Some("987654321098"));
    }
    assert!(matches!(at(4), Some(Answer::NoAnswer(_))), "{findings:?}");
    assert!(matches!(at(5), Some(Answer::NoAnswer(_))), "{findings:?}");
    assert_eq!(at(6), None);
    assert_eq!(at(7), Some(&Answer::Configured("tpe-1".into())));
    assert_eq!(
        lan.configured.request_count(),
        0,
        "a configured terminal got a request"
    );
    for sim in &lan.terminals {
        assert_eq!(sim.request_count(), 1, "one identification each");
        assert!(sim.requests()[0].ends_with("CD001I"));
    }
    let bound = discover::time_bound(hosts.len(), findings.len());
    assert!(
        took <= bound + Duration::from_secs(1),
        "{took:?} > {bound:?}"
    );
}

#[tokio::test]
async fn a_sweep_of_silent_ports_ends_within_its_bound() {
    let first = bind(9, 0).await;
    let port = first.local_addr().unwrap().port();
    silent(first);
    silent(bind(10, port).await);
    let hosts = range::hosts(range::subnet("127.0.0.8/29").unwrap());
    let started = Instant::now();
    let findings = discover::sweep(&hosts, port, &[]).await;
    let took = started.elapsed();
    assert_eq!(findings.len(), 2, "{findings:?}");
    assert!(findings
        .iter()
        .all(|f| matches!(f.answer, Answer::NoAnswer(_))));
    let bound = discover::time_bound(hosts.len(), 2);
    assert!(
        took <= bound + Duration::from_secs(1),
        "{took:?} > {bound:?}"
    );
}

#[tokio::test]
async fn the_cli_prints_blocks_that_parse_as_configuration() {
    let lan = lan().await;
    let dir = tempfile::tempdir().unwrap();
    let port = lan.port.to_string();
    let out = tokio::task::spawn_blocking({
        let dir = dir.path().to_owned();
        move || {
            Command::new(BIN)
                .args(["discover", "--subnet", "127.0.0.0/28", "--port", &port])
                .current_dir(dir)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.matches("[[terminal]]").count(), 3, "{text}");
    assert!(
        text.contains(&format!("address = \"127.0.0.2:{}\"", lan.port)),
        "{text}"
    );
    assert!(text.contains("open, no Caisse-AP answer"), "{text}");
    let file = dir.path().join("found.toml");
    std::fs::write(&file, &text).unwrap();
    let config = caisse_ap_relay::config::Config::load(&file).expect("blocks parse");
    assert_eq!(config.terminals.len(), 3);
    let bad = Command::new(BIN)
        .args(["discover", "--subnet", "127.0.0.0/16"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("/22 or smaller"));
}

/// The operator page's search (`discover` over the WebSocket, §11): terminals on .17 and
/// .18, the agent's configured terminal on .19 (never touched), a silent port on .20; the
/// session serves other messages while the sweep runs; one search a minute; operators only.
#[tokio::test]
async fn the_operator_searches_over_the_websocket_once_a_minute() {
    use crate::common::{self, connect_as, next_message, send, CASHIER, DISPLAY, OPERATOR, WAIT};
    use serde_json::json;

    let first = bind(17, 0).await;
    let port = first.local_addr().unwrap().port();
    let found = [
        Simulator::spawn(first, Behaviour::default()),
        Simulator::spawn(bind(18, port).await, Behaviour::default()),
    ];
    let configured = Simulator::spawn(bind(19, port).await, Behaviour::default());
    silent(bind(20, port).await);
    let agent = common::spawn_agent(vec![common::terminal("tpe-1", configured.addr(), WAIT)]).await;

    for token in [CASHIER, DISPLAY] {
        let (mut ws, _) = connect_as(&agent, token).await;
        send(
            &mut ws,
            json!({"type": "discover", "subnet": "127.0.0.16/29"}),
        )
        .await;
        let refused = next_message(&mut ws).await;
        assert_eq!(refused["code"], "forbidden", "{refused}");
    }
    let (mut office, _) = connect_as(&agent, OPERATOR).await;
    let search = json!({"type": "discover", "subnet": "127.0.0.16/29", "port": port});
    send(&mut office, search.clone()).await;
    let started = next_message(&mut office).await;
    assert_eq!(
        started,
        json!({"type": "discovering", "subnets": ["127.0.0.16/29"], "port": port})
    );
    // The silent port holds the sweep for seconds: the session answers meanwhile.
    send(&mut office, json!({"type": "terminals"})).await;
    assert_eq!(next_message(&mut office).await["type"], "terminals");
    let done = next_message(&mut office).await;
    assert_eq!(done["type"], "discovered", "{done}");
    let at = |host: u8| {
        let address = format!("127.0.0.{host}:{port}");
        let list = done["found"].as_array().unwrap();
        list.iter()
            .find(|f| f["address"] == address.as_str())
            .cloned()
    };
    for host in [17, 18] {
        let terminal = at(host).unwrap_or_else(|| panic!(".{host}: {done}"));
        assert_eq!(
            (
                &terminal["answer"],
                &terminal["version"],
                &terminal["pos_id"]
            ),
            (&json!("terminal"), &json!("0300"), &json!("987654321098"))
        );
        let block = terminal["block"].as_str().unwrap();
        assert!(block.starts_with("[[terminal]]\n"), "{block}");
        assert!(
            block.contains(&format!("address = \"127.0.0.{host}:{port}\"")),
            "{block}"
        );
    }
    let known = at(19).unwrap();
    assert_eq!(
        (&known["answer"], &known["name"]),
        (&json!("configured"), &json!("tpe-1"))
    );
    assert_eq!(at(20).unwrap()["answer"], "no_answer");
    assert_eq!(done["found"].as_array().unwrap().len(), 4, "{done}");
    assert_eq!(
        configured.request_count(),
        0,
        "the configured terminal was touched"
    );
    assert!(found.iter().all(|sim| sim.request_count() == 1));

    send(&mut office, search).await;
    let refused = next_message(&mut office).await;
    assert_eq!(refused["code"], "rate_limited", "{refused}");
    let wait = refused["retry_after"].as_u64().unwrap();
    assert!((50..=60).contains(&wait), "{refused}");
    let message = refused["message"].as_str().unwrap();
    assert!(message.contains(&format!("{wait} s")), "{message}");
    assert!(
        found.iter().all(|sim| sim.request_count() == 1),
        "no second sweep"
    );
    agent.stop().await;
}

//! Reloading the configuration of a running agent: terminals added, changed and removed
//! without losing the transaction in flight, tills closed when their token stops working,
//! a bad file refused whole, and SIGHUP on the built binary.

use crate::common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use caisse_ap_relay::agent::reload::{Changes, ReloadReport};
use caisse_ap_relay::config::{Config, ConfigError, Role, Secret, TerminalConfig, TillConfig};
use caisse_ap_relay::sim::{Behaviour, Simulator};
use common::binary::{write_config, Process};
use common::*;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// Long enough never to expire during a test: transactions here end by an answer.
const DEADLINE: Duration = Duration::from_secs(60);
/// Token of the till `till-3` that a reload adds.
const ADDED: &str = "added-token-0123456789";

/// A terminal address that accepts the agent's connection but passes it on to `target` only
/// once `release` is sent: the transaction stays in flight until the test says so.
async fn gate(target: SocketAddr) -> (SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (release, released) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut agent_side, _) = listener.accept().await.unwrap();
        if released.await.is_ok() {
            let mut terminal_side = TcpStream::connect(target).await.unwrap();
            let _ = tokio::io::copy_bidirectional(&mut agent_side, &mut terminal_side).await;
        }
    });
    (addr, release)
}

async fn sim() -> Simulator {
    spawn_sim(Behaviour::default()).await
}

/// The test configuration of `agent` with other `terminals`.
fn config_with(agent: &TestAgent, terminals: Vec<TerminalConfig>) -> Config {
    config(agent.dir.path(), terminals)
}

async fn reload(agent: &TestAgent, config: Config) -> ReloadReport {
    agent.reload.as_ref().unwrap().reload(config).await
}

/// `(name, state, current)` of each terminal `/healthz` lists.
async fn health(agent: &TestAgent) -> Vec<(String, String, Value)> {
    // `/healthz` shows no transaction ids (contract §7.4): a cashier's `terminals` does.
    let (mut ws, _) = connect_as(agent, CASHIER).await;
    send(&mut ws, json!({"type": "terminals"})).await;
    let body = next_message(&mut ws).await;
    let terminals = body["terminals"].as_array().unwrap().iter();
    let entry = |t: &Value| {
        let name = t["name"].as_str().unwrap().to_owned();
        (
            name,
            t["state"].as_str().unwrap().to_owned(),
            t["current"].clone(),
        )
    };
    terminals.map(entry).collect()
}

fn names(terminals: &Value) -> Vec<&str> {
    let list = terminals.as_array().unwrap().iter();
    list.map(|t| t["name"].as_str().unwrap()).collect()
}

/// Pays `amount` on `terminal` and returns the final state.
async fn pay_to_the_end(ws: &mut Ws, id: &str, terminal: &str) -> String {
    send(ws, pay(id, terminal, 1000)).await;
    let states = until_final(ws, id).await;
    states.last().unwrap()["state"].as_str().unwrap().to_owned()
}

/// An agent whose `tpe-1` reaches `sim` through a [`gate`], and a cashier socket whose
/// payment `k-1` (15.00 EUR) waits there in `waiting_card` until `release`.
async fn paying_through_gate(sim: &Simulator) -> (TestAgent, Ws, oneshot::Sender<()>) {
    let (gate, release) = gate(sim.addr()).await;
    let agent = spawn_agent(vec![terminal("tpe-1", gate, DEADLINE)]).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("k-1", "tpe-1", 1500)).await;
    until_state(&mut ws, "k-1", "waiting_card").await;
    (agent, ws, release)
}

fn changes(added: &[&str], changed: &[&str], removed: &[&str]) -> Changes {
    let owned = |names: &[&str]| names.iter().map(|n| n.to_string()).collect();
    Changes {
        added: owned(added),
        changed: owned(changed),
        removed: owned(removed),
    }
}

#[tokio::test]
async fn a_removed_terminal_finishes_its_transaction_and_refuses_new_ones() {
    let (old_sim, new_sim) = (sim().await, sim().await);
    let (agent, mut ws, release) = paying_through_gate(&old_sim).await;

    let report = reload(
        &agent,
        config_with(&agent, vec![terminal("tpe-2", new_sim.addr(), DEADLINE)]),
    )
    .await;
    assert_eq!(report.terminals, changes(&["tpe-2"], &[], &["tpe-1"]));
    let listed = health(&agent).await;
    assert_eq!(listed[0], ("tpe-2".into(), "idle".into(), Value::Null));
    assert_eq!(
        listed[1],
        ("tpe-1".into(), "busy".into(), json!("k-1")),
        "listed until idle"
    );

    // till-2 may use only tpe-2: its socket sees none of till-1's records.
    let (mut other, _) = connect_as(&agent, RESTRICTED).await;
    send(&mut other, pay("k-2", "tpe-1", 100)).await;
    let refused = next_message(&mut other).await;
    assert_eq!(
        (&refused["type"], &refused["code"]),
        (&json!("error"), &json!("unknown_terminal"))
    );
    assert_eq!(pay_to_the_end(&mut other, "k-3", "tpe-2").await, "approved");
    assert_eq!(new_sim.request_count(), 1);

    release.send(()).unwrap();
    let states = until_final(&mut ws, "k-1").await;
    assert_eq!(states.last().unwrap()["state"], "approved");
    assert_eq!(old_sim.request_count(), 1);

    // Journaled: a restarted agent replays the final record.
    let dir = Arc::clone(&agent.dir);
    agent.stop().await;
    let agent = spawn_agent_in(
        dir,
        vec![terminal("tpe-2", new_sim.addr(), DEADLINE)],
        options(),
    )
    .await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    let replayed = next_message(&mut ws).await;
    assert_eq!(
        (&replayed["id"], &replayed["state"]),
        (&json!("k-1"), &json!("approved"))
    );
}

#[tokio::test]
async fn a_changed_address_applies_from_the_next_transaction() {
    let (first, second) = (sim().await, sim().await);
    let (agent, mut ws, release) = paying_through_gate(&first).await;

    let report = reload(
        &agent,
        config_with(&agent, vec![terminal("tpe-1", second.addr(), DEADLINE)]),
    )
    .await;
    assert_eq!(report.terminals, changes(&[], &["tpe-1"], &[]));
    send(&mut ws, pay("k-2", "tpe-1", 100)).await;
    let busy = next_message(&mut ws).await;
    assert_eq!(
        (&busy["code"], &busy["current"]),
        (&json!("terminal_busy"), &json!("k-1"))
    );
    release.send(()).unwrap();
    let states = until_final(&mut ws, "k-1").await;
    assert_eq!(states.last().unwrap()["state"], "approved");
    assert_eq!(pay_to_the_end(&mut ws, "k-2", "tpe-1").await, "approved");

    assert_eq!(
        first.request_count(),
        1,
        "the running one kept the old address"
    );
    assert_eq!(
        second.request_count(),
        1,
        "the next one used the new address"
    );
}

#[tokio::test]
async fn tills_removed_or_changed_lose_their_sockets() {
    let sim = sim().await;
    let terminals = || {
        let addr = sim.addr();
        vec![
            terminal("tpe-1", addr, DEADLINE),
            terminal("tpe-2", addr, DEADLINE),
        ]
    };
    let agent = spawn_agent(terminals()).await;
    let (mut removed, _) = connect_as(&agent, RESTRICTED).await;
    let (mut restricted, _) = connect_as(&agent, DISPLAY).await;
    let (mut kept, _) = connect_as(&agent, CASHIER).await;

    let mut config = config_with(&agent, terminals());
    config.tills.retain(|t| t.name != "till-2");
    config.tills[1].terminals = Some(vec!["tpe-1".into()]);
    config.tills.push(TillConfig {
        name: "till-3".into(),
        token: Some(Secret(ADDED.into())),
        terminals: None,
        role: Role::Cashier,
    });
    let report = reload(&agent, config).await;
    assert_eq!(report.tills, changes(&["till-3"], &["screen"], &["till-2"]));

    assert_eq!(close_code(&mut removed).await, 4401);
    let mut ws = ws_connect(&agent, Some(ALLOWED_ORIGIN)).await.unwrap();
    send(&mut ws, json!({"type": "hello", "token": RESTRICTED})).await;
    assert_eq!(next_message(&mut ws).await["code"], "unauthorized");
    assert_eq!(close_code(&mut ws).await, 4401);

    // New rights apply from the next hello: the socket is closed for a reconnection.
    assert_eq!(close_code(&mut restricted).await, 1012);
    let (_, welcome) = connect_as(&agent, DISPLAY).await;
    assert_eq!(names(&welcome["terminals"]), ["tpe-1"]);
    let (_, welcome) = connect_as(&agent, ADDED).await;
    assert_eq!(welcome["till"], "till-3");
    send(&mut kept, json!({"type": "terminals"})).await;
    assert_eq!(
        next_message(&mut kept).await["type"],
        "terminals",
        "other tills stay"
    );
}

#[tokio::test]
async fn a_bad_file_is_refused_whole_and_settings_bound_at_start_stay() {
    let (first, second) = (sim().await, sim().await);
    let agent = spawn_agent(vec![terminal("tpe-1", first.addr(), DEADLINE)]).await;
    let handle = agent.reload.as_ref().unwrap();
    let file = write_config(
        agent.dir.path(),
        &[("tpe-1", second.addr()), ("Bad Name", second.addr())],
    );
    let refused = handle.reload_file(&file).await.unwrap_err();
    assert!(
        matches!(&refused, ConfigError::Invalid { field, .. } if field == "terminal[2].name"),
        "{refused}"
    );
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    assert_eq!(pay_to_the_end(&mut ws, "k-1", "tpe-1").await, "approved");
    assert_eq!((first.request_count(), second.request_count()), (1, 0));

    let elsewhere = agent.dir.path().join("elsewhere");
    let mut config = config_with(&agent, vec![terminal("tpe-1", first.addr(), DEADLINE)]);
    config.server.data_dir = elsewhere.clone();
    config.server.allowed_origins = vec!["https://other.example.com".into()];
    let report = reload(&agent, config).await;
    assert_eq!(report.needs_restart, ["server.data_dir"]);
    assert!(report.origins_changed);

    assert!(
        ws_connect(&agent, Some(ALLOWED_ORIGIN)).await.is_err(),
        "403: no longer allowed"
    );
    let mut ws = ws_connect(&agent, Some("https://other.example.com"))
        .await
        .unwrap();
    send(&mut ws, json!({"type": "hello", "token": CASHIER})).await;
    assert_eq!(next_message(&mut ws).await["type"], "welcome");
    assert_eq!(pay_to_the_end(&mut ws, "k-2", "tpe-1").await, "approved");
    assert!(!elsewhere.exists(), "the journal stays where it was opened");
}

#[tokio::test]
async fn sighup_makes_the_binary_reload_its_file() {
    let sim = sim().await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let file = write_config(dir.path(), &[("tpe-1", sim.addr())]);
    let mut process = Process::start(&file, &[]).await;
    let agent = TestAgent::external(process.addr, Arc::clone(&dir));
    let (mut ws, _) = connect_as(&agent, CASHIER).await;

    write_config(
        dir.path(),
        &[("tpe-1", sim.addr()), ("Bad Name", sim.addr())],
    );
    process.signal("HUP");
    let line = process.log_line("configuration reload refused").await;
    assert!(
        line.contains("ERROR") && line.contains("terminal[2].name"),
        "{line}"
    );

    write_config(dir.path(), &[("tpe-1", sim.addr()), ("tpe-2", sim.addr())]);
    process.signal("HUP");
    process.log_line("configuration reloaded").await;
    send(&mut ws, json!({"type": "terminals"})).await;
    assert_eq!(
        names(&next_message(&mut ws).await["terminals"]),
        ["tpe-1", "tpe-2"]
    );
    assert_eq!(pay_to_the_end(&mut ws, "k-1", "tpe-2").await, "approved");
}

/// §4 and §7.4 read `allowed_origins` from one place, which SIGHUP replaces: an origin the
/// new file adds may open `/ws` and import the client at once; one it removes may do neither.
#[tokio::test]
async fn sighup_changes_the_origins_of_websockets_and_cors_alike() {
    const ADDED_ORIGIN: &str = "https://added.example.com";
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let file = write_config(dir.path(), &[]);
    let mut process = Process::start(&file, &[]).await;
    let agent = TestAgent::external(process.addr, Arc::clone(&dir));
    assert_origin(&agent, ALLOWED_ORIGIN, true).await;
    assert_origin(&agent, ADDED_ORIGIN, false).await;

    let text = std::fs::read_to_string(&file).unwrap();
    let listed = format!("allowed_origins = [\"{ALLOWED_ORIGIN}\"]");
    assert!(text.contains(&listed), "{text}");
    let text = text.replace(&listed, &format!("allowed_origins = [\"{ADDED_ORIGIN}\"]"));
    std::fs::write(&file, text).unwrap();
    process.signal("HUP");
    let line = process.log_line("configuration reloaded").await;
    assert!(line.contains("origins_changed=true"), "{line}");
    assert_origin(&agent, ADDED_ORIGIN, true).await;
    assert_origin(&agent, ALLOWED_ORIGIN, false).await;
    process.terminate().await;
}

/// Whether a page of `origin` may open `/ws` and gets CORS headers on the client files and
/// `/lna-probe`: all of them when `allowed`, none otherwise.
async fn assert_origin(agent: &TestAgent, origin: &str, allowed: bool) {
    match ws_connect(agent, Some(origin)).await {
        Ok(mut ws) => {
            assert!(allowed, "{origin} opened /ws");
            send(&mut ws, json!({"type": "hello", "token": CASHIER})).await;
            assert_eq!(next_message(&mut ws).await["type"], "welcome");
        }
        Err(err) => assert!(!allowed, "{origin} refused: {err}"),
    }
    for path in ["/client.js", "/client.d.ts", "/lna-probe"] {
        let (_, headers, _) = https_get_with(agent, path, &[("Origin", origin)]).await;
        let cors = header(&headers, "access-control-allow-origin");
        assert_eq!(cors, allowed.then_some(origin), "{origin} on {path}");
    }
}

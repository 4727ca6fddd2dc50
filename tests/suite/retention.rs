//! Journal retention in a running agent: a finished record past `journal_retention` leaves
//! its memory as it would leave after a restart (`get` → `not_found`, a linked refund cannot
//! name it), while an unresolved `unknown` stays until resolved.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use caisse_ap_relay::config::Refunds;
use caisse_ap_relay::sim::{Behaviour, Fault};
use common::*;
use serde_json::{json, Value};

/// The next message that is not a replay after `welcome`; the replayed ids go to `replayed`.
async fn answer(ws: &mut Ws, replayed: &mut Vec<String>) -> Value {
    loop {
        let message = next_message(ws).await;
        if message["replay"] != true {
            return message;
        }
        replayed.push(message["id"].as_str().unwrap().to_owned());
    }
}

/// What `get` of `id` answers: the record's state, or the error's code.
async fn get(ws: &mut Ws, id: &str, replayed: &mut Vec<String>) -> Value {
    send(ws, json!({"type": "get", "id": id})).await;
    let reply = answer(ws, replayed).await;
    if reply["type"] == "error" {
        reply["code"].clone()
    } else {
        reply["state"].clone()
    }
}

/// What a new session of the cashier is told: the ids replayed after `welcome`, `old`'s and
/// `u-1`'s `get`, and the answer to a linked refund of `old`.
async fn seen(agent: &TestAgent) -> (Vec<String>, Value, Value, Value) {
    let (mut ws, _) = connect_as(agent, CASHIER).await;
    let mut replayed = Vec::new();
    let mut refund = pay("r-1", "tpe-2", 100);
    refund["action"] = json!("refund");
    refund["refund_of"] = json!("old");
    send(&mut ws, refund).await;
    let refused = answer(&mut ws, &mut replayed).await["code"].clone();
    let old = get(&mut ws, "old", &mut replayed).await;
    let unknown = get(&mut ws, "u-1", &mut replayed).await;
    (replayed, old, unknown, refused)
}

#[tokio::test]
async fn a_record_past_retention_leaves_a_running_agent_as_it_would_a_restart() {
    let closing = spawn_sim(Behaviour::with_fault(Fault::Close)).await;
    let approving = spawn_sim(Behaviour::default()).await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let terminals = vec![
        terminal("tpe-1", closing.addr(), Duration::from_secs(30)),
        terminal("tpe-2", approving.addr(), Duration::from_secs(30)),
    ];
    let mut config = config(dir.path(), terminals);
    config.server.journal_retention = Duration::from_secs(1);
    config.server.refunds = Refunds::Linked;
    let agent = spawn_agent_with(Arc::clone(&dir), &config, options()).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("old", "tpe-2", 700)).await;
    let last = until_final(&mut ws, "old").await.pop().unwrap();
    assert_eq!(last["state"], "approved");
    send(&mut ws, pay("u-1", "tpe-1", 800)).await;
    let last = until_final(&mut ws, "u-1").await.pop().unwrap();
    assert_eq!(last["state"], "unknown");
    let mut none = Vec::new();
    assert_eq!(get(&mut ws, "old", &mut none).await, "approved");

    // The agent prunes every `retention` (here 1 s) with the journal's rule.
    let deadline = Instant::now() + Duration::from_secs(15);
    while get(&mut ws, "old", &mut none).await != "not_found" {
        assert!(
            Instant::now() < deadline,
            "`old` never left the running agent"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let running = seen(&agent).await;
    let expected = (vec!["u-1".to_owned()], json!("not_found"), json!("unknown"));
    assert_eq!(
        (running.0.clone(), running.1.clone(), running.2.clone()),
        expected
    );
    assert_eq!(running.3, "not_found", "a linked refund cannot name it");
    agent.stop().await;

    let restarted = spawn_agent_with(dir, &config, options()).await;
    assert_eq!(seen(&restarted).await, running, "as after a restart");
    restarted.stop().await;
}

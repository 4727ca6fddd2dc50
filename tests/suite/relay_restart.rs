//! The built binary, killed with SIGKILL while a terminal holds a request: after a restart
//! the transaction is `unknown` (`agent_restart`) and the request was never sent again.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use caisse_ap_relay::sim::{Behaviour, Fault, Outcome};
use common::binary::{write_config, Process};
use common::*;
use serde_json::json;

#[tokio::test]
async fn a_killed_agent_settles_the_sent_transaction_as_unknown_without_resending() {
    let sim = spawn_sim(Behaviour {
        outcome: Outcome::Approved,
        fault: Some(Fault::Hang),
        delay: Duration::ZERO,
        magic_amounts: false,
    })
    .await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let config = write_config(dir.path(), &[("tpe-1", sim.addr())]);

    let mut first = Process::start(&config, &[]).await;
    let agent = TestAgent::external(first.addr, Arc::clone(&dir));
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("k-1", "tpe-1", 2500)).await;
    until_state(&mut ws, "k-1", "waiting_card").await;
    first.kill();

    let mut second = Process::start(&config, &[]).await;
    let agent = TestAgent::external(second.addr, Arc::clone(&dir));
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    let replayed = next_message(&mut ws).await;
    assert_eq!(replayed["id"], "k-1");
    send(&mut ws, json!({"type": "get", "id": "k-1"})).await;
    let record = next_message(&mut ws).await;
    assert_eq!(record["state"], "unknown");
    assert_eq!(record["result"]["reason"], "agent_restart");
    assert_eq!(sim.request_count(), 1, "the request was never sent again");
    second.kill();
}

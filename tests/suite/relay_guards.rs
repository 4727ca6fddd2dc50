//! The safety guards of contract v2 §10 over the wire: an unresolved `unknown` blocks its
//! terminal until a cashier allowed there (or `caisse-ap-relay resolve`) resolves it, the
//! same payment twice within the window needs `confirm_duplicate`, and linked refunds are
//! capped by their debit. Also §7.1's `replay` flag on `watch` answers and after `welcome`.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use caisse_ap_relay::config::{Config, Refunds, Role};
use caisse_ap_relay::sim::{Behaviour, Fault};
use common::binary::{write_config, Process};
use common::*;
use serde_json::json;

const TILL_3: &str = "till-3-token-0123456789";
const DEADLINE: Duration = Duration::from_secs(30);

fn closing() -> Behaviour {
    Behaviour::with_fault(Fault::Close)
}

/// The test configuration with the guards on as shipped, `refunds`, and a third cashier
/// `till-3` allowed on `tpe-1`.
fn guarded(dir: &std::path::Path, sim: std::net::SocketAddr, refunds: Refunds) -> Config {
    let mut terminal = terminal("tpe-1", sim, DEADLINE);
    terminal.guard_unknown = true;
    let mut config = config(dir, vec![terminal]);
    config.server.duplicate_window = Duration::from_secs(60);
    config.server.refunds = refunds;
    config
        .tills
        .push(till("till-3", TILL_3, Role::Cashier, Some(&["tpe-1"])));
    config
}

async fn start(
    behaviour: Behaviour,
    refunds: Refunds,
) -> (TestAgent, caisse_ap_relay::sim::Simulator) {
    let sim = spawn_sim(behaviour).await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let config = guarded(dir.path(), sim.addr(), refunds);
    (spawn_agent_with(dir, &config, options()).await, sim)
}

#[tokio::test]
async fn an_unknown_blocks_its_terminal_until_a_cashier_there_resolves_it() {
    let (agent, sim) = start(closing(), Refunds::Free).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("u-1", "tpe-1", 1245)).await;
    assert_eq!(
        until_final(&mut ws, "u-1").await.last().unwrap()["state"],
        "unknown"
    );

    let refused = error_of(&mut ws, pay("u-2", "tpe-1", 500)).await;
    assert_eq!(refused["code"], "unresolved_unknown");
    assert_eq!(refused["pending"], "u-1");
    assert_eq!(refused["id"], "u-2");
    assert!(refused["message"].as_str().unwrap().contains("resolve"));
    assert_eq!(
        sim.request_count(),
        1,
        "nothing was sent for the refused pay"
    );

    // Another cashier allowed on tpe-1 may read and resolve it; one not allowed may not.
    let (mut other, _) = connect_as(&agent, TILL_3).await;
    let refused = error_of(&mut other, pay("u-3", "tpe-1", 700)).await;
    assert_eq!(refused["pending"], "u-1");
    send(&mut other, json!({"type": "get", "id": "u-1"})).await;
    let record = next_message(&mut other).await;
    assert_eq!(
        (&record["id"], &record["till"]),
        (&json!("u-1"), &json!("till-1"))
    );
    let (mut elsewhere, _) = connect_as(&agent, RESTRICTED).await;
    let denied = error_of(&mut elsewhere, json!({"type": "get", "id": "u-1"})).await;
    assert_eq!(denied["code"], "not_found");

    send(
        &mut other,
        json!({"type": "resolve", "id": "u-1", "outcome": "not_charged"}),
    )
    .await;
    let answered = until_state(&mut other, "u-1", "unknown").await;
    assert_eq!(
        answered["resolution"]["till"], "till-3",
        "the resolver sees its decision"
    );
    let resolved = until_state(&mut ws, "u-1", "unknown").await;
    let resolution = &resolved["resolution"];
    assert_eq!(resolution["till"], "till-3");
    assert_eq!(resolution["by_role"], "cashier");
    assert_eq!(resolution["outcome"], "not_charged");

    // Resolved: the terminal takes payments again, and the resolved one no longer names it.
    send(&mut ws, pay("u-2", "tpe-1", 500)).await;
    assert_eq!(until_state(&mut ws, "u-2", "accepted").await["amount"], 500);
    let denied = error_of(&mut other, json!({"type": "get", "id": "u-1"})).await;
    assert_eq!(
        denied["code"], "not_found",
        "the exception ends with the block"
    );
    agent.stop().await;
}

#[tokio::test]
async fn the_same_payment_twice_needs_a_confirmation_and_is_journaled_so() {
    let (agent, sim) = start(Behaviour::default(), Refunds::Free).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("d-1", "tpe-1", 1245)).await;
    let first = until_final(&mut ws, "d-1").await.pop().unwrap();
    assert_eq!(first["state"], "approved");
    assert!(first.get("confirm_duplicate").is_none(), "{first}");

    let refused = error_of(&mut ws, pay("d-2", "tpe-1", 1245)).await;
    assert_eq!(refused["code"], "possible_duplicate");
    assert_eq!(refused["previous"], "d-1");
    assert_eq!(sim.request_count(), 1);

    let mut confirmed = pay("d-2", "tpe-1", 1245);
    confirmed["confirm_duplicate"] = json!(true);
    send(&mut ws, confirmed).await;
    let last = until_final(&mut ws, "d-2").await.pop().unwrap();
    assert_eq!(last["state"], "approved");
    assert_eq!(last["confirm_duplicate"], true);

    // A replayed pay is not a new payment: no guard, no id_conflict over the flag.
    send(&mut ws, pay("d-2", "tpe-1", 1245)).await;
    let replayed = next_message(&mut ws).await;
    assert_eq!(
        (&replayed["type"], &replayed["id"]),
        (&json!("transaction"), &json!("d-2"))
    );
    // Another amount is not a duplicate.
    send(&mut ws, pay("d-3", "tpe-1", 1246)).await;
    assert_eq!(
        until_final(&mut ws, "d-3").await.last().unwrap()["state"],
        "approved"
    );
    agent.stop().await;
}

#[tokio::test]
async fn linked_refunds_name_an_approved_debit_and_stay_within_it() {
    let (agent, _sim) = start(Behaviour::default(), Refunds::Linked).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("sale", "tpe-1", 1245)).await;
    until_final(&mut ws, "sale").await;

    let mut refund = pay("r-1", "tpe-1", 1000);
    refund["action"] = json!("refund");
    assert_eq!(
        error_of(&mut ws, refund.clone()).await["code"],
        "bad_request"
    );
    refund["refund_of"] = json!("nothing");
    assert_eq!(error_of(&mut ws, refund.clone()).await["code"], "not_found");
    refund["refund_of"] = json!("sale");
    refund["amount"] = json!(1246);
    let exceeds = error_of(&mut ws, refund.clone()).await;
    assert_eq!(exceeds["code"], "refund_exceeds");
    assert_eq!(exceeds["refundable"], 1245);

    refund["amount"] = json!(1000);
    send(&mut ws, refund.clone()).await;
    let done = until_final(&mut ws, "r-1").await.pop().unwrap();
    assert_eq!(
        (&done["state"], &done["refund_of"]),
        (&json!("approved"), &json!("sale"))
    );

    refund["id"] = json!("r-2");
    refund["amount"] = json!(300);
    let exceeds = error_of(&mut ws, refund).await;
    assert_eq!(exceeds["refundable"], 245, "{exceeds}");
    agent.stop().await;
}

#[tokio::test]
async fn replays_after_welcome_and_watch_answers_are_marked() {
    let (agent, _sim) = start(Behaviour::default(), Refunds::Free).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("p-1", "tpe-1", 100)).await;
    for live in until_final(&mut ws, "p-1").await {
        assert!(live.get("replay").is_none(), "{live}");
    }
    let (mut again, _) = connect_as(&agent, CASHIER).await;
    let replayed = next_message(&mut again).await;
    assert_eq!(
        (&replayed["id"], &replayed["replay"]),
        (&json!("p-1"), &json!(true))
    );
    let (mut screen, _) = connect_as(&agent, DISPLAY).await;
    send(&mut screen, json!({"type": "watch", "terminal": "tpe-1"})).await;
    let latest = next_message(&mut screen).await;
    assert_eq!(
        (&latest["id"], &latest["replay"]),
        (&json!("p-1"), &json!(true))
    );
    agent.stop().await;
}

/// Runs `caisse-ap-relay resolve` with `args`; returns its exit code and output.
async fn resolve_cli(args: &[&str]) -> (i32, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_caisse-ap-relay"))
            .arg("resolve")
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

#[tokio::test]
async fn the_resolve_command_works_beside_a_running_agent_and_without_one() {
    let one = spawn_sim(closing()).await;
    let two = spawn_sim(closing()).await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let config = write_config(dir.path(), &[("tpe-1", one.addr()), ("tpe-2", two.addr())]);
    let config_arg = config.to_str().unwrap();
    let process = Process::start(&config, &[]).await;
    let agent = TestAgent::external(process.addr, Arc::clone(&dir));
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    for (id, terminal) in [("c-1", "tpe-1"), ("c-2", "tpe-2")] {
        send(&mut ws, pay(id, terminal, 990)).await;
        assert_eq!(
            until_final(&mut ws, id).await.last().unwrap()["state"],
            "unknown"
        );
    }

    let (code, text) =
        resolve_cli(&["nope", "--outcome", "approved", "--config", config_arg]).await;
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("nope"), "{text}");
    let (code, text) = resolve_cli(&[
        "c-1",
        "--outcome",
        "not_charged",
        "--note",
        "ticket says nothing",
        "--config",
        config_arg,
    ])
    .await;
    assert_eq!(code, 0, "{text}");
    let resolved = until_state(&mut ws, "c-1", "unknown").await;
    assert_eq!(resolved["resolution"]["by_role"], "cli");
    assert_eq!(resolved["resolution"]["till"], "cli");
    assert_eq!(resolved["resolution"]["note"], "ticket says nothing");
    send(&mut ws, pay("c-3", "tpe-1", 120)).await;
    until_state(&mut ws, "c-3", "accepted").await;
    until_final(&mut ws, "c-3").await;
    drop(ws);
    process.terminate().await;

    let (code, text) = resolve_cli(&["c-2", "--outcome", "approved", "--config", config_arg]).await;
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("c-2") && text.contains("approved"), "{text}");
    let process = Process::start(&config, &[]).await;
    let agent = TestAgent::external(process.addr, Arc::clone(&dir));
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, json!({"type": "get", "id": "c-2"})).await;
    let record = until_state(&mut ws, "c-2", "unknown").await;
    assert_eq!(record["resolution"]["by_role"], "cli", "{record}");
    assert_eq!(record["resolution"]["outcome"], "approved");
    process.terminate().await;
}

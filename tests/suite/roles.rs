//! Contract v2 §7.3 over the wire: what each role may do and see. A display, and a cashier
//! watching another till's payment, get records redacted (live, amended, on `watch` and
//! after `welcome`); an operator never pays but reads, resolves and follows every till, and
//! alone gets `status`; `pair --role operator` makes one; the agent says at start how to
//! pair one when there is none. Finding 6 of the penetration test (issue 12).

use crate::common;

use std::sync::Arc;

use caisse_ap_relay::config::{Role, TerminalConfig};
use caisse_ap_relay::protocol::{TicketCopy, TicketFormat, TicketRequest};
use caisse_ap_relay::sim::{Behaviour, Fault, Simulator};
use common::binary::{pairing_code, write_config, Process};
use common::*;
use serde_json::{json, Value};

/// The fields a redacted record leaves out (§7.3, and §11 for the ticket).
const CARD_DATA: [&str; 4] = ["card", "authorization", "raw", "ticket"];

/// A terminal that asks for both tickets, so records carry every kind of card data.
fn ticketing(name: &str, sim: &Simulator) -> TerminalConfig {
    let mut terminal = terminal(name, sim.addr(), WAIT);
    terminal.ticket = Some(TicketRequest {
        copy: TicketCopy::Both,
        format: TicketFormat::Text,
    });
    terminal
}

/// An agent with `tpe-1` and `tpe-2` on one simulator behaving as `behaviour`, draining
/// as shipped (so fields sent after the decision amend the record).
async fn shop(behaviour: Behaviour) -> (TestAgent, Simulator) {
    let sim = spawn_sim(behaviour).await;
    let terminals = vec![ticketing("tpe-1", &sim), ticketing("tpe-2", &sim)];
    let mut options = options();
    options.engine.drain = caisse_ap_relay::engine::EngineOptions::default().drain;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    (spawn_agent_in(dir, terminals, options).await, sim)
}

/// The card data `record` carries, by field name.
fn card_data(record: &Value) -> Vec<&'static str> {
    let result = &record["result"];
    let mut found: Vec<&str> = CARD_DATA
        .into_iter()
        .filter(|field| result.get(*field).is_some())
        .collect();
    if record.get("receipt").is_some() {
        found.push("receipt");
    }
    found
}

fn assert_redacted(record: &Value) {
    assert_eq!(card_data(record), Vec::<&str>::new(), "{record}");
}

fn assert_full(record: &Value) {
    let mut expected = CARD_DATA.to_vec();
    expected.push("receipt");
    assert_eq!(card_data(record), expected, "{record}");
}

/// Transaction messages of `id` until the one at `seq` or later.
async fn until_seq(ws: &mut Ws, id: &str, seq: u64) -> Vec<Value> {
    until(ws, id, |record| record["seq"].as_u64() >= Some(seq)).await
}

/// Pays `id` and reads the payer's records until the amendment that brings the card
/// details after the decision (`split-after-ae`); returns them all, the amendment last.
async fn pay_to_the_details(ws: &mut Ws, id: &str, terminal: &str) -> Vec<Value> {
    send(ws, pay(id, terminal, 1000)).await;
    let mut seen = until_final(ws, id).await;
    while seen.last().unwrap()["result"].get("ticket").is_none() {
        seen.push(next_message(ws).await);
    }
    seen
}

#[tokio::test]
async fn a_display_sees_records_redacted_live_amended_on_watch_and_on_get() {
    let (agent, _sim) = shop(Behaviour::with_fault(Fault::SplitAfterAe)).await;
    let (mut screen, _) = connect_as(&agent, DISPLAY).await;
    send(&mut screen, json!({"type": "watch", "terminal": "tpe-1"})).await;
    let (mut cashier, _) = connect_as(&agent, CASHIER).await;

    let paid = pay_to_the_details(&mut cashier, "d-1", "tpe-1").await;
    let amended = paid.last().unwrap();
    assert_eq!(amended["state"], "approved");
    assert_full(amended);
    let decided = paid.iter().find(|r| r["state"] == "approved").unwrap();
    assert!(decided["seq"].as_u64() < amended["seq"].as_u64());

    let seen = until_seq(&mut screen, "d-1", amended["seq"].as_u64().unwrap()).await;
    assert!(seen.len() >= 4, "accepted … approved, amended: {seen:?}");
    seen.iter().for_each(assert_redacted);
    let last = seen.last().unwrap();
    assert_eq!(
        (&last["state"], &last["amount"], &last["result"]["ae"]),
        (&json!("approved"), &json!(1000), &json!("10")),
        "the outcome stays: {last}"
    );
    assert!(last.get("replay").is_none());

    send(&mut screen, json!({"type": "watch", "terminal": "tpe-1"})).await;
    let latest = next_message(&mut screen).await;
    assert_eq!(
        (&latest["id"], &latest["replay"]),
        (&json!("d-1"), &json!(true))
    );
    assert_redacted(&latest);
    send(&mut screen, json!({"type": "get", "id": "d-1"})).await;
    assert_redacted(&next_message(&mut screen).await);
    agent.stop().await;
}

#[tokio::test]
async fn a_watching_cashier_sees_other_tills_records_redacted_and_its_own_in_full() {
    let (agent, _sim) = shop(Behaviour::default()).await;
    // `till-2` may use `tpe-2` only; `till-1` pays there too.
    let (mut till_2, _) = connect_as(&agent, RESTRICTED).await;
    send(&mut till_2, json!({"type": "watch", "terminal": "tpe-2"})).await;
    let (mut till_1, _) = connect_as(&agent, CASHIER).await;

    let theirs = pay_to_the_details(&mut till_1, "w-1", "tpe-2").await;
    assert_full(theirs.last().unwrap());
    let seq = theirs.last().unwrap()["seq"].as_u64().unwrap();
    until_seq(&mut till_2, "w-1", seq)
        .await
        .iter()
        .for_each(assert_redacted);

    let mine = pay_to_the_details(&mut till_2, "w-2", "tpe-2").await;
    assert_full(mine.last().unwrap());

    // On `watch` the latest record is the watcher's own, in full; after another till's
    // next payment, that one is replayed redacted.
    send(&mut till_2, json!({"type": "watch", "terminal": "tpe-2"})).await;
    let latest = next_message(&mut till_2).await;
    assert_eq!(latest["id"], "w-2");
    assert_full(&latest);
    let theirs = pay_to_the_details(&mut till_1, "w-3", "tpe-2").await;
    let seq = theirs.last().unwrap()["seq"].as_u64().unwrap();
    until_seq(&mut till_2, "w-3", seq).await;
    let (mut again, _) = connect_as(&agent, RESTRICTED).await;
    // After `welcome`: its own recent payment, in full.
    let replayed = next_message(&mut again).await;
    assert_eq!(
        (&replayed["id"], &replayed["replay"]),
        (&json!("w-2"), &json!(true))
    );
    assert_full(&replayed);
    send(&mut again, json!({"type": "watch", "terminal": "tpe-2"})).await;
    let latest = next_message(&mut again).await;
    assert_eq!(
        (&latest["id"], &latest["replay"]),
        (&json!("w-3"), &json!(true))
    );
    assert_redacted(&latest);
    // And `get` of another till's record stays refused to a cashier.
    let denied = error_of(&mut again, json!({"type": "get", "id": "w-3"})).await;
    assert_eq!(denied["code"], "not_found");
    agent.stop().await;
}

#[tokio::test]
async fn status_answers_an_operator_and_refuses_the_other_roles() {
    let (agent, _sim) = shop(Behaviour::default()).await;
    for token in [CASHIER, DISPLAY, RESTRICTED] {
        let (mut ws, welcome) = connect_as(&agent, token).await;
        let refused = error_of(&mut ws, json!({"type": "status"})).await;
        assert_eq!(refused["code"], "forbidden", "{}", welcome["role"]);
        let message = refused["message"].as_str().unwrap();
        assert!(message.contains("pair --role operator"), "{message}");
    }
    let (mut office, welcome) = connect_as(&agent, OPERATOR).await;
    assert_eq!(
        (&welcome["till"], &welcome["role"]),
        (&json!("office"), &json!("operator"))
    );
    send(&mut office, json!({"type": "status"})).await;
    let status = next_message(&mut office).await;
    assert_eq!(status["type"], "status");
    assert_eq!(status["terminals"].as_array().unwrap().len(), 2);
    agent.stop().await;
}

#[tokio::test]
async fn an_operator_never_pays_but_follows_reads_and_resolves_every_till() {
    let (agent, sim) = shop(Behaviour::with_fault(Fault::WrongEcho)).await;
    // Two unknowns from two tills, and one approved payment.
    let (mut till_1, _) = connect_as(&agent, CASHIER).await;
    let (mut till_2, _) = connect_as(&agent, RESTRICTED).await;
    send(&mut till_1, pay("u-1", "tpe-1", 100)).await;
    assert_eq!(
        until_final(&mut till_1, "u-1").await.pop().unwrap()["state"],
        "unknown"
    );
    send(&mut till_2, pay("u-2", "tpe-2", 200)).await;
    assert_eq!(
        until_final(&mut till_2, "u-2").await.pop().unwrap()["state"],
        "unknown"
    );
    sim.set_behaviour(Behaviour::default());
    send(&mut till_1, pay("ok-1", "tpe-1", 300)).await;
    until_final(&mut till_1, "ok-1").await;
    let requests = sim.request_count();

    // `welcome`, then every till's unresolved unknown (in full), and nothing else.
    let (mut office, _) = connect_as(&agent, OPERATOR).await;
    let mut replayed = Vec::new();
    for _ in 0..2 {
        let record = next_message(&mut office).await;
        assert_eq!(record["replay"], true, "{record}");
        assert!(record["result"]["raw"].is_string(), "in full: {record}");
        replayed.push(record["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(replayed, ["u-1", "u-2"]);

    for message in [
        pay("op-1", "tpe-1", 100),
        json!({"type": "cancel", "id": "ok-1"}),
    ] {
        let refused = error_of(&mut office, message).await;
        assert_eq!(refused["code"], "forbidden", "{refused}");
    }
    assert_eq!(
        sim.request_count(),
        requests,
        "the operator's pay sent nothing"
    );

    send(&mut office, json!({"type": "get", "id": "ok-1"})).await;
    let got = next_message(&mut office).await;
    assert_eq!(
        (&got["id"], &got["till"]),
        (&json!("ok-1"), &json!("till-1"))
    );
    assert_full(&got);

    send(
        &mut office,
        json!({"type": "resolve", "id": "u-2", "outcome": "not_charged", "note": "ticket vu"}),
    )
    .await;
    let resolved = until_state(&mut office, "u-2", "unknown").await;
    assert_eq!(
        (
            &resolved["resolution"]["by_role"],
            &resolved["resolution"]["till"]
        ),
        (&json!("operator"), &json!("office"))
    );
    let seen_by_till = loop {
        let record = until_state(&mut till_2, "u-2", "unknown").await;
        if record.get("resolution").is_some() {
            break record;
        }
    };
    assert_eq!(seen_by_till["resolution"]["by_role"], "operator");

    // Live: another till's payment reaches the operator in full, without `watch`.
    send(&mut till_2, pay("live-1", "tpe-2", 400)).await;
    let live = until_final(&mut office, "live-1").await.pop().unwrap();
    assert_eq!(live["state"], "approved");
    assert!(live["result"]["authorization"].is_string(), "{live}");
    agent.stop().await;
}

#[tokio::test]
async fn a_cashier_on_a_blocked_terminal_gets_the_blocking_record_in_full() {
    let sim = spawn_sim(Behaviour::with_fault(Fault::WrongEcho)).await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut tpe = terminal("tpe-2", sim.addr(), WAIT);
    tpe.guard_unknown = true;
    let config = config(dir.path(), vec![tpe]);
    let agent = spawn_agent_with(dir, &config, options()).await;
    let (mut till_1, _) = connect_as(&agent, CASHIER).await;
    send(&mut till_1, pay("b-1", "tpe-2", 100)).await;
    until_final(&mut till_1, "b-1").await;
    let (mut till_2, _) = connect_as(&agent, RESTRICTED).await;
    send(&mut till_2, json!({"type": "watch", "terminal": "tpe-2"})).await;
    let watched = next_message(&mut till_2).await;
    assert_eq!(watched["id"], "b-1");
    assert!(
        watched["result"].get("raw").is_none(),
        "redacted on watch: {watched}"
    );
    let refused = error_of(&mut till_2, pay("b-2", "tpe-2", 100)).await;
    assert_eq!(
        (&refused["code"], &refused["pending"]),
        (&json!("unresolved_unknown"), &json!("b-1"))
    );
    send(&mut till_2, json!({"type": "get", "id": "b-1"})).await;
    let got = next_message(&mut till_2).await;
    assert!(
        got["result"]["raw"].is_string(),
        "in full under §7.3's exception: {got}"
    );
    send(
        &mut till_2,
        json!({"type": "resolve", "id": "b-1", "outcome": "not_charged"}),
    )
    .await;
    let resolved = until_state(&mut till_2, "b-1", "unknown").await;
    assert_eq!(resolved["resolution"]["till"], "till-2");
    agent.stop().await;
}

/// The hint's words: how to pair an operator.
const HINT: &str = "caisse-ap-relay pair --role operator";

#[tokio::test]
async fn pair_role_operator_makes_an_operator_and_the_start_hint_goes_away() {
    let sim = spawn_sim(Behaviour::default()).await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let config = write_config(dir.path(), &[("tpe-1", sim.addr())]);
    let mut agent = Process::start(&config, &[]).await;
    let hint = agent.log_line("no operator till").await;
    assert!(hint.contains(HINT), "{hint}");

    let output = tokio::task::spawn_blocking({
        let config = config.clone();
        move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_caisse-ap-relay"))
                .args([
                    "pair",
                    "--role",
                    "operator",
                    "--till",
                    "back-office",
                    "--config",
                ])
                .arg(config)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{printed}");
    let code = pairing_code(&printed);

    let external = TestAgent::external(agent.addr, Arc::clone(&dir));
    let mut ws = ws_connect(&external, Some(ALLOWED_ORIGIN)).await.unwrap();
    send(&mut ws, json!({"type": "pair", "code": code})).await;
    let paired = next_message(&mut ws).await;
    assert_eq!(paired["till"], "back-office", "{paired}");
    let token = paired["token"].as_str().unwrap().to_owned();
    send(&mut ws, json!({"type": "hello", "token": token})).await;
    let welcome = next_message(&mut ws).await;
    assert_eq!(welcome["role"], "operator", "{welcome}");
    send(&mut ws, json!({"type": "status"})).await;
    assert_eq!(next_message(&mut ws).await["type"], "status");
    drop(ws);
    let logs = agent.terminate().await;
    assert!(!logs.contains("no operator till"), "one hint line: {logs}");

    let listed = std::process::Command::new(env!("CARGO_BIN_EXE_caisse-ap-relay"))
        .args(["till", "list", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    let row = listed
        .lines()
        .find(|l| l.starts_with("back-office"))
        .unwrap();
    assert!(row.contains("operator"), "{listed}");

    let agent = Process::start(&config, &[]).await;
    let logs = agent.terminate().await;
    assert!(
        !logs.contains(HINT),
        "no hint once an operator exists: {logs}"
    );
}

#[test]
fn an_operator_in_the_configuration_counts_too() {
    let dir = tempfile::tempdir().unwrap();
    let office = till("office", OPERATOR, Role::Operator, None);
    let cashier = till("till-1", CASHIER, Role::Cashier, None);
    let with = caisse_ap_relay::access::Access::new(&[cashier.clone(), office], dir.path());
    assert!(with.unwrap().has_operator());
    let without = caisse_ap_relay::access::Access::new(&[cashier], dir.path());
    assert!(!without.unwrap().has_operator());
}

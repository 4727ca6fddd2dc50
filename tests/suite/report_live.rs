//! The day report from a journal written by a real agent: approved, partial, refunded,
//! declined, not sent and unknown payments (one resolved) made over wss, then the built
//! binary's `report --csv` totals them.

use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use caisse_ap_relay::sim::{Behaviour, Fault, Outcome};
use common::binary::write_config;
use common::*;
use serde_json::json;

/// Sends the `pay` message and waits for its final state, which must be `state`.
async fn pay_until(ws: &mut Ws, message: serde_json::Value, state: &str) {
    let id = message["id"].as_str().unwrap().to_owned();
    send(ws, message).await;
    let seen = until_final(ws, &id).await;
    assert_eq!(seen.last().unwrap()["state"], state, "{id}: {seen:?}");
}

/// The CSV lines by terminal, each as column → value.
fn rows(csv: &str) -> HashMap<String, HashMap<String, String>> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|line| {
            let row: HashMap<String, String> = header
                .iter()
                .zip(line.split(','))
                .map(|(column, value)| (column.to_string(), value.to_string()))
                .collect();
            (row["terminal"].clone(), row)
        })
        .collect()
}

#[tokio::test]
async fn report_totals_what_the_agent_journaled() {
    let sim = spawn_sim(Behaviour::default()).await;
    let nowhere = closed_port().await;
    let timeout = Duration::from_secs(30);
    let terminals = [("tpe-1", sim.addr()), ("tpe-off", nowhere)];
    let agent = spawn_agent(
        terminals
            .iter()
            .map(|(name, addr)| terminal(name, addr, timeout))
            .collect(),
    )
    .await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;

    pay_until(&mut ws, pay("r-ok", "tpe-1", 1000), "approved").await;
    let mut refund = pay("r-back", "tpe-1", 300);
    refund["action"] = json!("refund");
    pay_until(&mut ws, refund, "approved").await;
    let set = |outcome, fault| Behaviour {
        outcome,
        fault,
        ..Behaviour::default()
    };
    sim.set_behaviour(set(Outcome::Partial(600), None));
    pay_until(&mut ws, pay("r-part", "tpe-1", 1500), "approved").await;
    sim.set_behaviour(set(Outcome::Declined("05".into()), None));
    pay_until(&mut ws, pay("r-no", "tpe-1", 700), "declined").await;
    sim.set_behaviour(set(Outcome::Approved, Some(Fault::Close)));
    pay_until(&mut ws, pay("r-lost", "tpe-1", 450), "unknown").await;
    pay_until(&mut ws, pay("r-open", "tpe-1", 220), "unknown").await;
    pay_until(&mut ws, pay("r-off", "tpe-off", 800), "not_sent").await;
    let resolve = json!({"type": "resolve", "id": "r-lost", "outcome": "approved"});
    send(&mut ws, resolve).await;
    let resolved = next_message(&mut ws).await;
    assert_eq!(resolved["resolution"]["outcome"], "approved", "{resolved}");
    drop(ws);
    let dir = agent.dir.clone();
    agent.stop().await;

    let config = write_config(dir.path(), &terminals);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_caisse-ap-relay"))
        .args(["report", "--csv", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let rows = rows(&String::from_utf8(output.stdout).unwrap());
    let row = &rows["tpe-1"];
    let expected = [
        ("method", "card"),
        ("currency", "EUR"),
        ("debit_count", "2"),
        ("debit_minor", "1600"),
        ("refund_count", "1"),
        ("refund_minor", "300"),
        ("net_minor", "1300"),
        ("declined_count", "1"),
        ("declined_minor", "700"),
        ("not_sent_count", "0"),
        ("unknown_approved_count", "1"),
        ("unknown_approved_minor", "450"),
        ("unknown_not_charged_count", "0"),
        ("unknown_unresolved_count", "1"),
        ("unknown_unresolved_minor", "220"),
    ];
    for (column, value) in expected {
        assert_eq!(row[column], value, "{column}: {row:?}");
    }
    let off = &rows["tpe-off"];
    assert_eq!(
        (
            off["not_sent_count"].as_str(),
            off["not_sent_minor"].as_str()
        ),
        ("1", "800")
    );
    assert_eq!(off["net_minor"], "0");
    let warnings = String::from_utf8(output.stderr).unwrap();
    assert!(
        warnings.contains("r-open"),
        "the unresolved one is named: {warnings}"
    );
    assert!(
        !warnings.contains("r-lost"),
        "the resolved one is not: {warnings}"
    );
}

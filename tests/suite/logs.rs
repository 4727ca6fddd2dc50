//! The built binary's logs with `--log-format json`: one JSON object per stderr line, one
//! complete "transaction finished" line per outcome, no token, no card number beyond the
//! last four digits (even in the debug-level raw frames).

use crate::common;

use std::sync::Arc;

use caisse_ap_relay::config::Role;
use caisse_ap_relay::sim::{Behaviour, Fault};
use common::binary::{write_config, Process};
use common::*;
use serde_json::{json, Value};

/// The card number the simulator sends (already masked by the "terminal"): its first six
/// digits must never reach the logs.
/// The middle digits of a card number: never logged (contract §7.2 keeps first 6, last 4).
const PAN_MIDDLE: &str = "497010123456";

#[tokio::test]
async fn json_logs_carry_one_complete_line_per_outcome_and_no_secrets() {
    let sim = spawn_sim(Behaviour::default()).await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let config = write_config(dir.path(), &[("tpe-1", sim.addr())]);
    let config = config.to_str().unwrap();
    let args = ["--log-format", "json", "serve", "--config", config];
    let process = Process::run(args, &[("RUST_LOG", "info,caisse_ap_relay=debug")]).await;

    let agent = TestAgent::external(process.addr, Arc::clone(&dir));
    let code = issue_code(&agent, "screen", Role::Display);
    let (mut pairing, paired) = pair(&agent, &code).await;
    assert_eq!(paired["type"], "paired", "{paired}");
    pairing.close(None).await.unwrap();
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("log-ok", "tpe-1", 2500)).await;
    until_final(&mut ws, "log-ok").await;
    sim.set_behaviour(Behaviour::with_fault(Fault::Close));
    send(&mut ws, pay("log-lost", "tpe-1", 990)).await;
    until_final(&mut ws, "log-lost").await;
    drop(ws);
    let stderr = process.terminate().await;

    let lines: Vec<Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    assert!(lines.iter().all(Value::is_object));
    assert!(!stderr.contains(CASHIER), "a token was logged");
    assert!(!stderr.contains(PAN_MIDDLE), "card digits were logged");

    // Pairing runs on the blocking pool, still inside its connection's span.
    let paired_line = lines
        .iter()
        .find(|line| line["fields"]["message"] == "till paired")
        .expect("a till paired line");
    let conn = &paired_line["span"];
    assert_eq!(
        (&conn["name"], &conn["port"]),
        (&json!("conn"), &json!("https")),
        "{paired_line}"
    );
    assert!(
        conn["peer"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{paired_line}"
    );

    let approved = finished(&lines, "log-ok");
    let expected = [
        ("till", "\"till-1\""),
        ("terminal", "\"tpe-1\""),
        ("amount", "2500"),
        ("currency", "\"EUR\""),
        ("state", "\"approved\""),
        ("pan", "\"497010######1234\""),
        ("authorization", "\"632145\""),
    ];
    for (field, value) in expected {
        assert_eq!(approved[field].to_string(), value, "{field}: {approved}");
    }
    assert!(approved["duration_ms"].is_u64(), "{approved}");
    assert!(approved.get("reason").is_none(), "{approved}");

    let lost = finished(&lines, "log-lost");
    assert_eq!(lost["state"], "unknown", "{lost}");
    assert_eq!(lost["reason"], "connection_lost", "{lost}");
    assert_eq!(lost["amount"], 990, "{lost}");
    assert!(lost["duration_ms"].is_u64(), "{lost}");

    let frames: Vec<&Value> = lines
        .iter()
        .filter(|line| line["fields"]["message"] == "caisse-ap answer received")
        .collect();
    assert!(!frames.is_empty(), "raw answers are logged at debug level");
    assert!(frames.iter().all(|line| line["level"] == "DEBUG"));
    let masked = frames[0]["fields"]["frame"].as_str().unwrap();
    assert!(
        masked.contains("AA016497010######1234AI014A0000000421010AB004####"),
        "{masked}"
    );
}

/// The fields of the one "transaction finished" line of `id`.
fn finished<'a>(lines: &'a [Value], id: &str) -> &'a Value {
    let found: Vec<&Value> = lines
        .iter()
        .map(|line| &line["fields"])
        .filter(|fields| fields["message"] == "transaction finished" && fields["id"] == id)
        .collect();
    assert_eq!(found.len(), 1, "one outcome line for {id}: {found:?}");
    found[0]
}

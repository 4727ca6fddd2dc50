//! Signed receipts (contract §8), checked with independent JOSE implementations: Node's
//! `jose` and Python's `joserfc` run the very scripts docs/backend.md shows, against a real
//! agent's records; a tampered receipt fails in both. Also the key file's life: the same key
//! across restarts, `receipt-key` = `GET /receipt-key`, a corrupt key → exit 2 naming it.

use crate::common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use caisse_ap_relay::sim::{Behaviour, Fault};
use common::independent::{node, python, succeeded};
use common::*;
use serde_json::{json, Value};

/// Verifies `receipt` with both independent libraries; the payload when both accept it,
/// `Err` with their messages when both refuse it (they must agree). `None` when the tools
/// are not installed (outside CI).
fn verify_independently(jwk: &str, receipt: &str) -> Option<Result<Value, String>> {
    let args = [jwk, receipt, AGENT_NAME];
    let by_node = node("verify-receipt.mjs", &args)?;
    let by_python = python("verify_receipt.py", &args)?;
    assert_eq!(
        by_node.status.success(),
        by_python.status.success(),
        "jose and joserfc disagree: {by_node:?} {by_python:?}"
    );
    if !by_node.status.success() {
        let errors =
            [&by_node.stderr, &by_python.stderr].map(|e| String::from_utf8_lossy(e).to_string());
        return Some(Err(errors.join(" / ")));
    }
    let from_node: Value = serde_json::from_str(&succeeded(&by_node)).unwrap();
    let from_python: Value = serde_json::from_str(&succeeded(&by_python)).unwrap();
    assert_eq!(from_node, from_python);
    Some(Ok(from_node))
}

async fn receipt_key(agent: &TestAgent) -> String {
    let (status, headers, body) = https_get(agent, "/receipt-key").await;
    assert_eq!(status, 200);
    assert!(headers.contains(&("content-type".into(), "application/jwk+json".into())));
    String::from_utf8(body).unwrap()
}

#[tokio::test]
async fn a_final_record_carries_a_receipt_that_jose_and_joserfc_verify() {
    let sim = spawn_sim(Behaviour::default()).await;
    let agent = spawn_agent(vec![terminal("tpe-1", sim.addr(), WAIT)]).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("sale.42", "tpe-1", 1245)).await;
    let records = until_final(&mut ws, "sale.42").await;
    assert!(
        records[..records.len() - 1]
            .iter()
            .all(|r| r.get("receipt").is_none()),
        "no receipt before the final state"
    );
    let last = records.last().unwrap().clone();
    assert_eq!(last["state"], "approved");
    let receipt = last["receipt"].as_str().expect("a receipt").to_owned();

    send(&mut ws, json!({"type": "get", "id": "sale.42"})).await;
    let got = next_message(&mut ws).await;
    assert_eq!(got["receipt"], last["receipt"], "sent unchanged by get");

    let jwk = receipt_key(&agent).await;
    let Some(verified) = verify_independently(&jwk, &receipt) else {
        return;
    };
    let payload = verified.expect("a genuine receipt verifies");
    assert_eq!(payload["jti"], format!("sale.42.{}", last["seq"]));
    assert_eq!(payload["iss"], AGENT_NAME);
    for field in [
        "id", "till", "terminal", "amount", "currency", "state", "seq", "action", "method",
    ] {
        assert_eq!(payload[field], last[field], "{field}");
    }
    for absent in ["result", "raw", "card", "ticket", "receipt"] {
        assert!(payload.get(absent).is_none(), "{absent}");
    }

    // A cashier's devtools turn a decline into an approval: the signature no longer matches.
    let mut parts: Vec<String> = receipt.split('.').map(str::to_owned).collect();
    let mut forged = payload.clone();
    forged["amount"] = json!(99999);
    parts[1] = URL_SAFE_NO_PAD.encode(forged.to_string());
    let tampered = parts.join(".");
    assert!(verify_independently(&jwk, &tampered).unwrap().is_err());
    // A receipt signed by another agent's key fails against the pinned one.
    let other = tempfile::tempdir().unwrap();
    let other =
        caisse_ap_relay::receipt::Receipts::load_or_create(other.path(), AGENT_NAME).unwrap();
    assert!(verify_independently(other.jwk_json(), &receipt)
        .unwrap()
        .is_err());
}

#[tokio::test]
async fn a_resolution_gets_its_own_receipt_keeping_state_unknown() {
    let sim = spawn_sim(Behaviour::with_fault(Fault::Hang)).await;
    let agent = spawn_agent(vec![terminal("tpe-1", sim.addr(), Duration::from_secs(1))]).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("u-1", "tpe-1", 500)).await;
    let unknown = until_final(&mut ws, "u-1").await.pop().unwrap();
    assert_eq!(unknown["state"], "unknown");
    assert!(unknown["receipt"].is_string());
    send(
        &mut ws,
        json!({"type": "resolve", "id": "u-1", "outcome": "not_charged", "note": "no ticket"}),
    )
    .await;
    let resolved = next_message(&mut ws).await;
    assert_eq!(resolved["resolution"]["outcome"], "not_charged");
    let receipt = resolved["receipt"].as_str().unwrap();
    assert_ne!(resolved["receipt"], unknown["receipt"]);
    let jwk = receipt_key(&agent).await;
    let Some(verified) = verify_independently(&jwk, receipt) else {
        return;
    };
    let payload = verified.unwrap();
    assert_eq!(payload["state"], "unknown");
    assert_eq!(payload["resolution"]["outcome"], "not_charged");
    assert_eq!(payload["resolution"]["till"], "till-1");
    assert!(payload["resolution"].get("note").is_none());
    assert!(payload["seq"].as_u64() > unknown["seq"].as_u64());
}

fn receipt_key_command(config: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_caisse-ap-relay"))
        .args(["receipt-key", "--config"])
        .arg(config)
        .output()
        .unwrap()
}

#[tokio::test]
async fn the_key_is_created_once_kept_across_restarts_and_printed_by_receipt_key() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let config = common::binary::write_config(dir.path(), &[]);
    let printed = receipt_key_command(&config);
    let printed = succeeded(&printed);
    assert_eq!(printed.lines().count(), 1);
    let jwk: Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(
        (jwk["kty"].as_str(), jwk["crv"].as_str()),
        (Some("OKP"), Some("Ed25519"))
    );

    for _ in 0..2 {
        let process = common::binary::Process::start(&config, &[]).await;
        let agent = TestAgent::external(process.addr, Arc::clone(&dir));
        assert_eq!(receipt_key(&agent).await, printed.trim());
        process.terminate().await;
    }
    let key = dir.path().join("data/receipt.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let serve = Command::new(env!("CARGO_BIN_EXE_caisse-ap-relay"))
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(serve.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&serve.stderr);
    let last = stderr.lines().last().unwrap();
    assert!(last.starts_with(&key.display().to_string()), "{stderr}");
    assert_eq!(receipt_key_command(&config).status.code(), Some(2));
    assert!(
        std::fs::read_to_string(&key).unwrap().contains("garbage"),
        "never replaced"
    );
}

/// A data directory owned by another user than this test's (contract §7.6): `dir/data`
/// given to `nobody` when the test runs as root, else `/` (root's).
fn foreign_data_dir(dir: &std::path::Path) -> std::path::PathBuf {
    if !rustix::process::geteuid().is_root() {
        return "/".into();
    }
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::os::unix::fs::chown(&data, Some(65534), Some(65534)).unwrap();
    data
}

#[test]
fn receipt_key_and_resolve_write_into_data_dir_only_as_its_owner() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::binary::write_config(dir.path(), &[]);
    let data = foreign_data_dir(dir.path());
    let text = std::fs::read_to_string(&config).unwrap();
    let listed = format!("data_dir = \"{}\"", dir.path().join("data").display());
    assert!(text.contains(&listed), "{text}");
    let text = text.replace(&listed, &format!("data_dir = \"{}\"", data.display()));
    std::fs::write(&config, text).unwrap();

    let refused = receipt_key_command(&config);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("run as that user: sudo -u ")
            && stderr.trim_end().ends_with(" caisse-ap-relay receipt-key"),
        "{stderr}"
    );
    let key = data.join("receipt.key");
    assert!(!key.exists(), "nothing written");

    let resolve = Command::new(env!("CARGO_BIN_EXE_caisse-ap-relay"))
        .args(["resolve", "k-1", "--outcome", "approved", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(resolve.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&resolve.stderr);
    assert!(
        stderr.contains("sudo -u ")
            && stderr
                .trim_end()
                .ends_with(" caisse-ap-relay resolve k-1 --outcome approved"),
        "{stderr}"
    );
    assert!(!data.join("journal.log").exists(), "nothing written");

    // A key that exists is only read: printing it writes nothing, whoever asks.
    if data != std::path::Path::new("/") {
        let owned = tempfile::tempdir().unwrap();
        let mine = common::binary::write_config(owned.path(), &[]);
        let jwk = succeeded(&receipt_key_command(&mine));
        std::fs::copy(owned.path().join("data/receipt.key"), &key).unwrap();
        assert_eq!(succeeded(&receipt_key_command(&config)), jwk);
    }
}

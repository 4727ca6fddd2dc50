//! Finding 2 of the penetration test: a terminal that sends the whole card number in AA.
//! Contract §7.2: masked per field (first 6 and last 4 digits) in the journal and every
//! message, no expiry in messages (AB's value in `raw` is `####`), lengths kept; §7.6: the
//! journal and the data directory are private (0600/0700).

use crate::common;

use std::os::unix::fs::PermissionsExt;

use caisse_ap_relay::sim::{Behaviour, Outcome};
use common::*;
use serde_json::json;

/// What the simulated terminal sends in AA and AB (`full-pan`).
const FULL_PAN: &str = "4970101234561234";
const EXPIRY_FIELD: &str = "AB0042812";

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn a_full_card_number_is_masked_everywhere_and_the_expiry_never_leaves() {
    let sim = spawn_sim(Behaviour {
        outcome: Outcome::FullPan,
        ..Behaviour::default()
    })
    .await;
    let agent = spawn_agent(vec![terminal("tpe-1", sim.addr(), WAIT)]).await;
    let (mut cashier, _) = connect_as(&agent, CASHIER).await;
    send(&mut cashier, pay("pan-1", "tpe-1", 1000)).await;
    let states = until_final(&mut cashier, "pan-1").await;
    send(&mut cashier, json!({"type": "get", "id": "pan-1"})).await;
    let got = next_message(&mut cashier).await;

    let last = states.last().unwrap();
    assert_eq!(last["state"], "approved");
    let card = &last["result"]["card"];
    assert_eq!(card["pan"], "497010######1234");
    assert!(card.get("expiry").is_none(), "{card}");
    let raw = last["result"]["raw"].as_str().unwrap();
    assert!(raw.contains("AA016497010######1234"), "{raw}");
    assert!(raw.contains("AB004####"), "{raw}");
    for message in states.iter().chain([&got]) {
        let text = message.to_string();
        assert!(
            !text.contains(FULL_PAN) && !text.contains(EXPIRY_FIELD),
            "{text}"
        );
    }

    let data = path_in(&agent, "data");
    let mut journaled = String::new();
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        journaled += &String::from_utf8_lossy(&std::fs::read(&path).unwrap());
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    assert!(
        journaled.contains("497010######1234"),
        "the journal holds the record"
    );
    assert!(!journaled.contains(FULL_PAN) && !journaled.contains(EXPIRY_FIELD));
    assert_eq!(mode(&data), 0o700);
}

//! `caisse-ap-relay bench --quick` as CI runs it: the built binary starts itself as the agent,
//! runs every phase on loopback and ends with a parsable `bench:` line showing no lost and no
//! duplicated payment. No timing is asserted: the figures depend on the machine.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Far above the quick run's length, so only a hang trips it.
const LIMIT: Duration = Duration::from_secs(180);
const KEYS: [&str; 24] = [
    "added_p50_ms",
    "added_p99_ms",
    "answer_to_till_p50_ms",
    "tps",
    "tps_close",
    "cpu_per_tx_ms",
    "lost",
    "dup",
    "idle_rss_mb",
    "rss_10k_mb",
    "start_ms",
    "receipt_sign_us",
    "webhook_p50_ms",
    "webhook_p99_ms",
    "webhook_lost",
    "nohooks_added_p50_ms",
    "nohooks_added_p99_ms",
    "nohooks_cpu_per_tx_ms",
    "healthy_added_p50_ms",
    "healthy_added_p99_ms",
    "healthy_cpu_per_tx_ms",
    "hanging_added_p50_ms",
    "hanging_added_p99_ms",
    "hanging_cpu_per_tx_ms",
];

/// The `key=value` pairs of a `bench:` line, or why it does not parse.
fn parse(line: &str) -> Result<HashMap<String, f64>, String> {
    let rest = line.strip_prefix("bench: ").ok_or("no `bench: ` prefix")?;
    rest.split_whitespace()
        .map(|pair| {
            let (key, value) = pair
                .split_once('=')
                .ok_or(format!("{pair:?} is not key=value"))?;
            let value = value
                .parse()
                .map_err(|_| format!("{pair:?} is not a number"))?;
            Ok((key.to_owned(), value))
        })
        .collect()
}

#[test]
fn the_parser_rejects_malformed_lines() {
    assert!(parse("bench: tps=12 lost=0").is_ok());
    assert!(parse("tps=12").is_err());
    assert!(parse("bench: tps").is_err());
    assert!(parse("bench: tps=fast").is_err());
}

#[test]
fn quick_bench_ends_with_a_clean_final_line() {
    let child = Command::new(env!("CARGO_BIN_EXE_caisse-ap-relay"))
        .args(["bench", "--quick"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let id = child.id();
    let (done, output) = mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    let Ok(output) = output.recv_timeout(LIMIT) else {
        let _ = Command::new("kill").args(["-9", &id.to_string()]).status();
        panic!("bench --quick did not finish within {LIMIT:?}");
    };
    let output = output.expect("the bench's output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        output.status
    );
    let last = stdout.lines().last().unwrap_or_default();
    let figures = parse(last).unwrap_or_else(|err| panic!("{err}: {last:?}\n{stdout}"));
    for key in KEYS {
        assert!(figures.contains_key(key), "{key} missing from {last:?}");
    }
    assert_eq!(figures.len(), KEYS.len(), "{last:?}");
    assert_eq!(figures["lost"], 0.0, "{stdout}");
    assert_eq!(figures["dup"], 0.0, "{stdout}");
    assert_eq!(
        figures["webhook_lost"], 0.0,
        "every final reached the endpoint: {stdout}"
    );
    assert!(figures["tps"] > 0.0, "some payment went through: {stdout}");
}

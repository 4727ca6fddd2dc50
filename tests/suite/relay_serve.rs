//! `caisse-ap-relay serve` as a process: a bad configuration exits 2 with one line; a good
//! one prints what the README says (CA fingerprint, onboarding URL).

use crate::common;

use std::process::Command;

use common::binary::{write_config, Process};

#[test]
fn a_bad_config_exits_2_with_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[server]\nlisten = \"nowhere\"\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_caisse-ap-relay"))
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("bad.toml"), "{stderr}");
    assert!(stdout_is_empty(&output.stdout));
}

fn stdout_is_empty(stdout: &[u8]) -> bool {
    stdout.iter().all(u8::is_ascii_whitespace)
}

/// Bug 7 of issue 14: with a configuration file the agent printed only its address.
#[tokio::test]
async fn started_with_a_config_it_prints_the_ca_fingerprint_and_the_onboarding_url() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[]);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[server]\n", "[server]\nonboarding = \"127.0.0.1:0\"\n");
    std::fs::write(&config, text).unwrap();
    let mut agent = Process::start(&config, &[]).await;
    let fingerprint = agent.printed_line("CA SHA-256").await;
    let ca = std::fs::read_to_string(dir.path().join("certs/ca.pem")).unwrap();
    let der = rustls_pki_types::pem::PemObject::from_pem_slice(ca.as_bytes())
        .map(|c: rustls_pki_types::CertificateDer<'static>| c.to_vec())
        .unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, &der);
    let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    assert!(fingerprint.contains(&hex.join(":")), "{fingerprint}");
    let onboarding = agent.printed_line("onboarding").await;
    assert!(onboarding.contains("http://127.0.0.1:"), "{onboarding}");
    agent
        .printed_line(&format!("https://localhost:{}/", agent.addr.port()))
        .await;
    agent.terminate().await;
}

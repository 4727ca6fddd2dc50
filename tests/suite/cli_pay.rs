//! The built binary: `pay` against `simulate` over loopback, for every outcome and fault.
//! Asserts the exit code, the JSON result and the exact frame the simulator printed.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_caisse-ap-relay");
const DEBIT_1245: &str = "CZ0040300CJ012012345678901CA00201CB0041245CD0010CE003978BA0010";

/// A `simulate` process; killed (by its own handle) on drop.
struct Sim {
    child: Child,
    lines: Receiver<String>,
    addr: String,
}

impl Sim {
    fn start(args: &[&str]) -> Sim {
        let mut child = Command::new(BIN)
            .args(["simulate", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut sim = Sim {
            child,
            lines,
            addr: String::new(),
        };
        let first = sim.next_line();
        sim.addr = first.strip_prefix("listening on ").unwrap().to_string();
        sim
    }

    fn next_line(&self) -> String {
        self.lines.recv_timeout(Duration::from_secs(10)).unwrap()
    }

    /// The next request frame the simulator received.
    fn request(&self) -> String {
        let line = self.next_line();
        line.strip_prefix("request ").unwrap().to_string()
    }

    fn pay(&self, args: &[&str]) -> Output {
        pay(&self.addr, args)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pay(addr: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["pay", "--terminal", addr])
        .args(args)
        .output()
        .unwrap()
}

/// Pays 12.45 EUR with `--json` against a simulator started with `sim_args`.
fn pay_json(sim_args: &[&str], pay_args: &[&str]) -> (i32, Value, String) {
    let sim = Sim::start(sim_args);
    let mut args = vec!["--amount", "12.45", "--json"];
    args.extend_from_slice(pay_args);
    if !pay_args.contains(&"--timeout") {
        args.extend(["--timeout", "2s"]);
    }
    let out = sim.pay(&args);
    let json = serde_json::from_slice(&out.stdout).unwrap();
    (out.status.code().unwrap(), json, sim.request())
}

#[test]
fn approved_prints_the_card_and_exits_0() {
    let (code, json, frame) = pay_json(&[], &[]);
    assert_eq!(code, 0);
    assert_eq!(json["state"], "approved");
    assert_eq!(json["amount"], 1245);
    assert_eq!(json["result"]["card"]["application"], "CB");
    assert_eq!(json["result"]["approved_amount"], 1245);
    assert_eq!(frame, DEBIT_1245);
}

#[test]
fn declined_exits_1_with_the_reason() {
    let (code, json, frame) = pay_json(&["--outcome", "declined:04"], &[]);
    assert_eq!(code, 1);
    assert_eq!(json["state"], "declined");
    assert_eq!(json["result"]["af"], "04");
    assert_eq!(json["result"]["label"], "Refusée");
    assert_eq!(frame, DEBIT_1245);
}

#[test]
fn every_approving_outcome_and_harmless_fault_exits_0() {
    let cases: [(&[&str], &str); 5] = [
        (&["--outcome", "cb-contactless"], "CB sans contact"),
        (&["--outcome", "amex"], "American Express"),
        (&["--fault", "split"], "CB"),
        (&["--fault", "keep-open"], "CB"),
        (&["--fault", "slow-accept"], "CB"),
    ];
    for (sim_args, application) in cases {
        let (code, json, frame) = pay_json(sim_args, &[]);
        assert_eq!(code, 0, "{sim_args:?}");
        assert_eq!(json["result"]["card"]["application"], application);
        assert_eq!(frame, DEBIT_1245);
    }
}

#[test]
fn partial_approval_reports_the_approved_amount() {
    let (code, json, _) = pay_json(&["--outcome", "partial:1000"], &[]);
    assert_eq!(code, 0);
    assert_eq!(json["result"]["approved_amount"], 1000);
    assert_eq!(json["result"]["partial"], true);
}

#[test]
fn cheque_refund_sends_cc_and_cd() {
    let (code, json, frame) = pay_json(&[], &["--check", "--refund", "--pos", "07"]);
    assert_eq!(code, 0);
    assert_eq!(json["method"], "check");
    assert_eq!(
        frame,
        "CZ0040300CJ012012345678901CA00207CB0041245CD0011CE003978BA0010CC00300C"
    );
}

#[test]
fn faults_that_lose_the_answer_exit_3_with_their_reason() {
    let cases = [
        ("garbage", "invalid_answer"),
        ("wrong-echo", "mismatch"),
        ("close", "connection_lost"),
        ("reset", "connection_lost"),
        ("hang", "timeout"),
    ];
    for (fault, reason) in cases {
        let (code, json, frame) = pay_json(&["--fault", fault], &["--timeout", "1s"]);
        assert_eq!(code, 3, "{fault}");
        assert_eq!(json["state"], "unknown");
        assert_eq!(json["result"]["reason"], reason, "{fault}");
        assert_eq!(frame, DEBIT_1245);
    }
}

#[test]
fn a_closed_port_is_not_sent_and_exits_2() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let out = pay(&addr, &["--amount", "1", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["state"], "not_sent");
}

#[test]
fn human_output_names_the_outcome() {
    let sim = Sim::start(&["--outcome", "declined:11"]);
    let out = sim.pay(&["--amount", "0,05", "--currency", "978"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("DECLINED"), "{text}");
    assert!(text.contains("cancelled by the operator"), "{text}");
    assert!(sim.request().contains("CB00205"));
}

#[test]
fn bad_arguments_exit_2_with_a_message() {
    let bad: [&[&str]; 4] = [
        &["--amount", "12.345"],
        &["--amount", "abc"],
        &["--amount", "1", "--currency", "XXX"],
        &["--amount", "1", "--pos", "1"],
    ];
    for args in bad {
        let out = pay("127.0.0.1:9", args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("error"),
            "{args:?}"
        );
    }
    let out = Command::new(BIN)
        .args(["pay", "--amount", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BIN)
        .args(["simulate", "--listen", "127.0.0.1:0", "--outcome", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_decided_answer_prints_at_once_and_again_with_the_fields_that_follow() {
    let sim = Sim::start(&["--fault", "split-after-ae"]);
    let out = sim.pay(&["--amount", "12.45", "--json", "--timeout", "2s"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let [decided, amended] = &lines[..] else {
        panic!("two result lines expected: {stdout}");
    };
    assert_eq!(
        (&decided["state"], &amended["state"]),
        (&"approved".into(), &"approved".into())
    );
    assert!(decided["result"]["card"].is_null(), "{decided}");
    assert_eq!(amended["result"]["card"]["application"], "CB");
    assert_eq!(sim.request(), DEBIT_1245);
}

#[test]
fn ancv_sends_cc_00v_and_names_the_tender() {
    let (code, json, frame) = pay_json(&[], &["--ancv"]);
    assert_eq!(code, 0);
    assert_eq!(json["method"], "ancv");
    assert_eq!(
        json["result"]["card"]["application"],
        "ANCV chèques-vacances"
    );
    assert_eq!(frame, format!("{DEBIT_1245}CC00300V"));
    let out = pay("127.0.0.1:9", &["--amount", "1", "--ancv", "--check"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn ticket_customer_sends_ck_and_prints_the_ticket() {
    let sim = Sim::start(&[]);
    let out = sim.pay(&["--amount", "12.45", "--ticket", "customer"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(sim.request(), format!("{DEBIT_1245}CK003100"));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("--- Ticket CB (client) ---"), "{text}");
    assert!(text.contains("DEBIT 12,45 EUR"), "{text}");
    let (_, json, _) = pay_json(&[], &["--ticket", "both"]);
    assert_eq!(json["result"]["ticket"][1]["kind"], "merchant");
    assert!(!json["result"]["raw"].as_str().unwrap().contains("ZT"));
}

#[test]
fn a_terminal_refusing_ck_gets_one_log_line_saying_to_turn_ticket_off() {
    let sim = Sim::start(&["--fault", "strict-tags"]);
    let out = sim.pay(&["--amount", "12.45", "--ticket", "merchant"]);
    assert_eq!(out.status.code(), Some(1));
    let log = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("set ticket =")).collect();
    assert_eq!(lines.len(), 1, "{log}");
}
